// Package checkpoint is mailferry's crash-safe journal (DESIGN.md §2): an
// append-only file of JSON lines, each followed by its CRC-32C, that records
// an "intent" durably before a message is sent and a "done" after the target
// has it, so that a run killed at any instant can be resumed exactly once.
//
// # File format
//
// Each line is the JSON record, a space, the CRC-32C (Castagnoli) of the JSON
// in 8 lowercase hex digits, and "\n". The first line is the header
// {"op":"v1","k":""}. Records: "intent" (all fields), "done" (all fields,
// completed from the intent when the caller leaves some empty, plus the
// receipt and the flags written), "flags" (key and flags) and "forget" (voids
// a key). Invalid UTF-8 in strings is kept losslessly (see line.go).
//
// # Damage
//
// A kill -9 can only tear the end of the file. On Open, the first line that
// is incomplete or fails its checksum ends the valid prefix. If no complete
// line after it verifies, the tail is garbage from an interrupted write (a
// torn line, zeros from a crashed file system): the file is truncated there
// and Truncated reports how many bytes went. If a later line does verify,
// the damage is in the middle of data that was once complete: Open refuses
// with an error naming the line, rather than silently dropping good records;
// the user can move the journal aside (the next run then asks the target
// about every message through the usual resume path) or cut it at that line.
//
// # Compaction and locking
//
// The file is a snapshot (one line per key) followed by a tail of records
// appended since; Close (and Open, after runs that never closed) rewrites it
// as a new snapshot when superseded records outnumber the keys: see
// compact.go. A run holds an flock on path+".lock", which holds its PID;
// OpenReadOnly reads a journal beside a running job without the lock.
//
// # Durability
//
// One writer goroutine appends to the file. Intent and Sync wait until their
// records are fsynced; everyone who waits while an fsync runs shares the
// next one (group commit). Done, SetFlags and Forget are queued and become
// durable at the next group commit, at the latest 50 ms later, and at Close.
// After a failed write or fsync the journal refuses all further records
// (the kernel may have dropped the dirty pages): the run must stop.
package checkpoint

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
)

// Record is one journal line.
type Record struct {
	Op      string   `json:"op"`           // "intent", "done", "flags", "forget" (void a key)
	Key     string   `json:"k"`            // source key, opaque to the journal
	Folder  string   `json:"f,omitempty"`  // target folder
	Name    string   `json:"n,omitempty"`  // planned unique name in the target
	Size    int64    `json:"s,omitempty"`  // octets as stored in the target
	SHA256  string   `json:"h,omitempty"`  // hex
	MsgID   string   `json:"m,omitempty"`  // Message-ID header value
	Receipt string   `json:"r,omitempty"`  // the target's name for the stored copy
	Flags   []string `json:"fl,omitempty"` // flags as last written to the target
	// Mark is what the target said about the folder before the store began
	// (target.Marker; IMAP: "uidvalidity:uidnext"), so that Find after a
	// crash looks only at messages that arrived after it.
	Mark string `json:"mk,omitempty"`
}

// Entry is what the journal knows about one key.
type Entry struct {
	Done    bool // a done record exists: the message is in the target
	Folder  string
	Name    string
	MsgID   string
	Receipt string
	Size    int64
	SHA256  string
	Flags   []string
	Mark    string
}

// ErrClosed is returned by operations on a closed journal.
var ErrClosed = errors.New("the journal is closed")

const (
	commitInterval = 50 * time.Millisecond
	flushThreshold = 1 << 20 // write without waiting for the ticker beyond this
)

// Journal is an open, locked journal file. Its methods are safe for
// concurrent use.
type Journal struct {
	path     string
	f        *os.File
	lockf    *os.File // path+".lock", flocked, holds our PID
	readOnly bool

	mu        sync.Mutex
	idx       *index
	live      int
	lines     int64  // records in the file (and buffer) after the header
	buf       []byte // records not yet handed to the file
	spare     []byte
	bufBase   int64  // file offset of buf[0]
	inflight  []byte // records being written
	inflBase  int64
	durable   int64         // file offset up to which everything is fsynced
	synced    chan struct{} // closed (and replaced) after each commit
	err       error         // sticky write/fsync error
	closed    bool
	truncated int64
	syncs     int64                // fsyncs done by the writer (tests)
	hook      func(p []byte) error // see SetWriteHook

	kick chan struct{}
	quit chan struct{}
	done chan struct{}
}

