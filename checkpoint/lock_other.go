//go:build !unix

package checkpoint

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// lock is a no-op where flock is unavailable: two runs of the same job are
// then not prevented (documented limitation).
func lock(f *os.File) error { return nil }

func lockShared(f *os.File) error { return nil }
