// Package mbox reads mbox files: a single file (Google Takeout's Gmail
// export, an Apple Mail or mutt archive) or a directory tree of them
// (Thunderbird's local folders, with subfolders in "Name.sbd/").
//
//   - Variants: mboxo, mboxrd, mboxcl and mboxcl2 (see Format), with LF or
//     CRLF line ends. Auto detection reads the first messages: when every
//     one has a Content-Length that ends exactly at the next "From " line,
//     the file is mboxcl2, or mboxcl if its bodies hold ">From " lines and
//     no bare "From " line; otherwise mboxrd (mboxo and mboxrd read the
//     same except for lines starting ">>From ", which only mboxrd writers
//     make; --mbox-format mboxo reads them as mboxo). CRLF is taken from
//     the first line.
//   - A message is the octets after its "From " line up to the next one,
//     less the one line end the writer adds before it (so a message without
//     a final newline comes back without it), with the quoting undone.
//     Nothing else changes. A "From " line is a separator only when it
//     carries a sender and an asctime-like date, so an unquoted
//     "From here on" in a body never cuts a message.
//   - IDs are content keys: a 64-bit FNV-1a hash of the separator line and
//     the Message-ID, Date, From, To and Subject fields ("-N" added for the
//     N-th repeat of the same key in one file). They survive a rerun,
//     Thunderbird's in-place flag updates, compaction (every later offset
//     moves), appended mail and a newer Takeout of the same mailbox, so
//     the journal keeps recognising what was copied and nothing is copied
//     twice; Validity is therefore always 1. The listing's scan keeps each
//     message's offset (shared by the sessions of one process, so workers
//     do not scan again); Fetch seeks there, checks the key, and scans the
//     file again if it changed meanwhile.
//   - Dates: the "From " line's date (UTC when it has no zone), else the
//     newest Received date, else the Date header, else the file's mtime.
//   - Flags: X-Mozilla-Status (read, replied, flagged, forwarded; messages
//     marked expunged but not yet compacted away are skipped and counted),
//     X-Mozilla-Status2's labels ($label1..5), X-Mozilla-Keys (keywords),
//     and mutt's and Claws' Status (R) and X-Status (A, F, T, D).
//   - Google Takeout: a single file where X-Gmail-Labels appears in the
//     first 200 messages is read by label (unless GmailLabels is "none"):
//     Inbox is INBOX, Sent,
//     Drafts, Spam (as Junk) and Trash are folders with their special use,
//     other labels are folders ("a/b" nested), Starred is \Flagged, Unread
//     clears \Seen, Drafts sets \Draft; Important, Opened, Archived and
//     "Category ..." make no folder. Messages with no folder label go to
//     "Archive". With "each" a message is in every labelled folder (as
//     Gmail's IMAP shows it); with "first" in one only, chosen in the order
//     INBOX, Sent, Drafts, user labels (as the header lists them), Junk,
//     Trash.
//   - A tree: every regular file starting with "From " (or empty) is a
//     folder named by its path, with ".sbd" directories as parents
//     (Thunderbird), "X.mbox/mbox" and "X.mbox" as X (Apple Mail), and
//     "Inbox" at the top as INBOX. Index files (.msf and others) are
//     ignored; other files are listed by Skipped.
//
// The source only reads: files are opened read-only, never locked or
// changed.
package mbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/message"
	"github.com/mailferry/mailferry/source"
)

// Options tune how files are read.
type Options struct {
	// Format forces a variant; Auto (the zero value) detects it per file.
	Format Format
	// GmailLabels is "each" (the default), "first" or "none" (a Takeout
	// file read as one folder).
	GmailLabels string
	// Folder names the folder of a single file (default: the file name
	// without ".mbox"; "Inbox" is INBOX).
	Folder string
	// Logger receives warnings (skipped files, expunged counts).
	Logger *slog.Logger
}

// Source reads one mbox file or tree. It is not safe for concurrent use;
// open one per worker (each reads at its own offsets).
type Source struct {
	root    string
	single  bool
	o       Options
	log     *slog.Logger
	walked  bool
	files   []*file
	folder  map[string]*file // folder name -> file
	skipped []source.Skip
	cur     *file  // the file open for reading
	buf     []byte // the read buffer of cur
}

