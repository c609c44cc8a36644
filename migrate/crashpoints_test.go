package migrate

// Crash points enumerated, not sampled (issue 10): a small run is crashed at
// every journal write and every target call in turn, in process, and
// resumed from what a kill -9 at that instant would have left; every
// resumed run must end with every source message in the target exactly
// once, byte for byte, in its folder, with its flags and date.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/checkpoint"
	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/maildirpp"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/target"
	"github.com/mailferry/mailferry/target/maildir"
)

// crashCorpus is 40 messages in 3 folders, with the cases that make a
// lookup after a crash hard: byte-identical twins (with equal and with
// different flags and dates), the same bytes in two folders, different
// messages sharing a Message-ID (with different sizes, and with the same
// size and date), and messages without a Message-ID (two with the same size
// and date).
func crashCorpus() *memSource {
	mail := func(msgID, subject, text string) []byte {
		var b strings.Builder
		if msgID != "" {
			b.WriteString("Message-ID: " + msgID + "\r\n")
		}
		b.WriteString("From: a@example.org\r\nTo: b@example.org\r\nSubject: " + subject +
			"\r\nDate: Mon, 03 Mar 2025 09:14:00 +0000\r\n\r\n" + text + "\r\n")
		return []byte(b.String())
	}
	flagSets := [][]string{{`\Seen`}, {`\Answered`, `\Seen`}, nil, {`\Flagged`}, {`$Work`}, {`$Work`, `\Seen`}, {`\Draft`}}
	s := &memSource{msgs: map[string][]memMsg{}}
	for fi, f := range []struct {
		name string
		n    int
	}{{"INBOX", 18}, {"Sent", 12}, {"Archive/2024", 10}} {
		s.folders = append(s.folders, source.Folder{Name: f.name, Validity: uint32(11 + fi)})
		tag := strings.ReplaceAll(f.name, "/", ".")
		for i := 1; i <= f.n; i++ {
			s.msgs[f.name] = append(s.msgs[f.name], memMsg{
				id:    strconv.Itoa(i),
				body:  mail(fmt.Sprintf("<%d.%s@crash>", i, tag), fmt.Sprintf("%s %d", f.name, i), fmt.Sprintf("text %d %s", i, strings.Repeat("y", i*37))),
				flags: flagSets[(i+fi)%len(flagSets)],
				date:  time.Unix(1700000000+int64(fi*10000+i*60), 0).UTC(),
			})
		}
	}
	in, sent, arch := s.msgs["INBOX"], s.msgs["Sent"], s.msgs["Archive/2024"]
	// True twins: same bytes, flags and date.
	in[3] = in[2]
	in[3].id = "4"
	// Same Message-ID, different sizes; same Message-ID, size and date.
	in[6].body = mail("<shared@crash>", "shared 1", "short")
	in[7].body = mail("<shared@crash>", "shared 2", "a longer text")
	in[8].body = mail("<same-size@crash>", "same size", "AAAAAAAA")
	in[9].body = mail("<same-size@crash>", "same size", "BBBBBBBB")
	in[9].date = in[8].date
	// No Message-ID (one pair of equal size and date).
	in[11].body = mail("", "no id 1", "CCCC")
	in[12].body = mail("", "no id 2", "DDDD")
	in[12].date = in[11].date
	// A bigger one.
	in[14].body = mail("<big@crash>", "big", strings.Repeat("0123456789abcdef", 4096))
	// The same bytes in two folders.
	sent[4].body = in[4].body
	// Twins whose flags and dates differ.
	arch[2].body = arch[1].body
	return s
}

// identSource opens sessions of s that also tell each message's identity,
// as the real sources do (source.Identifier).
func identSource(s *memSource) source.Opener {
	open := s.opener()
	return func(ctx context.Context) (source.Source, error) {
		ss, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return &identSession{Source: ss, s: s}, nil
	}
}

type identSession struct {
	source.Source
	s *memSource
}

func (i *identSession) Features() source.Features {
	return source.Features{Identities: true, Flags: true, Dates: true}
}

func (i *identSession) Identities(ctx context.Context, f source.Folder, fn func(source.Identity) error) error {
	i.s.mu.Lock()
	msgs := slices.Clone(i.s.msgs[f.Name])
	i.s.mu.Unlock()
	for _, m := range msgs {
		if err := fn(source.Identity{ID: m.id, MessageID: headerMessageID(m.body), Date: m.date, Size: int64(len(m.body))}); err != nil {
			return err
		}
	}
	return nil
}

// crashSources names the source messages of each body, for reports.
func crashSources(s *memSource) map[[32]byte]string {
	m := map[[32]byte]string{}
	for _, f := range s.folders {
		for _, msg := range s.msgs[f.Name] {
			h := sha256.Sum256(msg.body)
			if m[h] != "" {
				m[h] += "|"
			}
			m[h] += f.Name + "/" + msg.id
		}
	}
	return m
}

// crashCopy is one message a target holds.
type crashCopy struct {
	folder  string
	body    []byte
	flags   []string
	date    time.Time
	receipt string
}

// crashStore is a target whose whole content can be copied at any instant.
type crashStore interface {
	opener() target.Opener
	snapshot() (crashSnap, error)
	contents() ([]crashCopy, error)
	leftovers() int // partial files a crash left behind (Maildir tmp/)
}

type crashSnap interface {
	digest() string
	restore() (crashStore, error)
	discard()
}

// crashKind makes empty targets of one kind.
type crashKind struct {
	name  string
	fresh func(t *testing.T, base string) crashStore
}

