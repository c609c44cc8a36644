package main

import (
	"os"
	"syscall"
)

// maxRSSKiB is the child's peak RSS as wait4 reports it (KiB on Linux).
func maxRSSKiB(ps *os.ProcessState) int64 {
	if u, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return int64(u.Maxrss)
	}
	return 0
}