// ErrReadOnly is returned by the recording methods of a journal opened
// with OpenReadOnly.
var ErrReadOnly = errors.New("the journal is open read-only")

// Open opens (creating it if needed, mode 0600 in a 0700 directory) and
// locks the journal at path, replays it, and truncates a torn tail. It fails
// if another process (or another Open in this one) holds the journal; the
// error names the other process's PID. The lock is an flock on path+".lock",
// which holds the PID of the process that has the journal open.
func Open(path string) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, failure.Mark(failure.Fatal, fmt.Errorf("create the state directory for %s: %w", path, err))
	}
	lf, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		lf.Close()
		return nil, failure.Mark(failure.Fatal, fmt.Errorf("open the journal: %w", err))
	}
	// Also lock the journal itself, as versions before the lock file did.
	if err := lock(f); err != nil {
		f.Close()
		lf.Close()
		if errors.Is(err, errLocked) {
			return nil, failure.Mark(failure.Config, fmt.Errorf("another mailferry run is using %s", path))
		}
		return nil, failure.Mark(failure.Fatal, fmt.Errorf("lock the journal %s: %w", path, err))
	}
	// A compaction killed before its rename leaves its temporary file.
	os.Remove(path + compactSuffix)
	j := newJournal(path, f)
	j.lockf = lf
	if err := j.open(errors.Is(statErr, os.ErrNotExist)); err != nil {
		j.f.Close()
		lf.Close()
		return nil, err
	}
	if j.compactDue(2) {
		if err := j.compact(); err != nil {
			slog.Warn("journal: compaction failed; going on with the journal as it is", "path", path, "err", err)
		}
	}
	go j.writer()
	return j, nil
}

