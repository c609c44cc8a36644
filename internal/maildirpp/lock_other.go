//go:build !unix

package maildirpp

import (
	"path/filepath"
	"sync"
)

var dirLocks sync.Map // cleaned path -> *sync.Mutex

// LockDir serialises writers of one folder directory inside this process
// (the workers of a run). Without flock, another process is not kept out:
// a documented limitation where flock does not exist.
func LockDir(root string) (unlock func(), err error) {
	m, _ := dirLocks.LoadOrStore(filepath.Clean(root), new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock, nil
}