// --- an IMAP-like target in memory ---

// fakeIMAP stores like an IMAP server: a store is committed once the server
// has the whole command (at Send for a pipelined store, before the answer),
// UIDs grow per folder, and Find can only search by Message-ID, size, date
// and content, as the IMAP target does (the planned name is not kept).
type fakeIMAP struct {
	mu       sync.Mutex
	validity uint32
	boxes    map[string]*fakeBox
	batch    bool // sessions are BatchFinders
}

type fakeBox struct {
	next uint32
	msgs []fakeMail
}

type fakeMail struct {
	uid   uint32
	body  []byte
	flags []string
	date  time.Time
}

func newFakeIMAP() *fakeIMAP {
	return &fakeIMAP{validity: 1, boxes: map[string]*fakeBox{"INBOX": {next: 1}}}
}

func (f *fakeIMAP) clone() *fakeIMAP {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := &fakeIMAP{validity: f.validity, boxes: map[string]*fakeBox{}, batch: f.batch}
	for n, b := range f.boxes {
		c.boxes[n] = &fakeBox{next: b.next, msgs: slices.Clone(b.msgs)}
	}
	return c
}

func (f *fakeIMAP) opener() target.Opener {
	return func(ctx context.Context) (target.Target, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return &fakeIMAPSession{f: f}, nil
	}
}

func (f *fakeIMAP) snapshot() (crashSnap, error) { return fakeIMAPSnap{f.clone()}, nil }
func (f *fakeIMAP) leftovers() int               { return 0 }

func (f *fakeIMAP) contents() ([]crashCopy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []crashCopy
	for n, b := range f.boxes {
		for _, m := range b.msgs {
			out = append(out, crashCopy{folder: n, body: m.body, flags: m.flags, date: m.date,
				receipt: fmt.Sprintf("%d:%d", f.validity, m.uid)})
		}
	}
	return out, nil
}

type fakeIMAPSnap struct{ f *fakeIMAP }

func (s fakeIMAPSnap) restore() (crashStore, error) { return s.f.clone(), nil }
func (s fakeIMAPSnap) discard()                     {}
func (s fakeIMAPSnap) digest() string {
	var b strings.Builder
	names := make([]string, 0, len(s.f.boxes))
	for n := range s.f.boxes {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s %d:", n, s.f.boxes[n].next)
		for _, m := range s.f.boxes[n].msgs {
			fmt.Fprintf(&b, " %d", m.uid)
		}
		b.WriteString("\n")
	}
	return b.String()
}

type fakeIMAPSession struct{ f *fakeIMAP }

var (
	_ target.Pipeliner    = (*fakeIMAPSession)(nil)
	_ target.Marker       = (*fakeIMAPSession)(nil)
	_ target.Inventorier  = (*fakeIMAPSession)(nil)
	_ target.FolderLister = (*fakeIMAPSession)(nil)
)

func (s *fakeIMAPSession) Features() target.Features {
	return target.Features{CRLF: true, ExclusiveFolders: true, Pipeline: 8, Marks: true, Inventory: true, Folders: true, BatchFind: s.f.batch}
}

// FindAll is Find for each delivery in turn, a copy given to one counting
// as taken for the next (the fake's Find knows only exact copies).
func (s *fakeIMAPSession) FindAll(ctx context.Context, ds []target.Delivery) ([]target.Found, error) {
	if !s.f.batch {
		return nil, errors.New("not a batch finder")
	}
	out := make([]target.Found, len(ds))
	given := map[string]bool{}
	for i, d := range ds {
		if d.Folder != ds[0].Folder {
			return nil, errors.New("FindAll over two folders")
		}
		taken := d.Taken
		d.Taken = func(r string) bool { return given[r] || (taken != nil && taken(r)) }
		r, ok, err := s.Find(ctx, d)
		if err != nil {
			return nil, err
		}
		if ok {
			out[i], given[r] = target.Found{Receipt: r, OK: true}, true
		}
	}
	return out, nil
}
func (s *fakeIMAPSession) Close() error { return nil }