type file struct {
	path   string
	folder string // the folder of a plain file; "" for a Takeout file
	labels bool   // Takeout: folders by X-Gmail-Labels
	format Format
	crlf   bool
	detect bool // format and crlf are known
	mtime  time.Time
	idx    *index
	f      *os.File
	mr     *msgReader
}

// index is what one scan learns about a file.
type index struct {
	size     int64 // the file's size and mtime when scanned
	mtime    time.Time
	entries  []entry
	byID     map[string]int32
	folders  []source.Folder // in order
	members  map[string][]int32
	expunged int
}

type entry struct {
	off   int64
	size  int64
	date  int64 // Unix seconds
	id    string
	flags []string
}

// Validity is the Validity of every folder: IDs are content keys, which no
// rewrite of the file reassigns (see the package doc).
const Validity = 1

// shared holds the last scan of each file, so that the sessions of one
// process (the engine's listing session and its workers) scan it once.
var shared struct {
	sync.Mutex
	m map[string]*index
}

func sharedIndex(path string, fi os.FileInfo) *index {
	shared.Lock()
	defer shared.Unlock()
	if x := shared.m[path]; x != nil && x.size == fi.Size() && x.mtime.Equal(fi.ModTime()) {
		return x
	}
	return nil
}

func storeIndex(path string, x *index) {
	shared.Lock()
	defer shared.Unlock()
	if shared.m == nil {
		shared.m = map[string]*index{}
	}
	shared.m[path] = x
}

var (
	_ source.Source     = (*Source)(nil)
	_ source.Identifier = (*Source)(nil)
	_ source.SkipLister = (*Source)(nil)
)

// Open opens the mbox file or directory tree at path, which must exist.
func Open(ctx context.Context, path string, o Options) (*Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch o.GmailLabels {
	case "":
		o.GmailLabels = "each"
	case "each", "first", "none":
	default:
		return nil, failure.Mark(failure.Config, fmt.Errorf("--gmail-labels %q: want each, first or none", o.GmailLabels))
	}
	path = filepath.Clean(path)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, failure.Mark(failure.Config, fmt.Errorf("open mbox %s: %w", path, err))
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{root: path, single: !fi.IsDir(), o: o, log: log}, nil
}

// Close closes the open files.
func (s *Source) Close() error {
	for _, f := range s.files {
		if f.f != nil {
			f.f.Close()
			f.f = nil
		}
	}
	return nil
}

// Skipped lists the files of a tree that are not mbox files.
func (s *Source) Skipped() []source.Skip { return s.skipped }

// Features declares what an mbox source offers: identities for
// reconciliation, skipped files, flags (Thunderbird, mutt, Takeout labels)
// and dates (the From line's).
func (s *Source) Features() source.Features {
	return source.Features{Identities: true, Skipped: true, Flags: true, Dates: true}
}

// indexFile reports files that are never mail: mail clients' indexes and
// settings.
func indexFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".msf", ".dat", ".json", ".sqlite", ".sqlite-wal", ".sqlite-shm", ".html", ".plist", ".toc", ".db", ".lock", ".xml", ".ini", ".js", ".mozlz4", ".bak":
		return true
	}
	return name == "table_of_contents" || strings.HasPrefix(name, ".")
}

func (s *Source) walk() error {
	if s.walked {
		return nil
	}
	s.folder = map[string]*file{}
	s.files, s.skipped = nil, nil
	if s.single {
		f := &file{path: s.root}
		name := s.o.Folder
		if name == "" {
			name = folderName(filepath.Base(s.root), false)
		}
		f.folder = name
		if s.o.GmailLabels != "none" {
			if err := s.detect(f); err != nil {
				return err
			}
		}
		s.files = []*file{f}
		if !f.labels {
			s.folder[name] = f
		}
		s.walked = true
		return nil
	}
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == s.root {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || indexFile(d.Name()) {
			return nil
		}
		rel, _ := filepath.Rel(s.root, p)
		ok, err := looksLikeMbox(p)
		if err != nil {
			return err
		}
		if !ok {
			s.skipped = append(s.skipped, source.Skip{Name: filepath.ToSlash(rel), Reason: "not an mbox file"})
			return nil
		}
		name := pathFolder(rel)
		if other, dup := s.folder[name]; dup {
			s.skipped = append(s.skipped, source.Skip{Name: filepath.ToSlash(rel), Reason: fmt.Sprintf("its folder %q is already read from %s", name, other.path)})
			return nil
		}
		f := &file{path: p, folder: name}
		s.files = append(s.files, f)
		s.folder[name] = f
		return nil
	})
	if err != nil {
		return fmt.Errorf("read mbox tree %s: %w", s.root, err)
	}
	for _, sk := range s.skipped {
		s.log.Warn("file skipped in the mbox tree", "file", sk.Name, "reason", sk.Reason)
	}
	s.walked = true
	return nil
}

