// Package maildir writes mail into a Maildir++ tree laid out as Dovecot keeps
// it (mail_location = maildir:~/Maildir), so that Dovecot can serve a backup
// as it is. Folder naming, flags and keywords follow internal/maildirpp.
//
// Delivery is done here rather than with go-maildir's Dir.Create or
// Delivery, which fsync neither the file nor the directory (a crash may lose
// a message the journal calls done), choose the file's name themselves (Find
// looks for the name the engine planned before the first byte) and leave
// partial files behind on error. go-maildir supplies the flag letters
// (through maildirpp) and, in the tests, checks that what is written here
// reads back as a Maildir. Here: a tmp/ file is created with O_EXCL and mode 0600, the
// body is copied and its length checked against Delivery.Size, the mtime is set
// to Delivery.Date, the file is fsynced, renamed to
// cur/<name>,S=<size>:2,<flags> and the directory is fsynced. On any error
// (a failing or short body, a cancelled context, a full disk) the temporary
// file is removed and nothing is left in tmp/, new/ or cur/.
//
// Messages always go to cur/, even without \Seen, as Dovecot does once it has
// seen a message: the flags say whether it was read, and "new" has no IMAP
// meaning beyond \Recent. The receipt of a Put is the file's base name.
//
// Dovecot keywords are added to the folder's dovecot-keywords file (one per
// folder directory, as Dovecot keeps them; under an flock of that directory,
// written atomically); keywords that are not
// IMAP atoms, and keywords beyond the 26 letters a..z, are dropped and logged.
//
// A tmp/ file is named after the message and tagged with Options.Job and
// a token of the Target that writes it. A run killed mid-write leaves its
// file there; the first time a Target of the same Job touches that folder
// (Ensure, Send, Put) it removes the files of its Job that no open Target
// of the process is writing. Files of other mailferry jobs are removed once
// unchanged for 36 hours (Dovecot's rule for tmp/); files of other writers
// (Dovecot's deliver, mail clients) are never touched.
//
// Census and Inventory (target.Inventorier) read cur/ and new/ without
// creating anything; Inventory reads only each file's header section.
package maildir

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/internal/maildirpp"
	"github.com/mailferry/mailferry/target"
)

// Options configure a Maildir target. The zero value is ready to use.
type Options struct {
	// Logger receives warnings (renamed folders, dropped keywords);
	// discarded when nil.
	Logger *slog.Logger
	// Job tags the tmp files the Target writes (up to 32 ASCII letters and
	// digits): the first time the Target touches a folder, it removes the
	// tmp files of its Job that no open Target of this process is writing,
	// left by a run that was killed. Set it only while holding the job's
	// lock, so that no other process writes files of the same Job. Empty:
	// only the tmp files of any mailferry job unchanged for 36 hours are
	// removed.
	Job string
}

// Target is one session on a Maildir++ root. Several Targets (one per
// worker) may write to the same root at the same time. A Target is not safe
// for concurrent use, except Renamed.
type Target struct {
	root    string
	log     *slog.Logger
	job     string
	writer  string                         // this Target's token in its tmp file names
	cleaned map[string]bool                // folder dirs whose tmp/ was cleaned
	kw      map[string]*maildirpp.Keywords // folder dir -> its dovecot-keywords

	mu      sync.Mutex
	renamed map[string]string // requested name -> stored name

	released bool // Close gave up its hold on the shared indexes

	// pend are the files written by Send and not yet in cur/, in the
	// order of the Sends.
	pend []*pendFile
}

// pendFile is a message written to tmp/ by Send whose fsync runs in the
// background.
type pendFile struct {
	base, cur, tmp, unique string
	folder, dir            string
	synced                 chan error // the file's fsync + close
	flushed                bool
	err                    error
}

var (
	_ target.Target       = (*Target)(nil)
	_ target.FolderLister = (*Target)(nil)
	_ target.FlagSetter   = (*Target)(nil)
	_ target.Pipeliner    = (*Target)(nil)
)

