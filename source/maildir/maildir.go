// Package maildir reads a Maildir++ tree as mailferry's Maildir target writes
// it and as Dovecot keeps it (mail_location = maildir:~/Maildir): INBOX at the
// root, folders in ".A.B" directories with modified UTF-7 names (see
// internal/maildirpp, including its "." escape).
//
// The source never moves, renames or modifies a file: new/ is read in place
// (go-maildir's Unseen would move files to cur/), files are opened read-only
// (with O_NOATIME when allowed), tmp/ is ignored. go-maildir's Walk is not
// used for listing either: it reads cur/ only and refuses names without an
// info part; its flag letters are used (through maildirpp).
//
//   - Folders: INBOX (when root/cur exists) and every decodable ".X.Y"
//     directory with a cur/ subdirectory; directories whose names do not
//     decode are skipped with a warning. Validity is always 1: a message's
//     ID is its unique file name, which no one reassigns, so there is nothing
//     for a validity to protect (Dovecot's dovecot-uidlist UIDVALIDITY is
//     not used, so that a rebuilt uidlist does not void the journal).
//   - List: every regular file of cur/ and new/, ordered by mtime then ID.
//     ID is the unique part of the file name (before the first "," or ":"),
//     Size is the real file size (what Fetch delivers; not the ",S=" value),
//     Flags come from the letters after ":2," (keywords through the root's
//     folder's own dovecot-keywords, as Dovecot keeps one per folder
//     directory; "P" reads as $Forwarded), Received is the mtime.
//   - Identities reads each file's header section only, for its
//     Message-ID; Date is the mtime, as List's Received.
//   - Fetch streams each file, exactly the size it had when opened: a file
//     that shrinks or grows while it is read is a retryable error. When a
//     file is gone (Dovecot moved it from new/ to cur/ or changed its
//     flags), the folder is read again and the message found by its unique
//     name; only then is it reported in a *source.VanishedError.
//   - The sessions open on the same tree share the index of the folders
//     listed last (where each message's file is): a session fetches from a
//     folder another one listed without reading the directory again.
package maildir

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/maildirpp"
	"github.com/mailferry/mailferry/internal/message"
	"github.com/mailferry/mailferry/source"
)

// Validity is the Validity of every folder (see the package doc).
const Validity = 1

// Source reads one Maildir++ tree. It is not safe for concurrent use; open
// one per worker.
type Source struct {
	root  string
	log   *slog.Logger
	dirs  map[string]string // folder name -> directory (relative), from Folders
	cache *treeCache        // shared by the sessions of the same tree
}

// folderIndex is what a scan of one folder found: where each message is,
// and the folder's keywords. Never modified: a rescan makes a new one.
type folderIndex struct {
	locs map[string]loc // ID -> location
	kw   *maildirpp.Keywords
}

// treeCache holds the indexes of the folders of one tree listed last,
// shared by every session open on it: the engine lists a folder on one
// session and fetches on the others, which then need no scan of their
// own (a folder of 400,000 files costs one directory read and one stat
// per file, not one per session).
type treeCache struct {
	mu      sync.Mutex
	folders map[string]*folderIndex
	order   []string // least recently stored first
}

// cachedFolders is how many folder indexes a tree keeps.
const cachedFolders = 8

var trees sync.Map // cleaned root -> *treeCache

func (c *treeCache) get(name string) *folderIndex {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.folders[name]
}

func (c *treeCache) put(name string, x *folderIndex) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.folders == nil {
		c.folders = map[string]*folderIndex{}
	}
	c.folders[name] = x
	c.order = slices.DeleteFunc(c.order, func(n string) bool { return n == name })
	c.order = append(c.order, name)
	for len(c.order) > cachedFolders {
		delete(c.folders, c.order[0])
		c.order = c.order[1:]
	}
}

type loc struct {
	sub, base string // "cur" or "new", file name
}

var (
	_ source.Source     = (*Source)(nil)
	_ source.Identifier = (*Source)(nil)
)

// Features declares what a Maildir source can do (dates are the files'
// modification times).
func (s *Source) Features() source.Features {
	return source.Features{Identities: true, Flags: true, Dates: true}
}

// Option configures Open.
type Option func(*Source)

// WithLogger sends the source's warnings (skipped directories, duplicate
// messages) to log; without it they are discarded.
func WithLogger(log *slog.Logger) Option {
	return func(s *Source) {
		if log != nil {
			s.log = log
		}
	}
}