func newJournal(path string, f *os.File) *Journal {
	return &Journal{path: path, f: f, idx: newIndex(), synced: make(chan struct{}),
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// lockFile takes the lock of the journal at path and writes our PID into
// the lock file.
func lockFile(path string) (*os.File, error) {
	lp := path + ".lock"
	lf, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, failure.Mark(failure.Fatal, fmt.Errorf("open the lock file of the journal: %w", err))
	}
	err = lock(lf)
	// "mailferry jobs" takes a shared lock for an instant to see whether a
	// run holds the journal: wait that out rather than refuse.
	for try := 0; errors.Is(err, errLocked) && try < lockTries; try++ {
		time.Sleep(20 * time.Millisecond)
		err = lock(lf)
	}
	if err != nil {
		lf.Close()
		if errors.Is(err, errLocked) {
			if pid := readPID(lp); pid > 0 {
				return nil, failure.Mark(failure.Config, fmt.Errorf("another mailferry run (pid %d) is using %s", pid, path))
			}
			return nil, failure.Mark(failure.Config, fmt.Errorf("another mailferry run is using %s", path))
		}
		return nil, failure.Mark(failure.Fatal, fmt.Errorf("lock the journal %s: %w", path, err))
	}
	if err := lf.Truncate(0); err == nil {
		lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return lf, nil
}

// lockTries is how often Open tries again, 20 ms apart, to take a lock
// that is held.
const lockTries = 10

// readPID returns the PID written in a lock file, 0 if none.
func readPID(lockPath string) int {
	b, err := os.ReadFile(lockPath)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Holder reports whether a process holds the journal at path (a run is
// using it), and that process's PID when it wrote one. It takes a shared
// lock for the instant of the test (Open waits such a lock out).
func Holder(path string) (pid int, locked bool, err error) {
	lp := path + ".lock"
	lf, err := os.OpenFile(lp, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer lf.Close()
	if err := lockShared(lf); err != nil {
		if errors.Is(err, errLocked) {
			return readPID(lp), true, nil
		}
		return 0, false, err
	}
	return 0, false, nil
}

// OpenReadOnly replays the journal at path without locking it or changing
// it, for a reader beside a running job (mailferry plan): it sees the
// records that were complete when it opened. A journal that does not exist
// reads as empty. Intent, Done, SetFlags and Forget fail with ErrReadOnly;
// Get, Status, Range and Keys work as on a journal opened with Open.
func OpenReadOnly(path string) (*Journal, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		j := newJournal(path, nil)
		j.readOnly = true
		close(j.done)
		return j, nil
	}
	if err != nil {
		return nil, failure.Mark(failure.Fatal, fmt.Errorf("open the journal: %w", err))
	}
	j := newJournal(path, f)
	j.readOnly = true
	close(j.done)
	end, err := j.replay()
	if err != nil {
		f.Close()
		return nil, err
	}
	j.bufBase, j.durable = end, end
	return j, nil
}

func (j *Journal) open(created bool) error {
	fi, err := j.f.Stat()
	if err != nil {
		return failure.Mark(failure.Fatal, fmt.Errorf("open the journal: %w", err))
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := j.f.Chmod(0o600); err != nil {
			return failure.Mark(failure.Fatal, fmt.Errorf("make the journal private: %w", err))
		}
	}
	end, err := j.replay()
	if err != nil {
		return err
	}
	if end < fi.Size() {
		j.truncated = fi.Size() - end
		slog.Warn("journal: dropped an incomplete last record (interrupted write)", "path", j.path, "bytes", j.truncated)
		if err := j.f.Truncate(end); err != nil {
			return failure.Mark(failure.Fatal, fmt.Errorf("truncate the torn end of the journal: %w", err))
		}
	}
	if end == 0 {
		hdr := appendLine(nil, &Record{Op: opHeader})
		if _, err := j.f.Write(hdr); err != nil {
			return failure.Mark(failure.Fatal, fmt.Errorf("write the journal header: %w", err))
		}
		end = int64(len(hdr))
	}
	if end != fi.Size() || created {
		if err := j.f.Sync(); err != nil {
			return failure.Mark(failure.Fatal, fmt.Errorf("sync the journal: %w", err))
		}
	}
	if created {
		syncDir(filepath.Dir(j.path))
	}
	j.bufBase, j.durable = end, end
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// replay reads the file, fills the index, and returns the end of the valid
// prefix.
func (j *Journal) replay() (int64, error) {
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return 0, failure.Mark(failure.Fatal, fmt.Errorf("read the journal: %w", err))
	}
	br := bufio.NewReaderSize(j.f, 1<<20)
	var (
		off    int64
		lineNo int
		long   []byte
		raw    rawRecord
		sc     scratch
	)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && err != io.EOF {
			return 0, failure.Mark(failure.Fatal, fmt.Errorf("read the journal: %w", err))
		}
		if len(line) == 0 {
			return off, nil // clean end
		}
		lineNo++
		perr := parseRawMode(line, &raw, &sc, true)
		if perr == nil {
			perr = j.apply(&raw, off, lineNo)
		}
		if perr != nil {
			if errors.Is(perr, errTorn) || errors.Is(perr, errChecksum) {
				if later := verifiesLater(br); later > 0 {
					return 0, failure.Mark(failure.Fatal, fmt.Errorf(
						"the journal %s is damaged at line %d (%v) but %d later record(s) are intact; "+
							"move the file aside to start over (already copied messages are then found in the target), "+
							"or cut it before that line to keep the records above it", j.path, lineNo, perr, later))
				}
				return off, nil // torn tail
			}
			return 0, failure.Mark(failure.Fatal, fmt.Errorf("the journal %s has an unreadable record at line %d: %v", j.path, lineNo, perr))
		}
		off += int64(len(line))
	}
}

// verifiesLater counts the complete lines left in br whose checksum holds.
func verifiesLater(br *bufio.Reader) int {
	n := 0
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			if _, cerr := checkLine(line); cerr == nil {
				n++
			}
		}
		if err != nil {
			return n
		}
	}
}

// apply updates the index with a verified record read at off.
func (j *Journal) apply(r *rawRecord, off int64, lineNo int) error {
	if lineNo == 1 {
		if string(r.op) != opHeader {
			return fmt.Errorf("not a mailferry journal, or one written by a newer version (%q)", r.op)
		}
		return nil
	}
	if len(r.key) == 0 || len(r.key) > maxKeyLen {
		return fmt.Errorf("bad key length %d", len(r.key))
	}
	x := j.idx
	j.lines++
	switch string(r.op) {
	case opIntent, opDone:
		s := x.upsert(r.key)
		if s.state() == 0 || s.state() == stateForgotten {
			j.live++
		}
		s.setRec(off)
		st := stateIntent
		if string(r.op) == opDone {
			st = stateDone
		}
		s.setState(st)
		x.setFlags(&s, x.internJoined(r.flags, r.nflags))
	case opFlags:
		if s := x.get(r.key); s.ok() && s.state() != stateForgotten {
			x.setFlags(&s, x.internJoined(r.flags, r.nflags))
		}
	case opForget:
		if s := x.get(r.key); s.ok() && s.state() != stateForgotten {
			s.setState(stateForgotten)
			j.live--
		}
	default:
		return fmt.Errorf("unknown record %q", r.op)
	}
	return nil
}

// Truncated returns the number of bytes dropped from a torn tail at Open.
func (j *Journal) Truncated() int64 { return j.truncated }

// Len returns the number of keys the journal knows (not forgotten).
func (j *Journal) Len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.live
}

