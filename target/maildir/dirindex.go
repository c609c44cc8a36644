package maildir

import (
	"hash/maphash"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/mailferry/mailferry/internal/maildirpp"
)

// Find and SetFlags look a message up by the unique part of its file name
// (the name an intent planned); the flags part may have changed since
// (a mail client, --sync-flags). The names a stored copy would have (cur/
// with the planned flags, new/) are tried first, with a stat each. Then a
// folder's directory is read once per process into an index of the unique
// names it holds (a 64-bit hash each: 400,000 files in about 5 MB), shared
// by every session of the run; every session's renames into cur/ are
// noted in it. A unique name the index lacks is not in the folder: the
// index is not read again when the directory changes (the other workers'
// stores change it all the time), since unique names are mailferry's own
// (derived from the journal key), each key is stored by one session at a
// time, and that session notes its rename. A unique name the index has
// but under a name not tried first is looked for in one more read of the
// directory. Before, the index (every name) was read again whenever the
// directory's mtime changed: during a copy that is every lookup, and a
// resume after kill -9 into a folder of 400,000 files read it once per
// open intent (1.4 GB allocated in 25 s, 250+ MB RSS).
//
// The indexes live while a Target session of the process is open, and are
// dropped with the last one (a later run in the same process, a test,
// reads the directories again).

// dirIndex holds the hashes of the unique names of a folder's files.
type dirIndex struct {
	seen map[uint64]struct{}
}

type indexSet struct {
	mu   sync.Mutex
	seed maphash.Seed
	open int
	m    map[string]*dirIndex // folder directory -> its index
}

var indexes = &indexSet{seed: maphash.MakeSeed(), m: map[string]*dirIndex{}}

// indexReads counts the reads of a folder's directory by lookups (tests).
var indexReads atomic.Int64

func (s *indexSet) hash(unique string) uint64 { return maphash.String(s.seed, unique) }

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

// note records that the folder holds unique, if it is indexed.
func (s *indexSet) note(dir, unique string) {
	s.mu.Lock()
	if x := s.m[dir]; x != nil {
		x.seen[s.hash(unique)] = struct{}{}
	}
	s.mu.Unlock()
}

// lookup finds unique in the folder directory and returns where it is
// ("cur/<base>" or "new/<base>"). likely are names (relative to the folder
// directory) that the message would have if stored as planned.
func (s *indexSet) lookup(dir, unique string, likely ...string) (string, bool, error) {
	for _, loc := range likely {
		if _, err := os.Lstat(filepath.Join(dir, loc)); err == nil {
			return loc, true, nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.m[dir]
	if x == nil {
		x = &dirIndex{seen: map[uint64]struct{}{}}
		if _, _, err := s.scan(dir, func(u string) bool { x.seen[s.hash(u)] = struct{}{}; return false }); err != nil {
			return "", false, err
		}
		s.m[dir] = x
	}
	if _, ok := x.seen[s.hash(unique)]; !ok {
		return "", false, nil
	}
	loc, ok, err := s.scan(dir, func(u string) bool { return u == unique })
	if err == nil && !ok {
		delete(x.seen, s.hash(unique)) // gone, or another name's hash
	}
	return loc, ok, err
}

// scan reads new/ then cur/ of the folder, calling fn with the unique part
// of each file name until it returns true; it returns that file's place
// (cur/ is read last and wins, as Dovecot moves files from new/ to cur/).
func (s *indexSet) scan(dir string, fn func(unique string) bool) (loc string, found bool, err error) {
	indexReads.Add(1)
	for _, sub := range []string{"new", "cur"} {
		err := eachFile(filepath.Join(dir, sub), func(name string) {
			if u, _, _ := maildirpp.ParseFileName(name); fn(u) {
				loc, found = sub+"/"+name, true
			}
		})
		if err != nil {
			return "", false, err
		}
	}
	return loc, found, nil
}