// folderName turns a file name into a folder name.
func folderName(base string, inTree bool) string {
	for _, ext := range []string{".mbox", ".mbx"} {
		if len(base) > len(ext) && strings.EqualFold(base[len(base)-len(ext):], ext) {
			base = base[:len(base)-len(ext)]
			break
		}
	}
	if strings.EqualFold(base, "inbox") {
		return "INBOX"
	}
	return base
}

// pathFolder names the folder of a file of a tree by its relative path.
func pathFolder(rel string) string {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	last := parts[len(parts)-1]
	dirs := parts[:len(parts)-1]
	if last == "mbox" && len(dirs) > 0 && strings.HasSuffix(dirs[len(dirs)-1], ".mbox") {
		last, dirs = dirs[len(dirs)-1], dirs[:len(dirs)-1]
	}
	for i, d := range dirs {
		d = strings.TrimSuffix(d, ".sbd")
		d = strings.TrimSuffix(d, ".mbox")
		dirs[i] = d
	}
	last = folderName(last, true)
	if len(dirs) > 0 && last == "INBOX" {
		last = "Inbox"
	}
	if len(dirs) == 1 && strings.EqualFold(dirs[0], "inbox") {
		dirs[0] = "INBOX"
	}
	return strings.Join(append(dirs, last), "/")
}

func looksLikeMbox(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var b [5]byte
	n, err := io.ReadFull(f, b[:])
	if n == 0 {
		return true, nil // an empty folder
	}
	if err != nil && err != io.ErrUnexpectedEOF {
		return false, err
	}
	return string(b[:n]) == "From ", nil
}

func (s *Source) open(f *file) (*os.File, error) {
	if f.f != nil {
		return f.f, nil
	}
	h, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("open mbox %s: %w", f.path, err)
	}
	f.f = h
	if fi, err := h.Stat(); err == nil {
		f.mtime = fi.ModTime()
	}
	return h, nil
}

// detect finds the file's variant, line ends and whether it is a Takeout
// file read by label.
func (s *Source) detect(f *file) error {
	if f.detect {
		return nil
	}
	h, err := s.open(f)
	if err != nil {
		return err
	}
	d, err := Detect(h)
	if err != nil {
		return failure.Mark(failure.Config, fmt.Errorf("read mbox %s: %w", f.path, err))
	}
	f.format, f.crlf = d.Format, d.CRLF
	if s.o.Format != Auto {
		f.format = s.o.Format
	}
	f.labels = s.single && d.GmailLabels && s.o.GmailLabels != "none"
	f.detect = true
	return nil
}

// Detected is what Detect learns from a file's first messages.
type Detected struct {
	Format      Format
	CRLF        bool
	GmailLabels bool // one of the first messages has X-Gmail-Labels
}