func (s *fakeIMAPSession) Folders(ctx context.Context) ([]source.Folder, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	var out []source.Folder
	for n := range s.f.boxes {
		out = append(out, source.Folder{Name: n})
	}
	slices.SortFunc(out, func(a, b source.Folder) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (s *fakeIMAPSession) Ensure(ctx context.Context, f source.Folder) (string, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.f.boxes[f.Name] == nil {
		s.f.boxes[f.Name] = &fakeBox{next: 1}
	}
	return f.Name, nil
}

func (s *fakeIMAPSession) store(d target.Delivery, body io.Reader) (string, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	if int64(len(b)) != d.Size || sha256.Sum256(b) != d.Fingerprint.SHA256 {
		return "", fmt.Errorf("store in %q: %d bytes do not match the delivery", d.Folder, len(b))
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	box := s.f.boxes[d.Folder]
	if box == nil {
		return "", failure.Mark(failure.Message, fmt.Errorf("NO [TRYCREATE] no folder %q", d.Folder))
	}
	uid := box.next
	box.next++
	box.msgs = append(box.msgs, fakeMail{uid: uid, body: b, flags: slices.Clone(d.Flags), date: d.Date})
	return fmt.Sprintf("%d:%d", s.f.validity, uid), nil
}

func (s *fakeIMAPSession) Put(ctx context.Context, d target.Delivery, body io.Reader) (string, error) {
	return s.store(d, body)
}

func (s *fakeIMAPSession) Send(ctx context.Context, d target.Delivery, body io.Reader) (func() (string, error), error) {
	receipt, err := s.store(d, body)
	if err != nil {
		return nil, err
	}
	return func() (string, error) { return receipt, nil }, nil
}

func (s *fakeIMAPSession) Mark(ctx context.Context, folder string) (string, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	box := s.f.boxes[folder]
	if box == nil {
		return "", nil
	}
	return fmt.Sprintf("%d:%d", s.f.validity, box.next), nil
}

func (s *fakeIMAPSession) Census(ctx context.Context, folder string) (target.Census, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	box := s.f.boxes[folder]
	if box == nil {
		return target.Census{}, nil
	}
	return target.Census{Messages: len(box.msgs), Validity: s.f.validity}, nil
}

func (s *fakeIMAPSession) Inventory(ctx context.Context, folder string, fn func(target.Stored) error) error {
	s.f.mu.Lock()
	var l []fakeMail
	if box := s.f.boxes[folder]; box != nil {
		l = slices.Clone(box.msgs)
	}
	s.f.mu.Unlock()
	for _, m := range l {
		if err := fn(target.Stored{Receipt: fmt.Sprintf("%d:%d", s.f.validity, m.uid), MessageID: headerMessageID(m.body),
			Date: m.date, Size: int64(len(m.body))}); err != nil {
			return err
		}
	}
	return nil
}

// Find searches as the IMAP target does: Message-ID (or size and date
// without one), then size, then copies not Taken, then the hash. A mark
// ("validity:uidnext") limits it to messages stored since.
func (s *fakeIMAPSession) Find(ctx context.Context, d target.Delivery) (string, bool, error) {
	fp := d.Fingerprint
	var since uint32
	if v, n, ok := strings.Cut(d.Mark, ":"); ok && v == strconv.FormatUint(uint64(s.f.validity), 10) {
		u, _ := strconv.ParseUint(n, 10, 32)
		since = uint32(u)
	}
	s.f.mu.Lock()
	var cands []fakeMail
	if box := s.f.boxes[d.Folder]; box != nil {
		for _, m := range box.msgs {
			if m.uid < since || int64(len(m.body)) != fp.Size {
				continue
			}
			if fp.MessageID != "" && headerMessageID(m.body) != fp.MessageID {
				continue
			}
			if fp.MessageID == "" && !d.Date.IsZero() && (m.date.Before(d.Date.AddDate(0, 0, -1)) || m.date.After(d.Date.AddDate(0, 0, 2))) {
				continue
			}
			cands = append(cands, m)
		}
	}
	s.f.mu.Unlock()
	// Taken may wait for the journal: never call it under the lock.
	for _, m := range cands {
		r := fmt.Sprintf("%d:%d", s.f.validity, m.uid)
		if d.Taken != nil && d.Taken(r) {
			continue
		}
		if sha256.Sum256(m.body) == fp.SHA256 {
			return r, true, nil
		}
	}
	return "", false, nil
}

func headerMessageID(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), "\r")
		if l == "" {
			break
		}
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Message-ID") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// --- a real Maildir target in a directory ---

type maildirStore struct {
	root, base string
}

func (m *maildirStore) opener() target.Opener {
	return func(ctx context.Context) (target.Target, error) {
		return maildir.Open(ctx, m.root, maildir.Options{Logger: discardLogger})
	}
}

func (m *maildirStore) snapshot() (crashSnap, error) {
	dst, err := os.MkdirTemp(m.base, "snap")
	if err != nil {
		return nil, err
	}
	dg, err := copyTree(m.root, dst)
	if err != nil {
		return nil, err
	}
	return &maildirSnap{root: dst, base: m.base, dg: dg}, nil
}

func (m *maildirStore) contents() ([]crashCopy, error) {
	es, _, err := maildirpp.List(m.root)
	if err != nil {
		return nil, err
	}
	var out []crashCopy
	for _, e := range es {
		dir := filepath.Join(m.root, e.Dir)
		kw, err := maildirpp.ReadKeywords(dir)
		if err != nil {
			return nil, err
		}
		for _, sub := range []string{"new", "cur"} {
			des, err := os.ReadDir(filepath.Join(dir, sub))
			if err != nil {
				return nil, err
			}
			for _, de := range des {
				p := filepath.Join(dir, sub, de.Name())
				b, err := os.ReadFile(p)
				if err != nil {
					return nil, err
				}
				fi, err := os.Stat(p)
				if err != nil {
					return nil, err
				}
				_, _, letters := maildirpp.ParseFileName(de.Name())
				out = append(out, crashCopy{folder: e.Name, body: b, flags: maildirpp.LettersToFlags(letters, kw),
					date: fi.ModTime(), receipt: de.Name()})
			}
		}
	}
	return out, nil
}

func (m *maildirStore) leftovers() int {
	n := 0
	filepath.WalkDir(m.root, func(p string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() && filepath.Base(filepath.Dir(p)) == "tmp" {
			n++
		}
		return nil
	})
	return n
}

type maildirSnap struct {
	root, base, dg string
}

func (s *maildirSnap) digest() string { return s.dg }
func (s *maildirSnap) discard()       { os.RemoveAll(s.root) }
func (s *maildirSnap) restore() (crashStore, error) {
	dst, err := os.MkdirTemp(s.base, "run")
	if err != nil {
		return nil, err
	}
	if _, err := copyTree(s.root, dst); err != nil {
		return nil, err
	}
	return &maildirStore{root: dst, base: s.base}, nil
}

// copyTree copies a directory tree with file modes and mtimes (a Maildir
// file's mtime is its date) and returns a digest of what it copied.
func copyTree(src, dst string) (string, error) {
	var dg strings.Builder
	err := filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			// A file renamed away (tmp/ to cur/) while we walk.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if de.IsDir() {
			fmt.Fprintf(&dg, "%s/\n", rel)
			return os.MkdirAll(to, 0o700)
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		fmt.Fprintf(&dg, "%s %d %d\n", rel, len(b), fi.ModTime().UnixNano())
		if err := os.WriteFile(to, b, fi.Mode().Perm()); err != nil {
			return err
		}
		return os.Chtimes(to, fi.ModTime(), fi.ModTime())
	})
	return dg.String(), err
}