// Status returns whether key is known, whether it is done and its flags,
// from memory only (no file read): the fast path for a re-run that has to
// learn that nothing is new.
func (j *Journal) Status(key string) (done bool, flags []string, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.idx.get(bytesOf(key))
	if !s.ok() || s.state() == stateForgotten {
		return false, nil, false
	}
	return s.state() == stateDone, j.idx.flags(s.flagID()), true
}

// IsDone reports whether key has a done record (and is not forgotten): a
// Status without the flags and without allocating, for checking a page of
// keys.
func (j *Journal) IsDone(key []byte) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.idx.get(key)
	return s.ok() && s.state() == stateDone
}

// Get returns what the journal knows about key.
func (j *Journal) Get(key string) (Entry, bool) {
	j.mu.Lock()
	s := j.idx.get(bytesOf(key))
	if !s.ok() || s.state() == stateForgotten {
		j.mu.Unlock()
		return Entry{}, false
	}
	e, line, rec, closed := j.locate(s)
	j.mu.Unlock()
	var err error
	if line == nil {
		if closed {
			err = ErrClosed
		} else {
			line, err = readLineAt(j.f, rec)
		}
	}
	if err == nil {
		err = fill(&e, key, line)
	}
	if err != nil {
		slog.Error("journal: cannot read back a record", "path", j.path, "key", key, "err", err)
	}
	return e, true
}

// locate returns the in-memory part of s's entry and either a copy of its
// line (when it is still in memory) or the line's file offset. Called with
// j.mu held.
func (j *Journal) locate(s ref) (e Entry, line []byte, rec int64, closed bool) {
	e = Entry{Done: s.state() == stateDone, Flags: j.idx.flags(s.flagID())}
	rec = s.rec()
	switch {
	case rec >= j.bufBase:
		line = lineAt(j.buf[rec-j.bufBase:])
	case j.inflight != nil && rec >= j.inflBase:
		line = lineAt(j.inflight[rec-j.inflBase:])
	}
	return e, line, rec, j.closed
}

// fill completes e from the record line of key.
func fill(e *Entry, key string, line []byte) error {
	r, err := ParseLine(line)
	if err != nil {
		return fmt.Errorf("read the record of %q: %w", key, err)
	}
	if r.Key != key {
		return fmt.Errorf("read the record of %q: found the record of %q", key, r.Key)
	}
	e.Folder, e.Name, e.MsgID, e.Receipt, e.Size, e.SHA256, e.Mark = r.Folder, r.Name, r.MsgID, r.Receipt, r.Size, r.SHA256, r.Mark
	return nil
}

// lineAt copies the first line of b.
func lineAt(b []byte) []byte {
	for i, c := range b {
		if c == '\n' {
			return append([]byte(nil), b[:i+1]...)
		}
	}
	return append([]byte(nil), b...)
}

var readBufs = sync.Pool{New: func() any { b := make([]byte, 1024); return &b }}