// Open opens (creating with mode 0700 if missing) the Maildir++ root and its
// INBOX.
func Open(ctx context.Context, root string, opts Options) (*Target, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !validJob(opts.Job) {
		return nil, failure.Mark(failure.Config, fmt.Errorf("open Maildir %s: job tag %q is not up to %d letters and digits", root, opts.Job, maxJob))
	}
	root = filepath.Clean(root)
	indexes.hold()
	t := &Target{root: root, log: log, job: opts.Job, cleaned: map[string]bool{},
		renamed: map[string]string{}, kw: map[string]*maildirpp.Keywords{}}
	// A backup into ~/Backup/bob must not need ~/Backup to exist first.
	if err := os.MkdirAll(filepath.Dir(root), 0o700); err != nil {
		return nil, rootErr(fmt.Errorf("create the Maildir's parent directory: %w", err))
	}
	if err := t.mkMaildir(root, false); err != nil {
		return nil, rootErr(err)
	}
	t.writer = newWriter()
	return t, nil
}

// Close removes the files of Sends that were never waited for (they are
// not in cur/, so not delivered); every Put is durable when it returns.
// The Target must not be used after Close.
func (t *Target) Close() error {
	for _, p := range t.pend {
		<-p.synced
		os.Remove(p.tmp)
	}
	t.pend = nil
	writers.Delete(t.writer)
	if !t.released {
		t.released = true
		indexes.release()
	}
	return nil
}

// Renamed returns the folders whose requested name was not safe and the name
// they are stored under (requested -> stored).
func (t *Target) Renamed() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.renamed)
}

// mkMaildir creates dir with cur/, new/, tmp/ (and maildirfolder for a
// subfolder), all 0700.
func (t *Target) mkMaildir(dir string, sub bool) error {
	for _, d := range []string{dir, filepath.Join(dir, "cur"), filepath.Join(dir, "new"), filepath.Join(dir, "tmp")} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return classify(fmt.Errorf("create Maildir directory %s: %w", d, err))
		}
	}
	if sub {
		f, err := os.OpenFile(filepath.Join(dir, "maildirfolder"), os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return classify(fmt.Errorf("create Maildir folder %s: %w", dir, err))
		}
		f.Close()
	}
	return nil
}

// rootErr: a root that cannot be created (no permission, a file in the
// way) is the user's path to fix, a usage error (exit 2), not a failure
// of the run; a full disk stays a full disk.
func rootErr(err error) error {
	if failure.KindOf(err) == failure.Quota {
		return err
	}
	return failure.Mark(failure.Config, err)
}

// classify marks file system errors: a full disk is Quota, a permission
// problem is Fatal; anything else is left to the engine.
func classify(err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return failure.Mark(failure.Quota, err)
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EROFS):
		return failure.Mark(failure.Fatal, err)
	}
	return err
}

// resolve returns the safe canonical name of folder and its directory.
func (t *Target) resolve(folder string) (name, dir string, err error) {
	safe, changed := maildirpp.SafeFolder(folder)
	if changed {
		t.mu.Lock()
		if _, ok := t.renamed[folder]; !ok {
			t.renamed[folder] = safe
			t.log.Warn("folder name is not safe for a Maildir; stored under another name", "folder", folder, "stored_as", safe)
		}
		t.mu.Unlock()
	}
	rel, err := maildirpp.EncodeFolder(safe)
	if err != nil {
		return "", "", failure.Mark(failure.Fatal, err) // cannot happen: safe names encode
	}
	dir = filepath.Join(t.root, rel)
	if rel != "" && filepath.Dir(dir) != t.root {
		return "", "", failure.Mark(failure.Fatal, fmt.Errorf("folder %q would be written outside the Maildir %s", folder, t.root))
	}
	return safe, dir, nil
}

// Ensure creates the folder and its parents (Maildir++ directories with
// maildirfolder files) and returns the name it is stored under: the
// requested one, or a safe replacement for a hostile name (see Renamed).
func (t *Target) Ensure(ctx context.Context, f mailbox.Folder) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	name, dir, err := t.resolve(f.Name)
	if err != nil {
		return "", err
	}
	if err := t.ensureDirs(name); err != nil {
		return "", err
	}
	t.cleanOnce(name, dir)
	return name, nil
}

// ensureDirs creates the directories of a safe name and its parents.
func (t *Target) ensureDirs(name string) error {
	if name == maildirpp.Inbox {
		return t.mkMaildir(t.root, false)
	}
	parts := strings.Split(name, "/")
	created := false
	for i := 1; i <= len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		if p == maildirpp.Inbox {
			continue
		}
		rel, err := maildirpp.EncodeFolder(p)
		if err != nil {
			return failure.Mark(failure.Fatal, err)
		}
		dir := filepath.Join(t.root, rel)
		if _, err := os.Stat(filepath.Join(dir, "maildirfolder")); err == nil {
			continue
		}
		if err := t.mkMaildir(dir, true); err != nil {
			return fmt.Errorf("create folder %q: %w", p, err)
		}
		created = true
	}
	if created {
		if err := maildirpp.SyncDir(t.root); err != nil {
			return classify(fmt.Errorf("create folder %q: sync %s: %w", name, t.root, err))
		}
	}
	return nil
}

