//go:build unix

package checkpoint

import (
	"errors"
	"os"
	"syscall"
)

// errLocked means another open file description holds the lock.
var errLocked = errors.New("locked")

// lock takes an exclusive, non-blocking flock on f. It is released when f
// is closed (also by the kernel when the process dies, even by kill -9).
func lock(f *os.File) error { return flock(f, syscall.LOCK_EX) }

// lockShared takes a shared, non-blocking flock on f: it fails while a run
// holds the journal, and does not stand in the way of other readers.
func lockShared(f *os.File) error { return flock(f, syscall.LOCK_SH) }

func flock(f *os.File, how int) error {
	err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}