func readLineAt(f *os.File, off int64) ([]byte, error) {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	for n := 0; ; {
		m, err := f.ReadAt(buf[n:], off+int64(n))
		for i, c := range buf[n : n+m] {
			if c == '\n' {
				*bp = buf
				return append([]byte(nil), buf[:n+i+1]...), nil
			}
		}
		n += m
		if err != nil {
			*bp = buf
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
	}
}

// Range calls fn for every key the journal knows, until fn returns false:
// the keys in slots in the order they first appeared, then those in dense
// pages by folder and UID (see index.go). fn may call the journal's other
// methods; keys added during Range may or may not be visited. Range reads
// the file in large windows, so a full pass costs about one sequential read
// of the journal.
func (j *Journal) Range(fn func(key string, e Entry) bool) {
	var win []byte
	var winOff int64
	var c cursor
	for {
		j.mu.Lock()
		s, more := j.idx.next(&c)
		if !more {
			j.mu.Unlock()
			return
		}
		if s.state() == stateForgotten {
			j.mu.Unlock()
			continue
		}
		key := j.idx.keyString(s)
		e, line, rec, closed := j.locate(s)
		j.mu.Unlock()
		var err error
		if line == nil && closed {
			err = ErrClosed
		} else if line == nil {
			line = lineIn(win, winOff, rec)
			if line == nil {
				if win == nil {
					win = make([]byte, 1<<20)
				}
				m, rerr := j.f.ReadAt(win[:cap(win)], rec)
				win, winOff = win[:m], rec
				if line = lineIn(win, winOff, rec); line == nil {
					if rerr == nil || rerr == io.EOF {
						line, err = readLineAt(j.f, rec) // longer than the window
					} else {
						err = rerr
					}
				}
			}
		}
		if err == nil {
			err = fill(&e, key, line)
		}
		if err != nil {
			slog.Error("journal: cannot read back a record", "path", j.path, "key", key, "err", err)
		}
		if !fn(key, e) {
			return
		}
	}
}

// Keys calls fn for every key the journal knows and whether it is done,
// without reading the file (cheap even with a million entries), until fn
// returns false. fn must not call the journal.
// FirstDone returns the first key (in the journal's order) with a done
// record among the keys that start with prefix + 0x1f (the engine's
// folder 0x1f UIDVALIDITY). Unlike Keys it builds no string for the keys
// of other prefixes: a lookup in a journal of a million entries.
func (j *Journal) FirstDone(prefix string) (string, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	x := j.idx
	g, interned := x.groups[prefix]
	want := prefix + string(rune(keySep))
	var c cursor
	for {
		s, more := x.next(&c)
		if !more {
			break
		}
		if s.state() != stateDone {
			continue
		}
		grp := s.grp
		if s.s != nil {
			grp = s.s.grp
		}
		if interned && grp == g {
			return x.keyString(s), true
		}
		if grp == 0 {
			// Kept whole (out of group numbers, or no separator).
			if k := x.keyString(s); strings.HasPrefix(k, want) && strings.LastIndexByte(k, keySep) == len(prefix) {
				return k, true
			}
		}
	}
	return "", false
}

func (j *Journal) Keys(fn func(key string, done bool) bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var c cursor
	for {
		s, more := j.idx.next(&c)
		if !more {
			return
		}
		if s.state() == stateForgotten {
			continue
		}
		if !fn(j.idx.keyString(s), s.state() == stateDone) {
			return
		}
	}
}

// Prefixes calls fn, until it returns false, for every key prefix (a key
// up to its last 0x1f byte; the engine's folder 0x1f UIDVALIDITY) with the
// number of done and of other live keys under it, from memory only and
// without building each key: what Keys gives, per folder, at a fraction of
// the cost. Keys without 0x1f are left out. fn must not call the journal.
func (j *Journal) Prefixes(fn func(prefix string, done, pending int) bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	x := j.idx
	type count struct{ done, pending int }
	groups := make([]count, len(x.prefixes))
	var whole map[string]*count // keys kept whole in group 0
	var order []string
	var cur cursor
	for {
		r, more := x.next(&cur)
		if !more {
			break
		}
		st := r.state()
		if st == stateForgotten {
			continue
		}
		if r.s == nil { // a page entry
			c := &groups[r.grp]
			if st == stateDone {
				c.done++
			} else {
				c.pending++
			}
			continue
		}
		s := r.s
		c := &groups[s.grp]
		if s.grp == 0 {
			if s.bits&numericID != 0 {
				continue // a bare number: no prefix
			}
			id := x.strID(s)
			k := bytes.LastIndexByte(id, keySep)
			if k < 0 {
				continue
			}
			if whole == nil {
				whole = map[string]*count{}
			}
			if c = whole[string(id[:k])]; c == nil {
				c = &count{}
				whole[string(id[:k])] = c
				order = append(order, string(id[:k]))
			}
		}
		if st == stateDone {
			c.done++
		} else {
			c.pending++
		}
	}
	for g := 1; g < len(groups); g++ {
		if c := groups[g]; c.done+c.pending > 0 && !fn(x.prefixes[g], c.done, c.pending) {
			return
		}
	}
	for _, p := range order {
		if c := whole[p]; !fn(p, c.done, c.pending) {
			return
		}
	}
}

// lineIn returns the complete line at off if the window holds it.
func lineIn(win []byte, winOff, off int64) []byte {
	if off < winOff || off >= winOff+int64(len(win)) {
		return nil
	}
	b := win[off-winOff:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i+1]
	}
	return nil
}