var discardLogger = slog.New(slog.DiscardHandler)

// --- the crash ---

var errCrashed = failure.Mark(failure.Fatal, errors.New("crashed here (injected)"))

const (
	crashRunning = iota
	crashTaking  // the crash point was reached: its snapshots are being taken
	crashOver
)

// crashPlan counts the events of one run (journal writes reaching the file,
// target calls) and crashes at event at: it keeps what a kill -9 at that
// instant leaves (the journal file as written, with and without the
// records still in memory; the target before and after the call), then
// fails everything and cancels the run.
type crashPlan struct {
	at     int
	jpath  string
	j      *checkpoint.Journal
	store  crashStore
	cancel context.CancelFunc

	mu     sync.Mutex
	state  int
	n      int
	events []string
	// faults before the crash: these Sends fail before the store, these
	// are not stored and fail at their wait (the connection died before
	// the server had the whole command), the answers of these stores (Put
	// and wait) are lost after it, these lookups fail (each counted from 1).
	failSend, dropSend, lose, failFind map[int]bool
	sends, stores, finds               int

	// filled at the crash
	what     string
	journals []crashJournal
	targets  []crashTargetSnap
	snapErr  error
}

type crashJournal struct {
	what string
	b    []byte
}

type crashTargetSnap struct {
	what string
	s    crashSnap
}

// event counts one event; it reports whether the run is past its crash
// (fail) or at it (crash).
func (p *crashPlan) event(what string) (fail, crash bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != crashRunning {
		return true, false
	}
	p.n++
	p.events = append(p.events, what)
	if p.n == p.at {
		p.state = crashTaking
		p.what = what
		return false, true
	}
	return false, false
}

func (p *crashPlan) over() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state != crashRunning
}

func (p *crashPlan) finish() {
	p.mu.Lock()
	p.state = crashOver
	p.mu.Unlock()
	p.cancel()
}

func (p *crashPlan) snapTarget(what string) {
	s, err := p.store.snapshot()
	if err != nil {
		p.snapErr = err
		return
	}
	for _, o := range p.targets {
		if o.s.digest() == s.digest() {
			s.discard()
			return
		}
	}
	p.targets = append(p.targets, crashTargetSnap{what, s})
}

func (p *crashPlan) addJournal(what string, b []byte) {
	for _, o := range p.journals {
		if bytes.Equal(o.b, b) {
			return
		}
	}
	p.journals = append(p.journals, crashJournal{what, b})
}

var errLostAnswer = failure.Mark(failure.Temporary, errors.New("connection reset before the answer (injected)"))

// fault counts a call and reports whether it is to fail.
func (p *crashPlan) fault(n *int, which map[int]bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	*n++
	return which[*n]
}

// call runs one target call as an event.
func (p *crashPlan) call(what string, fn func() error) error {
	fail, crash := p.event(what)
	if fail {
		return errCrashed
	}
	if !crash {
		err := fn()
		if p.over() {
			return errCrashed // crashed meanwhile: nothing after the crash reaches the engine
		}
		return err
	}
	b, err := os.ReadFile(p.jpath)
	if err != nil {
		p.snapErr = err
	}
	p.addJournal("journal as written", b)
	// The records still in memory could have been written just before the
	// kill: a second journal with all of them (journal writes pass now).
	if err := p.j.Sync(context.Background()); err == nil {
		if b, err = os.ReadFile(p.jpath); err == nil {
			p.addJournal("journal with every record appended", b)
		}
	}
	p.snapTarget("target before the call")
	_ = fn()
	p.snapTarget("target after the call (its answer lost)")
	p.finish()
	return errCrashed
}

// journalWrite is the journal's write hook: one event per write.
func (p *crashPlan) journalWrite(b []byte) error {
	p.mu.Lock()
	switch p.state {
	case crashTaking:
		p.mu.Unlock()
		return nil
	case crashOver:
		p.mu.Unlock()
		return errCrashed
	}
	p.mu.Unlock()
	fail, crash := p.event("journal write: " + describeRecords(b))
	if fail {
		return errCrashed
	}
	if !crash {
		return nil
	}
	f, err := os.ReadFile(p.jpath)
	if err != nil {
		p.snapErr = err
	}
	p.addJournal("journal before the write", f)
	p.addJournal("journal after the write", append(slices.Clip(f), b...))
	p.addJournal("journal with the write torn in half", append(slices.Clip(f), b[:len(b)/2]...))
	p.snapTarget("target")
	p.finish()
	return errCrashed
}

func describeRecords(b []byte) string {
	var out []string
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		r, err := checkpoint.ParseLine(l)
		if err != nil {
			out = append(out, "?")
			continue
		}
		out = append(out, r.Op+" "+strings.ReplaceAll(r.Key, "\x1f", "/"))
	}
	if len(out) > 6 {
		out = append(out[:3], fmt.Sprintf("... (%d records)", len(out)), out[len(out)-1])
	}
	return strings.Join(out, ", ")
}

