//go:build linux || darwin || freebsd || dragonfly

package maildir

import "syscall"

// freeSpace is what the file system holding dir has left for this user.
func freeSpace(dir string) (uint64, bool) {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}