// Detect reads the first messages of an mbox file (at most 200 or 16 MB).
func Detect(ra io.ReaderAt) (Detected, error) {
	var d Detected
	var first [2048]byte
	n, err := ra.ReadAt(first[:], 0)
	if err != nil && err != io.EOF {
		return d, err
	}
	if n == 0 {
		d.Format = MboxRD
		return d, nil
	}
	line := first[:n]
	if i := strings.IndexByte(string(line), '\n'); i >= 0 {
		line = line[:i+1]
	}
	if !strings.HasPrefix(string(line), "From ") {
		return d, errors.New("not an mbox file: it does not start with a \"From \" line")
	}
	d.CRLF = strings.HasSuffix(string(line), "\r\n")
	m := &msgReader{lr: newLineReader(ra, 256<<10), format: MboxCL2, crlf: d.CRLF}
	all, some, fromLines, quoted1, quotedN := true, false, 0, 0, 0
	off := int64(0)
	for i := 0; i < 200 && off < 16<<20; i++ {
		if err := m.start(off); err != nil {
			if err == errNotSeparator {
				break
			}
			return d, err
		}
		if err := m.readHeader(); err != nil {
			return d, err
		}
		d.GmailLabels = d.GmailLabels || headerValue(m.hdr, "x-gmail-labels") != nil
		_, next, err := m.skip()
		if err != nil {
			return d, err
		}
		// A message without a Content-Length counts only when it has a
		// body (a header-only message needs none).
		hasLen := headerValue(m.hdr, "content-length") != nil
		all = all && (m.lengthOK || !hasLen && m.size <= int64(len(m.hdr)))
		some = some || m.lengthOK
		fromLines += m.fromLines
		quoted1 += m.quoted1
		quotedN += m.quotedN
		off = next
	}
	switch {
	case !all || !some:
		d.Format = MboxRD
	case fromLines == 0 && quoted1+quotedN > 0:
		d.Format = MboxCL
	default:
		d.Format = MboxCL2
	}
	return d, nil
}

// reader returns the session's reader for f. A session keeps one file
// open and one read buffer, whatever the number of files in a tree: moving
// to another file closes the previous one.
func (s *Source) reader(f *file) (*msgReader, error) {
	if s.cur != nil && s.cur != f && s.cur.f != nil {
		s.cur.f.Close()
		s.cur.f, s.cur.mr = nil, nil
	}
	s.cur = f
	if err := s.detect(f); err != nil {
		return nil, err
	}
	if _, err := s.open(f); err != nil {
		return nil, err
	}
	if f.mr == nil {
		if s.buf == nil {
			s.buf = make([]byte, 256<<10)
		}
		f.mr = &msgReader{lr: &lineReader{ra: f.f, buf: s.buf, limit: -1}}
	}
	f.mr.format, f.mr.crlf = f.format, f.crlf
	return f.mr, nil
}

// facts are what a message's separator and header tell.
type facts struct {
	key      uint64
	date     time.Time
	flags    []string
	expunged bool
	folders  []string
	uses     []string
	msgID    string
}

func (s *Source) facts(f *file, m *msgReader) facts {
	var x facts
	var sc message.Scanner
	sc.Write(m.hdr)
	sc.Write([]byte("\r\n\r\n"))
	x.msgID = sc.MessageID()
	h := fnv.New64a()
	h.Write(m.sepLine)
	h.Write([]byte{0})
	h.Write([]byte(x.msgID))
	for _, name := range []string{"date", "from", "to", "subject"} {
		h.Write([]byte{0})
		h.Write(bytes.TrimSpace(headerValue(m.hdr, name)))
	}
	x.key = h.Sum64()
	var ok bool
	if x.date, ok = parseFromLine(m.sepLine); !ok {
		x.date = sc.InternalDate(f.mtime)
	}
	x.flags, x.expunged = headerFlags(m.hdr)
	if f.labels {
		var fl []string
		x.folders, x.uses, fl = gmail(headerValue(m.hdr, "x-gmail-labels"), s.o.GmailLabels == "each")
		for _, g := range fl {
			if !slices.Contains(x.flags, g) {
				x.flags = append(x.flags, g)
			}
		}
	}
	return x
}

// scan indexes a file: f's own index, else another session's of the same
// file unchanged, else a new scan.
func (s *Source) scan(ctx context.Context, f *file) (*index, error) {
	if f.idx != nil {
		return f.idx, nil
	}
	if _, err := s.reader(f); err != nil {
		return nil, err
	}
	fi, err := f.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read mbox %s: %w", f.path, err)
	}
	if x := sharedIndex(f.path, fi); x != nil {
		f.idx = x
		return x, nil
	}
	return s.rescan(ctx, f, fi)
}