// Folders lists the folders of the tree (no special-use attributes).
func (t *Target) Folders(ctx context.Context) ([]mailbox.Folder, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	es, skipped, err := maildirpp.List(t.root)
	if err != nil {
		return nil, err
	}
	for _, s := range skipped {
		t.log.Warn("Maildir directory skipped: not a valid folder name", "dir", filepath.Join(t.root, s))
	}
	out := make([]mailbox.Folder, len(es))
	for i, e := range es {
		out[i] = mailbox.Folder{Name: e.Name}
	}
	return out, nil
}

var seq atomic.Uint64

// newUnique returns a Dovecot-style unique name:
// <unix>.M<usec>P<pid>Q<n>R<random>.<host>.
func newUnique() string {
	now := time.Now()
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r <= 0x20 || r >= 0x7f || r == '/' || r == ':' || r == ',' || r == '\\' {
			return '_'
		}
		return r
	}, host)
	if host == "" {
		host = "localhost"
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	return fmt.Sprintf("%d.M%dP%dQ%dR%s.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(), seq.Add(1), hex.EncodeToString(rnd[:]), host)
}

// ctxReader stops a copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// Put stores one message durably in cur/ and returns its base name: a Send
// and its wait.
func (t *Target) Put(ctx context.Context, d target.Delivery, body io.Reader) (string, error) {
	wait, err := t.Send(ctx, d, body)
	if err != nil {
		return "", err
	}
	return wait()
}

// Send writes the message to tmp/ and starts its fsync in the background;
// wait renames it into cur/ once that is done and fsyncs cur/. A wait
// settles every Send before it at once: their fsyncs ran concurrently (the
// file system commits them together), and one directory fsync covers all
// their renames. Waits must be called in the order of the Sends
// (target.Pipeliner). A file is in cur/ only once its bytes are durable.
func (t *Target) Send(ctx context.Context, d target.Delivery, body io.Reader) (func() (string, error), error) {
	p, f, err := t.write(ctx, d, body)
	if err != nil {
		return nil, err
	}
	p.synced = make(chan error, 1)
	go func() {
		err := f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		p.synced <- err
	}()
	t.pend = append(t.pend, p)
	return func() (string, error) {
		if !p.flushed {
			t.flush()
		}
		if p.err != nil {
			return "", p.err
		}
		return p.base, nil
	}, nil
}

// pipelineDepth: how many Sends may wait for their fsync at once.
const pipelineDepth = 32

// Features declares what a Maildir target can do: files keep any byte, and
// workers may share a folder.
func (t *Target) Features() target.Features {
	return target.Features{
		NUL: true, Pipeline: pipelineDepth, Inventory: true, Flags: true, Folders: true, CheapFind: true,
	}
}

// flush moves every pending file whose fsync succeeded into cur/ and
// fsyncs the cur/ directories they went to.
func (t *Target) flush() {
	pend := t.pend
	t.pend = nil
	dirs := map[string][]*pendFile{}
	var order []string
	for _, p := range pend {
		p.flushed = true
		if err := <-p.synced; err != nil {
			os.Remove(p.tmp)
			p.err = t.writeErr(p.folder, p.dir, err)
			continue
		}
		if err := t.rename(p); err != nil {
			p.err = err
			continue
		}
		if dirs[p.cur] == nil {
			order = append(order, p.cur)
		}
		dirs[p.cur] = append(dirs[p.cur], p)
	}
	for _, cur := range order {
		if err := maildirpp.SyncDir(cur); err != nil {
			for _, p := range dirs[cur] {
				p.err = t.writeErr(p.folder, p.dir, fmt.Errorf("sync %s: %w", cur, err))
			}
		}
	}
}

// write creates tmp/<unique>, writes the message and sets its mtime to
// d.Date. The file is neither synced nor closed.
func (t *Target) write(ctx context.Context, d target.Delivery, body io.Reader) (*pendFile, *os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	folder, dir, err := t.resolve(d.Folder)
	if err != nil {
		return nil, nil, err
	}
	unique := d.Name
	if unique == "" {
		unique = newUnique()
	} else if !maildirpp.ValidUnique(unique) {
		return nil, nil, failure.Mark(failure.Fatal, fmt.Errorf("store in Maildir folder %q: %q cannot be a Maildir file name", folder, unique))
	}
	if d.Size < 0 {
		return nil, nil, failure.Mark(failure.Fatal, fmt.Errorf("store in Maildir folder %q: message size unknown", folder))
	}
	t.cleanOnce(folder, dir)
	f, tmp, err := t.createTmp(folder, dir, unique)
	if err != nil {
		return nil, nil, t.writeErr(folder, dir, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	letters, err := t.letters(dir, d.Flags)
	if err != nil {
		return nil, nil, t.writeErr(folder, dir, err)
	}
	p := &pendFile{base: maildirpp.FileName(unique, d.Size, letters), cur: filepath.Join(dir, "cur"), tmp: tmp,
		unique: unique, folder: folder, dir: dir}
	br := &bodyReader{r: ctxReader{ctx, body}}
	n, err := io.Copy(f, io.LimitReader(br, d.Size+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if br.err != nil {
			return nil, nil, fmt.Errorf("read message body for Maildir folder %q: %w", folder, br.err)
		}
		return nil, nil, t.writeErr(folder, dir, err)
	}
	if n != d.Size {
		what := fmt.Sprintf("%d bytes", n)
		if n > d.Size {
			what = fmt.Sprintf("more than %d bytes", d.Size)
		}
		return nil, nil, failure.Mark(failure.Temporary, fmt.Errorf("message body for Maildir folder %q was %s, expected %d", folder, what, d.Size))
	}
	if !d.Date.IsZero() {
		if err := os.Chtimes(tmp, d.Date, d.Date); err != nil {
			return nil, nil, t.writeErr(folder, dir, err)
		}
	}
	ok = true
	return p, f, nil
}

// rename moves a synced file from tmp/ into cur/.
func (t *Target) rename(p *pendFile) error {
	if err := os.Rename(p.tmp, filepath.Join(p.cur, p.base)); err != nil {
		os.Remove(p.tmp)
		return t.writeErr(p.folder, p.dir, err)
	}
	indexes.note(p.dir, p.unique)
	return nil
}

// createTmp creates the tmp file for unique exclusively, creating the
// folder if it is missing, and avoiding a stale file of the same name.
func (t *Target) createTmp(folder, dir, unique string) (*os.File, string, error) {
	tmp := filepath.Join(dir, "tmp", t.tmpName(unique, ""))
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, tmp, nil
		}
		if attempt >= 2 {
			return nil, "", err
		}
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := t.ensureDirs(folder); err != nil {
				return nil, "", err
			}
		case errors.Is(err, os.ErrExist):
			var rnd [6]byte
			rand.Read(rnd[:])
			tmp = filepath.Join(dir, "tmp", t.tmpName(unique, "."+hex.EncodeToString(rnd[:])))
		default:
			return nil, "", err
		}
	}
}

// writeErr wraps a file system error of Put; a full disk names the free space.
func (t *Target) writeErr(folder, dir string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		free := "unknown space"
		if n, ok := freeSpace(dir); ok {
			free = humanBytes(n) + " free"
		}
		return failure.Mark(failure.Quota, &quotaError{
			msg: fmt.Sprintf("write to Maildir folder %q at %s: %s (%s)", folder, t.root, rootCause(err), free),
			err: err,
		})
	}
	if failure.KindOf(err) != failure.Unknown {
		return err
	}
	return classify(fmt.Errorf("write to Maildir folder %q at %s: %w", folder, t.root, err))
}

