//go:build unix

package maildirpp

import (
	"fmt"
	"os"
	"syscall"
)

// LockDir takes an exclusive flock on a folder directory (for updating its
// keyword table from several writers); call the returned function to unlock.
func LockDir(root string) (unlock func(), err error) {
	f, err := os.Open(root)
	if err != nil {
		return nil, fmt.Errorf("lock Maildir %s: %w", root, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock Maildir %s: %w", root, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
