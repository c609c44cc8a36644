//go:build !(linux || darwin || freebsd || dragonfly)

package maildir

func freeSpace(string) (uint64, bool) { return 0, false }