func rootCause(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

type quotaError struct {
	msg string
	err error
}

func (e *quotaError) Error() string   { return e.msg }
func (e *quotaError) Unwrap() []error { return []error{e.err, target.ErrFolderFull} }

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n)/unit, "KB"
	for _, next := range []string{"MB", "GB", "TB"} {
		if v < unit {
			break
		}
		v, u = v/unit, next
	}
	if v < 10 {
		return fmt.Sprintf("%.1f %s", v, u)
	}
	return fmt.Sprintf("%.0f %s", v, u)
}

// letters maps flags to Maildir letters, adding new keywords to the
// folder's dovecot-keywords first.
func (t *Target) letters(dir string, flags []string) (string, error) {
	kw := t.kw[dir]
	if kw == nil {
		var err error
		if kw, err = maildirpp.ReadKeywords(dir); err != nil {
			return "", err
		}
		t.kw[dir] = kw
	}
	var missing []string
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			continue
		}
		if !maildirpp.ValidKeyword(f) {
			t.log.Warn("keyword dropped: not a valid IMAP keyword", "keyword", f)
			continue
		}
		if _, ok := kw.Letter(f); !ok {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		var err error
		if kw, err = t.addKeywords(dir, missing); err != nil {
			return "", err
		}
	}
	return maildirpp.FlagsToLetters(flags, kw), nil
}