// crashOpener wraps a target so that each call is an event of p.
func (p *crashPlan) crashOpener(open target.Opener, names map[[32]byte]string) target.Opener {
	return func(ctx context.Context) (target.Target, error) {
		var t target.Target
		err := p.call("open a target session", func() (err error) {
			t, err = open(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
		c := &crashTarget{p: p, t: t, names: names}
		if _, ok := t.(target.Inventorier); ok {
			return &crashTargetInv{c}, nil
		}
		return c, nil
	}
}

type crashTarget struct {
	p     *crashPlan
	t     target.Target
	names map[[32]byte]string
}

// crashTargetInv is a crashTarget whose target can take a census.
type crashTargetInv struct{ *crashTarget }

var (
	_ target.Pipeliner   = (*crashTarget)(nil)
	_ target.Marker      = (*crashTarget)(nil)
	_ target.Inventorier = (*crashTargetInv)(nil)
)

func (c *crashTarget) msg(d target.Delivery) string {
	return fmt.Sprintf("%q %s (%d bytes)", d.Folder, c.names[d.Fingerprint.SHA256], d.Size)
}

// Features: the wrapped target's, but a crashTarget always pipelines,
// marks (with "" when the target cannot) and lists folders (none when the
// target cannot), and only a crashTargetInv takes a census.
func (c *crashTarget) Features() target.Features {
	f := c.t.Features()
	if f.Pipeline == 0 {
		f.Pipeline = pipelineWindow
	}
	f.Marks, f.Folders, f.Inventory, f.Flags = true, true, false, false
	return f
}

func (c *crashTargetInv) Features() target.Features {
	f := c.crashTarget.Features()
	f.Inventory = c.t.Features().Inventory
	return f
}

func (c *crashTarget) Folders(ctx context.Context) (l []source.Folder, err error) {
	fl, ok := c.t.(target.FolderLister)
	if !ok {
		return nil, nil
	}
	err = c.p.call("list target folders", func() (err error) { l, err = fl.Folders(ctx); return })
	return l, err
}

func (c *crashTarget) Ensure(ctx context.Context, f source.Folder) (name string, err error) {
	err = c.p.call(fmt.Sprintf("Ensure %q", f.Name), func() (err error) { name, err = c.t.Ensure(ctx, f); return })
	return name, err
}

func (c *crashTarget) Put(ctx context.Context, d target.Delivery, body io.Reader) (receipt string, err error) {
	err = c.p.call("Put "+c.msg(d), func() (err error) {
		if receipt, err = c.t.Put(ctx, d, body); err == nil && c.p.fault(&c.p.stores, c.p.lose) {
			receipt, err = "", errLostAnswer
		}
		return err
	})
	return receipt, err
}

func (c *crashTarget) Send(ctx context.Context, d target.Delivery, body io.Reader) (func() (string, error), error) {
	pl, ok := c.t.(target.Pipeliner)
	if !ok {
		return nil, errors.New("not a pipeliner")
	}
	var wait func() (string, error)
	err := c.p.call("Send "+c.msg(d), func() (err error) {
		c.p.mu.Lock()
		c.p.sends++
		fail, drop := c.p.failSend[c.p.sends], c.p.dropSend[c.p.sends]
		c.p.mu.Unlock()
		switch {
		case fail:
			return failure.Mark(failure.Temporary, errors.New("connection reset during the store (injected)"))
		case drop:
			io.Copy(io.Discard, body)
			wait = func() (string, error) {
				return "", failure.Mark(failure.Temporary, errors.New("connection reset before the server had the store (injected)"))
			}
			return nil
		}
		wait, err = pl.Send(ctx, d, body)
		return err
	})
	if err != nil {
		return nil, err
	}
	what := "wait for " + c.msg(d)
	return func() (receipt string, err error) {
		err = c.p.call(what, func() (err error) {
			if receipt, err = wait(); err == nil && c.p.fault(&c.p.stores, c.p.lose) {
				receipt, err = "", errLostAnswer
			}
			return err
		})
		return receipt, err
	}, nil
}

func (c *crashTarget) Find(ctx context.Context, d target.Delivery) (receipt string, ok bool, err error) {
	err = c.p.call("Find "+c.msg(d), func() (err error) {
		if c.p.fault(&c.p.finds, c.p.failFind) {
			return failure.Mark(failure.Temporary, errors.New("connection reset during the lookup (injected)"))
		}
		receipt, ok, err = c.t.Find(ctx, d)
		return err
	})
	return receipt, ok, err
}

func (c *crashTarget) FindAll(ctx context.Context, ds []target.Delivery) (found []target.Found, err error) {
	bf, ok := c.t.(target.BatchFinder)
	if !ok {
		return nil, errors.New("not a batch finder")
	}
	err = c.p.call(fmt.Sprintf("FindAll of %d in %q", len(ds), ds[0].Folder), func() (err error) {
		if c.p.fault(&c.p.finds, c.p.failFind) {
			return failure.Mark(failure.Temporary, errors.New("connection reset during the lookup (injected)"))
		}
		found, err = bf.FindAll(ctx, ds)
		return err
	})
	return found, err
}

func (c *crashTarget) Mark(ctx context.Context, folder string) (mark string, err error) {
	m, ok := c.t.(target.Marker)
	if !ok {
		return "", nil
	}
	err = c.p.call(fmt.Sprintf("Mark %q", folder), func() (err error) { mark, err = m.Mark(ctx, folder); return })
	return mark, err
}

func (c *crashTargetInv) Census(ctx context.Context, folder string) (n target.Census, err error) {
	err = c.p.call(fmt.Sprintf("Census %q", folder), func() (err error) {
		n, err = c.t.(target.Inventorier).Census(ctx, folder)
		return
	})
	return n, err
}

func (c *crashTargetInv) Inventory(ctx context.Context, folder string, fn func(target.Stored) error) error {
	return c.p.call(fmt.Sprintf("Inventory %q", folder), func() error {
		return c.t.(target.Inventorier).Inventory(ctx, folder, fn)
	})
}

func (c *crashTarget) Close() error {
	return c.p.call("close a target session", c.t.Close)
}

// --- checks ---

// checkCopies lists what is wrong in the target: a source message missing
// or stored more than once in its folder, a copy with other flags or
// another date, a copy nobody asked for.
func checkCopies(src *memSource, got []crashCopy, names map[[32]byte]string) []string {
	type fk struct {
		folder string
		h      [32]byte
	}
	meta := func(flags []string, date time.Time) string {
		f := slices.Clone(flags)
		slices.Sort(f)
		return strings.Join(f, " ") + " @" + strconv.FormatInt(date.Unix(), 10)
	}
	want := map[fk][]string{}
	for _, f := range src.folders {
		for _, m := range src.msgs[f.Name] {
			k := fk{f.Name, sha256.Sum256(m.body)}
			want[k] = append(want[k], meta(m.flags, m.date))
		}
	}
	have := map[fk][]string{}
	for _, c := range got {
		k := fk{c.folder, sha256.Sum256(c.body)}
		have[k] = append(have[k], meta(c.flags, c.date))
	}
	var out []string
	for k, w := range want {
		h := have[k]
		switch {
		case len(h) < len(w):
			out = append(out, fmt.Sprintf("MISSING: %s in %q: %d of %d cop(ies)", names[k.h], k.folder, len(h), len(w)))
		case len(h) > len(w):
			out = append(out, fmt.Sprintf("DUPLICATE: %s in %q: %d copies for %d source message(s)", names[k.h], k.folder, len(h), len(w)))
		default:
			slices.Sort(w)
			slices.Sort(h)
			if !slices.Equal(w, h) {
				out = append(out, fmt.Sprintf("FLAGS/DATE: %s in %q: stored %q, source %q", names[k.h], k.folder, h, w))
			}
		}
	}
	for k, h := range have {
		if want[k] == nil {
			out = append(out, fmt.Sprintf("EXTRA: %d unknown message(s) in %q (%s)", len(h), k.folder, names[k.h]))
		}
	}
	slices.Sort(out)
	return out
}

// checkJournal lists source messages whose journal entry is not done or
// does not name a copy of their bytes, and copies named twice.
func checkJournal(j *checkpoint.Journal, src *memSource, got []crashCopy) []string {
	byReceipt := map[string][32]byte{}
	for _, c := range got {
		byReceipt[c.folder+"\x00"+c.receipt] = sha256.Sum256(c.body)
	}
	var out []string
	claimed := map[string]string{}
	for _, f := range src.folders {
		for _, m := range src.msgs[f.Name] {
			k := Key(f.Name, f.Validity, m.id)
			e, ok := j.Get(k)
			name := f.Name + "/" + m.id
			switch {
			case !ok || !e.Done:
				out = append(out, fmt.Sprintf("JOURNAL: %s not done", name))
				continue
			case e.Receipt == "":
				out = append(out, fmt.Sprintf("JOURNAL: %s done without a receipt", name))
				continue
			}
			rk := e.Folder + "\x00" + e.Receipt
			if h, ok := byReceipt[rk]; !ok || h != sha256.Sum256(m.body) {
				out = append(out, fmt.Sprintf("JOURNAL: %s names %q in %q, which is not a copy of it", name, e.Receipt, e.Folder))
			}
			if o := claimed[rk]; o != "" {
				out = append(out, fmt.Sprintf("JOURNAL: %s and %s both name %q in %q", o, name, e.Receipt, e.Folder))
			}
			claimed[rk] = name
		}
	}
	return out
}

// --- the runs ---

type crashVariant struct {
	kind    crashKind
	workers int
	// faults: the first run also loses store answers (both twins among
	// them), fails a store and a lookup, so that the crashes land in the
	// run's own recovery from unknown outcomes.
	faults bool
	// dropped: the first run's stores of INBOX/9 and INBOX/12 never reach
	// the server, and the error shows only at their wait: the messages
	// after them (same size and date; for 9 and 10 the same Message-ID
	// too) are stored before they are sent again.
	dropped bool
	// stream: the source lists in pages of 4 and the plan window is 6
	// messages, so that the plan is made while the workers copy.
	stream bool
}

// crashState is what a crash left: the journal file and the target.
type crashState struct {
	journal []byte
	target  crashSnap
	what    string // where the crash was, for reports
}

type crashStats struct {
	points, resumes int
	leftovers       int // resumed runs that left files in a Maildir's tmp/
	reconciled      int // resumed runs that read a target folder's inventory
	failed          []string
	failedAt        []int // crash points with a failing resumed run
}

func crashOptions(workers int, st *Stats) Options {
	return Options{Workers: workers, backoff: time.Millisecond, Logger: discardLogger, Stats: st}
}

// crashJob runs the job, from nothing or from what a crash left, and
// crashes it at event at (never when at is 0).
type crashJob struct {
	p     *crashPlan
	store crashStore
	j     *checkpoint.Journal
	sum   *Summary
	err   error
	dir   string
	stats Stats
}

func (c *crashJob) close() {
	c.j.Close()
	os.RemoveAll(c.dir)
	if m, ok := c.store.(*maildirStore); ok {
		os.RemoveAll(m.root)
	}
}

type crashEnv struct {
	t     *testing.T
	v     crashVariant
	base  string
	src   *memSource
	names map[[32]byte]string
}

func (e *crashEnv) run(from *crashState, at int) *crashJob {
	t := e.t
	dir, err := os.MkdirTemp(e.base, "job")
	if err != nil {
		t.Fatal(err)
	}
	jpath := filepath.Join(dir, "journal")
	var store crashStore
	if from == nil {
		store = e.v.kind.fresh(t, e.base)
	} else {
		if err := os.WriteFile(jpath, from.journal, 0o600); err != nil {
			t.Fatal(err)
		}
		if store, err = from.target.restore(); err != nil {
			t.Fatal(err)
		}
	}
	j, err := checkpoint.Open(jpath)
	if err != nil {
		t.Fatalf("open the journal left by %s: %v", from.what, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := &crashPlan{at: at, jpath: jpath, j: j, store: store, cancel: cancel}
	if e.v.faults && from == nil {
		// With one worker: the answers for both twins are lost; the ninth
		// store fails, its resend's answer is lost and so is the lookup
		// that follows (issue 10, item 2).
		p.failSend = map[int]bool{9: true}
		p.lose = map[int]bool{3: true, 4: true, 9: true, 20: true}
		p.failFind = map[int]bool{2: true}
	}
	if e.v.dropped && from == nil {
		p.dropSend = map[int]bool{9: true, 12: true}
	}
	j.SetWriteHook(p.journalWrite)
	c := &crashJob{p: p, store: store, j: j, dir: dir}
	srcOpen, o := identSource(e.src), crashOptions(e.v.workers, &c.stats)
	if e.v.stream {
		srcOpen, o.planWindow = pagedOpener(srcOpen, 4, nil), 6
	}
	c.sum, c.err = Run(ctx, srcOpen, p.crashOpener(store.opener(), e.names), j, o)
	if p.snapErr != nil {
		t.Fatalf("crash point %d: snapshot: %v", at, p.snapErr)
	}
	return c
}

// problems lists what is wrong after a run that did not crash.
func (e *crashEnv) problems(c *crashJob) []string {
	var out []string
	if c.err != nil {
		out = append(out, fmt.Sprintf("the run failed: %v", c.err))
	}
	for _, f := range c.sum.Failures {
		out = append(out, fmt.Sprintf("the run failed %s/%s: %s", f.Folder, f.Key, f.Reason))
	}
	got, err := c.store.contents()
	if err != nil {
		e.t.Fatal(err)
	}
	out = append(out, checkCopies(e.src, got, e.names)...)
	return append(out, checkJournal(c.j, e.src, got)...)
}

// enumerate crashes the job started from `from` at each of its events in
// turn and resumes from every state each crash can leave. It returns those
// states (for a deeper round) with what their resumed run found.
func (e *crashEnv) enumerate(from *crashState, st *crashStats) (states []*crashState, rec []recovery) {
	t := e.t
	// With one worker the run is deterministic (the journal writes only
	// when asked, see checkpoint.Journal.SetWriteHook): every crash run
	// must repeat the events of a run without a crash up to its crash
	// point, so that each point of that run is crashed at once.
	ref := e.run(from, 0)
	refEvents := ref.p.events
	if pr := e.problems(ref); len(pr) > 0 {
		t.Fatalf("run without a crash:\n\t%s", strings.Join(pr, "\n\t"))
	}
	ref.close()
	if os.Getenv("MAILFERRY_CRASH_EVENTS") != "" {
		t.Logf("events:\n%s", strings.Join(refEvents, "\n"))
	}
	prefix := ""
	if from != nil {
		prefix = "after " + from.what + ", resumed: "
	}
	for at := 1; ; at++ {
		if at > 5000 {
			t.Fatal("the run never ends")
		}
		c := e.run(from, at)
		p := c.p
		if want := refEvents[:min(at, len(refEvents))]; e.v.workers == 1 && !slices.Equal(p.events, want) {
			t.Fatalf("%scrash point %d: the events differ from those of the run without a crash:\n%s\nwant\n%s",
				prefix, at, strings.Join(p.events, "\n"), strings.Join(want, "\n"))
		}
		if p.what == "" {
			// Past the last event: a run without a crash.
			if pr := e.problems(c); len(pr) > 0 {
				t.Errorf("%srun without a crash:\n\t%s", prefix, strings.Join(pr, "\n\t"))
			}
			c.close()
			return states, rec
		}
		c.close()
		st.points++
		where := fmt.Sprintf("%scrash point %d (%s", prefix, at, p.what)
		if at > 1 {
			where += "; previous event: " + p.events[at-2]
		}
		where += ")"
		for _, js := range p.journals {
			for _, ts := range p.targets {
				st.resumes++
				s := &crashState{journal: js.b, target: ts.s, what: fmt.Sprintf("%s, %s, %s", where, js.what, ts.what)}
				r := e.run(s, 0)
				if r.store.leftovers() > 0 {
					st.leftovers++
				}
				rc := recovery{at: at, found: int(r.stats.Already.Load())}
				for _, ev := range r.p.events {
					if strings.HasPrefix(ev, "Find ") {
						rc.finds++
					}
				}
				if slices.ContainsFunc(r.p.events, func(ev string) bool { return strings.HasPrefix(ev, "Inventory ") }) {
					st.reconciled++
				}
				if pr := e.problems(r); len(pr) > 0 {
					msg := fmt.Sprintf("%s:\n\t%s", s.what, strings.Join(pr, "\n\t"))
					if len(st.failedAt) == 0 || st.failedAt[len(st.failedAt)-1] != at {
						st.failedAt = append(st.failedAt, at)
					}
					if st.failed = append(st.failed, msg); len(st.failed) <= 10 {
						t.Error(msg)
					}
				}
				r.close()
				states, rec = append(states, s), append(rec, rc)
			}
		}
	}
}

// recovery is what the resumed run from one crash state did: how many
// times it asked the target, and found a copy.
type recovery struct{ at, finds, found int }

// deepState picks the crash state whose recovery is worth crashing too:
// the most even mix of copies found in the target (lost answers, missing
// done records) and copies stored again, or else the most stored again.
func deepState(rec []recovery) (int, bool) {
	score := func(r recovery) int { return min(r.found, r.finds-r.found)*1000 + r.finds - r.found }
	b := -1
	for i, r := range rec {
		if score(r) > 0 && (b < 0 || score(r) > score(rec[b])) {
			b = i
		}
	}
	return b, b >= 0
}

// crashDir is a directory for the runs' journals and Maildirs: in memory
// when the machine has /dev/shm, since fsyncs would be most of the time
// spent, and a kill -9 (unlike a power loss) keeps unsynced writes anyway.
func crashDir(t *testing.T) string {
	if d, err := os.MkdirTemp("/dev/shm", "mailferry-crash"); err == nil {
		t.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return t.TempDir()
}

// TestCrashPoints crashes a 40-message run at every journal write and every
// target call in turn and resumes it from every state a kill -9 there can
// leave: the journal as written or with every record appended so far, the
// target before or after the call (a store committed whose answer is lost).
// With one worker it then does the same to the resumed run of the crash
// whose recovery both found copies and stored some again (crashes while
// looking for and storing again what an earlier crash left), and to a first
// run that itself loses store answers and a lookup (crashes in the run's
// own recovery). With four workers the order of events varies: the same
// enumeration is a stress test. Every resumed run must end with every
// message exactly once, byte for byte, with its flags and date, and a
// journal whose done records name distinct copies of the right bytes.
func TestCrashPoints(t *testing.T) {
	// The journal logs each injected crash and each torn tail.
	old, oldSettle := slog.Default(), settleDelay
	slog.SetDefault(discardLogger)
	// Nothing here arrives late (see settleDelay).
	settleDelay = 0
	defer func() { slog.SetDefault(old); settleDelay = oldSettle }()
	kinds := []crashKind{
		{"imap", func(t *testing.T, base string) crashStore { return newFakeIMAP() }},
		{"imap-batch", func(t *testing.T, base string) crashStore { f := newFakeIMAP(); f.batch = true; return f }},
		{"maildir", func(t *testing.T, base string) crashStore {
			root, err := os.MkdirTemp(base, "maildir")
			if err != nil {
				t.Fatal(err)
			}
			return &maildirStore{root: root, base: base}
		}},
	}
	var variants []crashVariant
	for _, k := range kinds {
		variants = append(variants, crashVariant{kind: k, workers: 1}, crashVariant{kind: k, workers: 1, faults: true},
			crashVariant{kind: k, workers: 1, dropped: true}, crashVariant{kind: k, workers: 2, stream: true})
		if !testing.Short() {
			variants = append(variants, crashVariant{kind: k, workers: 4})
		}
	}
	for _, v := range variants {
		name := fmt.Sprintf("%s/workers=%d", v.kind.name, v.workers)
		if v.faults {
			name = fmt.Sprintf("%s/lost-answers/workers=%d", v.kind.name, v.workers)
		}
		if v.dropped {
			name = fmt.Sprintf("%s/dropped-stores/workers=%d", v.kind.name, v.workers)
		}
		if v.stream {
			name = fmt.Sprintf("%s/streaming/workers=%d", v.kind.name, v.workers)
		}
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			src := crashCorpus()
			e := &crashEnv{t: t, v: v, base: crashDir(t), src: src, names: crashSources(src)}
			var st crashStats
			states, rec := e.enumerate(nil, &st)
			t.Logf("%d crash points, %d resumed runs (%d reconciling), %d failing (at points %v), %d leaving files in tmp/; %v",
				st.points, st.resumes, st.reconciled, len(st.failed), st.failedAt, st.leftovers, time.Since(start).Round(time.Millisecond))
			if i, ok := deepState(rec); ok && v.workers == 1 && !v.faults && !v.dropped && !testing.Short() {
				var st2 crashStats
				start := time.Now()
				e.enumerate(states[i], &st2)
				t.Logf("then %d crash points in the recovery from %s (%d Finds, %d found): %d resumed runs, %d failing (at points %v); %v",
					st2.points, states[i].what, rec[i].finds, rec[i].found, st2.resumes, len(st2.failed), st2.failedAt, time.Since(start).Round(time.Millisecond))
				st.failed = append(st.failed, st2.failed...)
			}
			for _, s := range states {
				s.target.discard() // shared by several states: discard is idempotent
			}
			if len(st.failed) > 10 {
				t.Errorf("%d failing resumed runs in all", len(st.failed))
			}
		})
	}
}