func (j *Journal) check(r *Record) error {
	if r.Key == "" {
		return errors.New("journal record without a key")
	}
	if len(r.Key) > maxKeyLen {
		return fmt.Errorf("journal key too long (%d bytes)", len(r.Key))
	}
	if r.Size < 0 {
		return fmt.Errorf("negative size %d", r.Size)
	}
	for _, f := range r.Flags {
		for i := 0; i < len(f); i++ {
			if f[i] == 0 {
				return fmt.Errorf("flag %q contains a NUL byte", f)
			}
		}
	}
	return nil
}

// appendLocked appends r to the buffer and returns the offset of its line
// and the offset just after it. Called with j.mu held.
func (j *Journal) appendLocked(r *Record) (int64, int64, error) {
	if j.closed {
		return 0, 0, ErrClosed
	}
	if j.readOnly {
		return 0, 0, ErrReadOnly
	}
	if j.err != nil {
		return 0, 0, j.err
	}
	j.lines++
	off := j.bufBase + int64(len(j.buf))
	j.buf = appendLine(j.buf, r)
	end := j.bufBase + int64(len(j.buf))
	if len(j.buf) >= flushThreshold {
		j.signal()
	}
	return off, end, nil
}

func (j *Journal) signal() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// put appends an intent or done record and updates the index.
func (j *Journal) put(r *Record, state uint8) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	off, end, err := j.appendLocked(r)
	if err != nil {
		return 0, err
	}
	if off >= maxOffset {
		return 0, fmt.Errorf("the journal %s is over 1 TiB", j.path)
	}
	s := j.idx.upsert(bytesOf(r.Key))
	if s.state() == 0 || s.state() == stateForgotten {
		j.live++
	}
	s.setRec(off)
	s.setState(state)
	j.idx.setFlags(&s, j.idx.internFlags(r.Flags))
	return end, nil
}

// Intent records that the message r.Key is about to be sent. It returns
// only once the record is durable (or ctx is done, or the journal failed).
func (j *Journal) Intent(ctx context.Context, r Record) error {
	return j.Intents(ctx, []Record{r})
}

// Intents records several intents and returns once all of them are durable,
// with one fsync for the lot: a worker declares a whole batch before it
// fetches the first body.
func (j *Journal) Intents(ctx context.Context, rs []Record) error {
	var end int64
	for i := range rs {
		r := rs[i]
		r.Op = opIntent
		if err := j.check(&r); err != nil {
			return err
		}
		e, err := j.put(&r, stateIntent)
		if err != nil {
			return err
		}
		end = e
	}
	if len(rs) == 0 {
		return nil
	}
	return j.wait(ctx, end)
}