func (t *Target) addKeywords(dir string, names []string) (*maildirpp.Keywords, error) {
	unlock, err := maildirpp.LockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	kw, err := maildirpp.ReadKeywords(dir)
	if err != nil {
		return nil, err
	}
	changed := false
	for _, n := range names {
		ch, ok := kw.Add(n)
		if !ok {
			t.log.Warn("keyword dropped: the Maildir folder already has 26 keywords", "keyword", n, "dir", dir)
		}
		changed = changed || ch
	}
	if changed {
		if err := maildirpp.WriteKeywords(dir, kw); err != nil {
			return nil, err
		}
	}
	t.kw[dir] = kw
	return kw, nil
}

// Find looks in cur/ and new/ of the folder for a file whose unique part is
// d.Name (and whose ",S=" size, when present, is d.Size).
func (t *Target) Find(ctx context.Context, d target.Delivery) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	if d.Name == "" {
		return "", false, nil
	}
	folder, dir, err := t.resolve(d.Folder)
	if err != nil {
		return "", false, err
	}
	sized := d.Name + ",S=" + strconv.FormatInt(d.Size, 10)
	likely := []string{"new/" + sized, "new/" + d.Name}
	if !slices.ContainsFunc(d.Flags, func(f string) bool { return !strings.HasPrefix(f, `\`) }) {
		// Without keywords the letters need no dovecot-keywords file.
		likely = append(likely, "cur/"+maildirpp.FileName(d.Name, d.Size, maildirpp.FlagsToLetters(d.Flags, nil)))
	}
	loc, ok, err := indexes.lookup(dir, d.Name, likely...)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("look for %s in Maildir folder %q: %w", d.Name, folder, err)
	}
	if !ok {
		return "", false, nil
	}
	base := filepath.Base(loc)
	if _, size, _ := maildirpp.ParseFileName(base); size >= 0 && size != d.Size {
		t.log.Warn("Maildir file has the planned name but another size; not taken as the message", "folder", folder, "file", base, "size", size, "want", d.Size)
		return "", false, nil
	}
	return base, true, nil
}

// SetFlags renames the message file (receipt = its base name, or any name
// with the same unique part) to carry the new flags, moving it to cur/, and
// returns the new base name.
func (t *Target) SetFlags(ctx context.Context, folder, receipt string, flags []string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	name, dir, err := t.resolve(folder)
	if err != nil {
		return "", err
	}
	unique, _, _ := maildirpp.ParseFileName(receipt)
	if !maildirpp.ValidUnique(unique) || strings.ContainsRune(receipt, '/') {
		return "", failure.Mark(failure.Message, fmt.Errorf("set flags in Maildir folder %q: %q is not a Maildir file name", name, receipt))
	}
	letters, err := t.letters(dir, flags)
	if err != nil {
		return "", t.writeErr(name, dir, err)
	}
	old := ""
	for _, sub := range []string{"cur", "new"} {
		p := filepath.Join(dir, sub, receipt)
		if _, err := os.Lstat(p); err == nil {
			old = p
			break
		}
	}
	if old == "" {
		loc, ok, err := indexes.lookup(dir, unique)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("set flags in Maildir folder %q: %w", name, err)
		}
		if !ok {
			return "", failure.Mark(failure.Message, fmt.Errorf("set flags in Maildir folder %q: message %s no longer exists", name, unique))
		}
		old = filepath.Join(dir, loc)
	}
	oldBase := filepath.Base(old)
	head := oldBase
	if i := strings.IndexByte(oldBase, ':'); i >= 0 {
		head = oldBase[:i]
	}
	newBase := head + ":2," + letters
	dst := filepath.Join(dir, "cur", newBase)
	if old == dst {
		return newBase, nil
	}
	if err := os.Rename(old, dst); err != nil {
		return "", t.writeErr(name, dir, err)
	}
	for _, d := range []string{filepath.Dir(old), filepath.Join(dir, "cur")} {
		if err := maildirpp.SyncDir(d); err != nil {
			return "", t.writeErr(name, dir, err)
		}
	}
	indexes.note(dir, unique)
	return newBase, nil
}