// Open opens the Maildir++ tree at root, which must exist.
func Open(ctx context.Context, root string, opts ...Option) (*Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	root = filepath.Clean(root)
	fi, err := os.Stat(root)
	if err != nil {
		return nil, failure.Mark(failure.Config, fmt.Errorf("open Maildir %s: %w", root, err))
	}
	if !fi.IsDir() {
		return nil, failure.Mark(failure.Config, fmt.Errorf("open Maildir %s: not a directory", root))
	}
	c, _ := trees.LoadOrStore(root, new(treeCache))
	s := &Source{root: root, log: slog.New(slog.DiscardHandler), dirs: map[string]string{}, cache: c.(*treeCache)}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Close does nothing.
func (s *Source) Close() error { return nil }

// Folders lists INBOX and the ".X.Y" folders.
func (s *Source) Folders(ctx context.Context) ([]source.Folder, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	es, skipped, err := maildirpp.List(s.root)
	if err != nil {
		return nil, err
	}
	for _, d := range skipped {
		s.log.Warn("Maildir directory skipped: its name is not a valid folder name", "dir", filepath.Join(s.root, d))
	}
	out := make([]source.Folder, len(es))
	for i, e := range es {
		s.dirs[e.Name] = e.Dir
		out[i] = source.Folder{Name: e.Name, Validity: Validity}
	}
	return out, nil
}

// dir returns the directory of a folder.
func (s *Source) dir(name string) (string, error) {
	rel, ok := s.dirs[name]
	if !ok {
		var err error
		if rel, err = maildirpp.EncodeFolder(name); err != nil {
			return "", failure.Mark(failure.Fatal, fmt.Errorf("read Maildir folder %q: %w", name, err))
		}
	}
	return filepath.Join(s.root, rel), nil
}

// scan reads cur/ and new/ of a folder without touching any file, the
// directories a chunk of entries at a time.
func (s *Source) scan(name string) ([]source.Meta, *folderIndex, error) {
	dir, err := s.dir(name)
	if err != nil {
		return nil, nil, err
	}
	kw, err := maildirpp.ReadKeywords(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read Maildir folder %q: %w", name, err)
	}
	if testHookScan != nil {
		testHookScan(name)
	}
	var metas []source.Meta
	index := map[string]loc{}
	// One flag list per combination of letters: a folder of 400,000
	// files has a handful (shared: never modified).
	flagSets := map[string][]string{}
	for _, sub := range []string{"cur", "new"} {
		err := eachEntry(filepath.Join(dir, sub), func(de os.DirEntry) error {
			base := de.Name()
			if !de.Type().IsRegular() || strings.HasPrefix(base, ".") {
				return nil
			}
			id, _, letters := maildirpp.ParseFileName(base)
			if _, dup := index[id]; dup {
				s.log.Warn("Maildir message present twice; the second copy is skipped", "folder", name, "file", filepath.Join(sub, base))
				return nil
			}
			fi, err := de.Info()
			if errors.Is(err, os.ErrNotExist) {
				return nil // moved meanwhile; it shows up on the next scan
			}
			if err != nil {
				return err
			}
			index[id] = loc{sub, base}
			flags, ok := flagSets[letters]
			if !ok {
				flags = slices.Clip(maildirpp.LettersToFlags(letters, kw))
				flagSets[letters] = flags
			}
			metas = append(metas, source.Meta{
				ID:       id,
				Size:     fi.Size(),
				Flags:    flags,
				Received: fi.ModTime(),
			})
			return nil
		})
		if err != nil {
			if sub == "new" && errors.Is(err, os.ErrNotExist) {
				continue // tolerated: some tools create only cur/
			}
			return nil, nil, fmt.Errorf("read Maildir folder %q: %w", name, err)
		}
	}
	sort.SliceStable(metas, func(i, j int) bool {
		if !metas[i].Received.Equal(metas[j].Received) {
			return metas[i].Received.Before(metas[j].Received)
		}
		return metas[i].ID < metas[j].ID
	})
	return metas, &folderIndex{locs: index, kw: kw}, nil
}

// testHookScan sees each scan of a folder.
var testHookScan func(folder string)

// eachEntry calls fn for each entry of dir, reading it 4096 entries at a
// time (a folder of 400,000 files is never held as one list of entries).
func eachEntry(dir string, fn func(os.DirEntry) error) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		des, err := f.ReadDir(4096)
		for _, de := range des {
			if err := fn(de); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// List returns every message of cur/ and new/.
func (s *Source) List(ctx context.Context, f source.Folder) ([]source.Meta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	metas, index, err := s.scan(f.Name)
	if err != nil {
		return nil, err
	}
	s.cache.put(f.Name, index)
	return metas, nil
}

// Fetch streams the files of ids in order.
func (s *Source) Fetch(ctx context.Context, f source.Folder, ids []string, fn func(source.Meta, io.Reader) error) error {
	dir, err := s.dir(f.Name)
	if err != nil {
		return err
	}
	index := s.cache.get(f.Name)
	rescanned := false
	rescan := func() error {
		_, x, err := s.scan(f.Name)
		if err != nil {
			return err
		}
		index, rescanned = x, true
		s.cache.put(f.Name, x)
		return nil
	}
	if index == nil {
		if err := rescan(); err != nil {
			return err
		}
	}
	var vanished []string
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		file, l, err := s.open(dir, index, id)
		if errors.Is(err, os.ErrNotExist) && !rescanned {
			if err := rescan(); err != nil {
				return err
			}
			file, l, err = s.open(dir, index, id)
		}
		if errors.Is(err, os.ErrNotExist) {
			vanished = append(vanished, id)
			continue
		}
		if err != nil {
			return fmt.Errorf("read message %s of Maildir folder %q: %w", id, f.Name, err)
		}
		err = s.deliver(ctx, file, l, index.kw, f.Name, id, fn)
		file.Close()
		if err != nil {
			return err
		}
		rescanned = false // a later miss may be a newer move: allow another scan
	}
	if len(vanished) > 0 {
		return &source.VanishedError{Folder: f.Name, IDs: vanished}
	}
	return nil
}

// Identities gives the Identity of every message of f in List's order,
// reading only the header section of each file. Date and Size are List's
// (the mtime and the size); a file moved meanwhile (new/ to cur/, new
// flags) is found again as Fetch finds it, one removed is skipped.
func (s *Source) Identities(ctx context.Context, f source.Folder, fn func(source.Identity) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := s.dir(f.Name)
	if err != nil {
		return err
	}
	metas, index, err := s.scan(f.Name)
	if err != nil {
		return err
	}
	s.cache.put(f.Name, index)
	br := bufio.NewReaderSize(nil, 4096)
	rescanned := false
	for _, m := range metas {
		if err := ctx.Err(); err != nil {
			return err
		}
		file, _, err := s.open(dir, index, m.ID)
		if errors.Is(err, os.ErrNotExist) && !rescanned {
			if _, index, err = s.scan(f.Name); err != nil {
				return err
			}
			s.cache.put(f.Name, index)
			rescanned = true
			file, _, err = s.open(dir, index, m.ID)
		}
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read message %s of Maildir folder %q: %w", m.ID, f.Name, err)
		}
		var sc message.Scanner
		br.Reset(file)
		err = message.ReadHeader(br, &sc)
		fi, serr := file.Stat()
		file.Close()
		if err == nil {
			err = serr
		}
		if err != nil {
			return fmt.Errorf("read the header of message %s of Maildir folder %q: %w", m.ID, f.Name, err)
		}
		rescanned = false
		if err := fn(source.Identity{ID: m.ID, MessageID: sc.MessageID(), Date: fi.ModTime(), Size: fi.Size()}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) open(dir string, index *folderIndex, id string) (*os.File, loc, error) {
	l, ok := index.locs[id]
	if !ok {
		return nil, loc{}, os.ErrNotExist
	}
	file, err := maildirpp.OpenNoAtime(filepath.Join(dir, l.sub, l.base))
	return file, l, err
}

func (s *Source) deliver(ctx context.Context, file *os.File, l loc, kw *maildirpp.Keywords, folder, id string, fn func(source.Meta, io.Reader) error) error {
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("read message %s: %w", id, err)
	}
	_, _, letters := maildirpp.ParseFileName(l.base)
	m := source.Meta{ID: id, Size: fi.Size(), Flags: maildirpp.LettersToFlags(letters, kw), Received: fi.ModTime()}
	r := &exactReader{ctx: ctx, f: file, size: fi.Size(), what: fmt.Sprintf("message %s of Maildir folder %q", id, folder)}
	if err := fn(m, r); err != nil {
		return err
	}
	// What fn left unread must be there too.
	_, err = io.Copy(io.Discard, r)
	return err
}

// exactReader delivers a file as it was at open: exactly size octets. A
// file that shrinks or grows while it is read (another program rewriting
// it in place) is a retryable error, not a shorter or a cut message.
type exactReader struct {
	ctx  context.Context
	f    *os.File
	size int64
	n    int64
	what string
	err  error
}

func (r *exactReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.n == r.size {
		// One octet more tells a grown file from a whole one.
		var b [1]byte
		k, err := r.f.Read(b[:])
		switch {
		case k > 0:
			r.err = failure.Mark(failure.Temporary, fmt.Errorf("%s: the file grew past its %d octets while it was read", r.what, r.size))
		case err == nil || err == io.EOF:
			return 0, io.EOF
		default:
			r.err = fmt.Errorf("%s: %w", r.what, err)
		}
		return 0, r.err
	}
	if rest := r.size - r.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	k, err := r.f.Read(p)
	r.n += int64(k)
	switch {
	case err == io.EOF && r.n < r.size:
		r.err = failure.Mark(failure.Temporary, fmt.Errorf("%s: got %d of %d octets, the file shrank while it was read: %w", r.what, r.n, r.size, io.ErrUnexpectedEOF))
	case err != nil && err != io.EOF:
		r.err = fmt.Errorf("%s: %w", r.what, err)
	default:
		// io.EOF with all octets: the growth check comes on the next call.
		return k, nil
	}
	return k, r.err
}