// rescan reads a whole file once and indexes it.
func (s *Source) rescan(ctx context.Context, f *file, fi os.FileInfo) (*index, error) {
	// A scan reads sequentially: a bigger buffer than Fetch's.
	m := &msgReader{lr: newLineReader(f.f, 1<<20), format: f.format, crlf: f.crlf}
	idx := &index{size: fi.Size(), mtime: fi.ModTime(), byID: map[string]int32{}, members: map[string][]int32{}}
	uses := map[string]string{}
	// Most messages share one of a few flag sets: keep one copy of each.
	interned := map[string][]string{}
	intern := func(f []string) []string {
		k := strings.Join(f, " ")
		if v, ok := interned[k]; ok {
			return v
		}
		interned[k] = f
		return f
	}
	off := int64(0)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		err := m.start(off)
		if err == errNotSeparator {
			if off == 0 {
				if fi, serr := f.f.Stat(); serr == nil && fi.Size() > 0 {
					return nil, fmt.Errorf("read mbox %s: not an mbox file: it does not start with a \"From \" line", f.path)
				}
			}
			break
		}
		if err == nil {
			err = m.readHeader()
		}
		if err != nil {
			return nil, fmt.Errorf("read mbox %s at offset %d: %w", f.path, off, err)
		}
		x := s.facts(f, m)
		size, next, err := m.skip()
		if err != nil {
			return nil, fmt.Errorf("read mbox %s at offset %d: %w", f.path, off, err)
		}
		if x.expunged {
			idx.expunged++
		} else {
			i := int32(len(idx.entries))
			mid := keyID(x.key, 0)
			for n := 1; ; n++ {
				if _, dup := idx.byID[mid]; !dup {
					break
				}
				mid = keyID(x.key, n)
			}
			idx.byID[mid] = i
			idx.entries = append(idx.entries, entry{off: off, size: size, date: x.date.Unix(), id: mid, flags: intern(x.flags)})
			for k, name := range x.folders {
				idx.members[name] = append(idx.members[name], i)
				if _, ok := uses[name]; !ok {
					uses[name] = x.uses[k]
				}
			}
		}
		if next <= off {
			return nil, fmt.Errorf("read mbox %s at offset %d: no progress", f.path, off)
		}
		off = next
	}
	if idx.expunged > 0 {
		s.log.Info("messages marked expunged by Thunderbird (not yet compacted away) skipped", "file", f.path, "count", idx.expunged)
	}
	if f.labels {
		names := make([]string, 0, len(idx.members))
		for n := range idx.members {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			if (names[i] == "INBOX") != (names[j] == "INBOX") {
				return names[i] == "INBOX"
			}
			return names[i] < names[j]
		})
		for _, n := range names {
			idx.folders = append(idx.folders, source.Folder{Name: n, SpecialUse: uses[n], Validity: Validity})
		}
	} else {
		idx.folders = []source.Folder{{Name: f.folder, Validity: Validity}}
	}
	f.idx = idx
	storeIndex(f.path, idx)
	return idx, nil
}

// Folders scans every file (for its validity and, in a Takeout file, its
// labels).
func (s *Source) Folders(ctx context.Context) ([]source.Folder, error) {
	if err := s.walk(); err != nil {
		return nil, err
	}
	var out []source.Folder
	for _, f := range s.files {
		f.idx = nil // a new listing sees the file as it is now (or its unchanged scan)
		idx, err := s.scan(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, fo := range idx.folders {
			if f.labels {
				s.folder[fo.Name] = f
			}
			out = append(out, fo)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Name == "INBOX" && out[j].Name != "INBOX"
	})
	return out, nil
}

func (s *Source) fileOf(f source.Folder) (*file, error) {
	if err := s.walk(); err != nil {
		return nil, err
	}
	if fl, ok := s.folder[f.Name]; ok {
		return fl, nil
	}
	// A Takeout label folder: the single file.
	if s.single && s.files[0].labels {
		return s.files[0], nil
	}
	return nil, failure.Mark(failure.Fatal, fmt.Errorf("mbox folder %q: no such file under %s", f.Name, s.root))
}

// members returns the entries of folder f.
func (s *Source) members(ctx context.Context, f source.Folder) (*file, *index, []int32, error) {
	fl, err := s.fileOf(f)
	if err != nil {
		return nil, nil, nil, err
	}
	idx, err := s.scan(ctx, fl)
	if err != nil {
		return nil, nil, nil, err
	}
	if f.Validity != 0 && f.Validity != Validity {
		return nil, nil, nil, &source.ValidityChangedError{Folder: f.Name, Old: f.Validity, New: Validity}
	}
	if !fl.labels {
		all := make([]int32, len(idx.entries))
		for i := range all {
			all[i] = int32(i)
		}
		return fl, idx, all, nil
	}
	return fl, idx, idx.members[f.Name], nil
}

// keyID is the ID of the n-th (from 0) message with a content key.
func keyID(key uint64, n int) string {
	s := fmt.Sprintf("%016x", key)
	if n > 0 {
		s += "-" + strconv.Itoa(n)
	}
	return s
}

// idKey returns the content key an ID carries.
func idKey(id string) (uint64, bool) {
	h, _, _ := strings.Cut(id, "-")
	if len(h) != 16 {
		return 0, false
	}
	k, err := strconv.ParseUint(h, 16, 64)
	return k, err == nil
}

// List returns the messages of f in file order.
func (s *Source) List(ctx context.Context, f source.Folder) ([]source.Meta, error) {
	_, idx, mem, err := s.members(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]source.Meta, len(mem))
	for i, k := range mem {
		e := &idx.entries[k]
		out[i] = source.Meta{ID: e.id, Size: e.size, Flags: e.flags, Received: time.Unix(e.date, 0)}
	}
	return out, nil
}