// Done records that the message r.Key is stored in the target, with its
// receipt and the flags written. Fields left empty (Folder, Name, Size,
// SHA256, MsgID) are taken from the key's intent. The record is queued: it
// is durable after the next Sync, at the latest 50 ms later.
func (j *Journal) Done(r Record) error {
	r.Op = opDone
	if err := j.check(&r); err != nil {
		return err
	}
	if r.Folder == "" || r.Name == "" || r.Size == 0 || r.SHA256 == "" || r.MsgID == "" {
		if e, ok := j.Get(r.Key); ok {
			r.Folder = cmp(r.Folder, e.Folder)
			r.Name = cmp(r.Name, e.Name)
			r.SHA256 = cmp(r.SHA256, e.SHA256)
			r.MsgID = cmp(r.MsgID, e.MsgID)
			if r.Size == 0 {
				r.Size = e.Size
			}
		}
	}
	_, err := j.put(&r, stateDone)
	return err
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// SetFlags records the flags now set on the stored copy of key. Queued like
// Done.
func (j *Journal) SetFlags(key string, flags []string) error {
	r := Record{Op: opFlags, Key: key, Flags: flags}
	if err := j.check(&r); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.idx.get(bytesOf(key))
	if !s.ok() || s.state() == stateForgotten {
		return fmt.Errorf("set flags: the journal has no record of %q", key)
	}
	if _, _, err := j.appendLocked(&r); err != nil {
		return err
	}
	j.idx.setFlags(&s, j.idx.internFlags(flags))
	return nil
}

// Forget voids key: Get no longer finds it. Queued like Done.
func (j *Journal) Forget(key string) error {
	r := Record{Op: opForget, Key: key}
	if err := j.check(&r); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.idx.get(bytesOf(key))
	if !s.ok() || s.state() == stateForgotten {
		return nil
	}
	if _, _, err := j.appendLocked(&r); err != nil {
		return err
	}
	s.setState(stateForgotten)
	j.live--
	return nil
}

// Sync waits until every record appended so far is durable.
func (j *Journal) Sync(ctx context.Context) error {
	j.mu.Lock()
	end := j.bufBase + int64(len(j.buf))
	j.mu.Unlock()
	return j.wait(ctx, end)
}

func (j *Journal) wait(ctx context.Context, end int64) error {
	for {
		j.mu.Lock()
		if j.durable >= end {
			j.mu.Unlock()
			return nil
		}
		if j.err != nil {
			err := j.err
			j.mu.Unlock()
			return err
		}
		closed := j.closed
		ch := j.synced
		j.mu.Unlock()
		if closed {
			select {
			case <-j.done: // the writer has stopped
				j.mu.Lock()
				ok := j.durable >= end
				j.mu.Unlock()
				if ok {
					return nil
				}
				return ErrClosed
			default:
			}
		}
		j.signal()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// writer is the single goroutine that writes and fsyncs the file.
func (j *Journal) writer() {
	defer close(j.done)
	t := time.NewTicker(commitInterval)
	defer t.Stop()
	for {
		select {
		case <-j.kick:
		case <-t.C:
			if j.hooked() {
				continue // commit only when asked: the same writes every run
			}
		case <-j.quit:
			j.commit()
			return
		}
		j.commit()
	}
}

// commit writes the buffer and fsyncs, waking every waiter.
func (j *Journal) commit() {
	j.mu.Lock()
	if j.err != nil || (len(j.buf) == 0 && j.durable == j.bufBase) {
		j.mu.Unlock()
		return
	}
	out, base := j.buf, j.bufBase
	j.inflight, j.inflBase = out, base
	j.buf, j.spare = j.spare[:0], nil
	j.bufBase += int64(len(out))
	hook := j.hook
	j.mu.Unlock()

	var err error
	if len(out) > 0 && hook != nil {
		if err = hook(out); err != nil {
			err = fmt.Errorf("write the journal %s: %w", j.path, err)
		}
	}
	if len(out) > 0 && err == nil {
		if _, err = j.f.Write(out); err != nil {
			err = fmt.Errorf("write the journal %s: %w", j.path, err)
		}
	}
	if err == nil {
		j.mu.Lock()
		j.inflight = nil
		if cap(out) <= 4*flushThreshold {
			j.spare = out[:0]
		}
		j.mu.Unlock()
		if err = j.f.Sync(); err != nil {
			err = fmt.Errorf("sync the journal %s: %w", j.path, err)
		}
	}
	j.mu.Lock()
	if err != nil {
		// Keep inflight: Get still finds those records in memory.
		j.err = failure.Mark(failure.Fatal, err)
		slog.Error("journal: write failed; no further records accepted", "path", j.path, "err", err)
	} else {
		j.durable = base + int64(len(out))
		j.syncs++
	}
	close(j.synced)
	j.synced = make(chan struct{})
	j.mu.Unlock()
}

// Close makes every record durable, compacts the journal when more than
// half of its records are superseded (see compact.go), unlocks and closes
// the file. Get and Range must not be used after Close.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	if j.readOnly {
		if j.f != nil {
			return j.f.Close()
		}
		return nil
	}
	close(j.quit)
	<-j.done
	j.mu.Lock()
	err := j.err
	j.mu.Unlock()
	if err == nil && j.compactDue(1) {
		if cerr := j.compact(); cerr != nil {
			slog.Warn("journal: compaction failed; the journal stays as it is", "path", j.path, "err", cerr)
		}
	}
	if cerr := j.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close the journal %s: %w", j.path, cerr)
	}
	if j.lockf != nil {
		j.lockf.Truncate(0)
		j.lockf.Close()
	}
	return err
}
