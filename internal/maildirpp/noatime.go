package maildirpp

import (
	"errors"
	"os"
)

// OpenNoAtime opens a file read-only without updating its access time
// where the system allows it and the process may (it owns the file):
// reading a whole Maildir should not write every inode.
func OpenNoAtime(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|oNoAtime, 0)
	if oNoAtime != 0 && errors.Is(err, os.ErrPermission) {
		f, err = os.Open(p)
	}
	return f, err
}
