package maildir

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/mailferry/mailferry/internal/maildirpp"
)

// Find and SetFlags look a message up by the unique part of its file name
// (the name an intent planned); the flags part may have changed since
// (a mail client, --sync-flags). The names a stored copy would have (cur/
// with the planned flags, new/) are tried first, with a stat each. A folder's directory is read once per
// process into an index, shared by every session of the run, and every
// session's renames into cur/ are noted in it. The index is not read again
// when the directory changes: other files appear (the other workers'
// stores), but none with a unique name the index lacks that a lookup asks
// for, since unique names are mailferry's own (derived from the journal
// key), each key is stored by one session at a time, and that session
// notes its rename. A file the index knows but that is gone (renamed by a
// mail client) makes it read the directory again. Before, the index was
// read again whenever the directory's mtime changed: during a copy that is
// every lookup, and a resume after kill -9 into a folder of 400,000 files
// read the directory once per open intent (1.4 GB allocated in 25 s).
//
// The indexes live while a Target session of the process is open, and are
// dropped with the last one (a later run in the same process, a test,
// reads the directories again).

// dirIndex maps the unique names of a folder to "cur/<base>" or "new/<base>".
type dirIndex struct {
	m map[string]string
}

type indexSet struct {
	mu   sync.Mutex
	open int
	m    map[string]*dirIndex // folder directory -> its index
}

var indexes = &indexSet{m: map[string]*dirIndex{}}

// hold and release count the open sessions.
func (s *indexSet) hold() {
	s.mu.Lock()
	s.open++
	s.mu.Unlock()
}

func (s *indexSet) release() {
	s.mu.Lock()
	if s.open--; s.open <= 0 {
		s.open = 0
		clear(s.m)
	}
	s.mu.Unlock()
}

// note records that unique is now at loc in the folder, if it is indexed.
func (s *indexSet) note(dir, unique, loc string) {
	s.mu.Lock()
	if x := s.m[dir]; x != nil {
		x.m[unique] = loc
	}
	s.mu.Unlock()
}

// lookup finds unique in the folder directory. likely are names (relative
// to the folder directory) that the message would have if stored as
// planned, checked first, one stat each.
func (s *indexSet) lookup(dir, unique string, likely ...string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, loc := range likely {
		if _, err := os.Lstat(filepath.Join(dir, loc)); err == nil {
			if x := s.m[dir]; x != nil {
				x.m[unique] = loc
			}
			return loc, true, nil
		}
	}
	if x := s.m[dir]; x != nil {
		loc, ok := x.m[unique]
		if !ok {
			return "", false, nil
		}
		if _, err := os.Lstat(filepath.Join(dir, loc)); err == nil {
			return loc, true, nil
		}
	}
	x, err := buildIndex(dir)
	if err != nil {
		return "", false, err
	}
	s.m[dir] = x
	loc, ok := x.m[unique]
	return loc, ok, nil
}

// indexReads counts buildIndex calls (for tests).
var indexReads atomic.Int64

func buildIndex(dir string) (*dirIndex, error) {
	indexReads.Add(1)
	x := &dirIndex{m: map[string]string{}}
	for _, sub := range []string{"new", "cur"} { // cur wins
		err := eachFile(filepath.Join(dir, sub), func(name string) {
			u, _, _ := maildirpp.ParseFileName(name)
			x.m[u] = sub + "/" + name
		})
		if err != nil {
			return nil, err
		}
	}
	return x, nil
}