// Fetch seeks to each message's offset (from the listing's scan), checks
// that the same message is still there (the ID's content key) and streams
// it. When it is not, the file changed since the scan: it is scanned again
// (once per call) and the message looked up by its ID; one that is gone is
// reported in a *source.VanishedError.
func (s *Source) Fetch(ctx context.Context, f source.Folder, ids []string, fn func(source.Meta, io.Reader) error) error {
	fl, err := s.fileOf(f)
	if err != nil {
		return err
	}
	m, err := s.reader(fl)
	if err != nil {
		return err
	}
	idx, err := s.scan(ctx, fl)
	if err != nil {
		return err
	}
	rescanned := false
	var vanished []string
	for _, mid := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		key, ok := idKey(mid)
		if !ok {
			vanished = append(vanished, mid)
			continue
		}
		var x facts
		for {
			i, known := idx.byID[mid]
			err = errNotSeparator
			if known {
				if err = m.start(idx.entries[i].off); err == nil {
					err = m.readHeader()
				}
			}
			if err != nil && err != errNotSeparator {
				return fmt.Errorf("read message %s of mbox %s: %w", mid, fl.path, err)
			}
			if err == nil {
				x = s.facts(fl, m)
				if x.key == key && !x.expunged {
					break
				}
				err = errNotSeparator
			}
			if rescanned {
				break
			}
			s.log.Info("the mbox file changed since it was listed; scanning it again", "file", fl.path)
			fi, serr := fl.f.Stat()
			if serr != nil {
				return fmt.Errorf("read mbox %s: %w", fl.path, serr)
			}
			if idx, err = s.rescan(ctx, fl, fi); err != nil {
				return err
			}
			rescanned = true
		}
		if err != nil {
			vanished = append(vanished, mid)
			continue
		}
		meta := source.Meta{ID: mid, Flags: x.flags, Received: time.Unix(x.date.Unix(), 0)}
		if err := fn(meta, &ctxReader{ctx, m}); err != nil {
			return err
		}
	}
	if len(vanished) > 0 {
		return &source.VanishedError{Folder: f.Name, IDs: vanished}
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Identities gives the Identity of every message of f, reading only each
// message's header at its offset.
func (s *Source) Identities(ctx context.Context, f source.Folder, fn func(source.Identity) error) error {
	fl, idx, mem, err := s.members(ctx, f)
	if err != nil {
		return err
	}
	m, err := s.reader(fl)
	if err != nil {
		return err
	}
	for _, k := range mem {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &idx.entries[k]
		err := m.start(e.off)
		if err == nil {
			err = m.readHeader()
		}
		if err != nil && err != errNotSeparator {
			return fmt.Errorf("read the header of message %s of mbox %s: %w", e.id, fl.path, err)
		}
		x := s.facts(fl, m)
		if key, _ := idKey(e.id); err == errNotSeparator || x.key != key {
			continue // changed since the listing
		}
		if err := fn(source.Identity{ID: e.id, MessageID: x.msgID, Date: time.Unix(e.date, 0), Size: e.size}); err != nil {
			return err
		}
	}
	return nil
}
