//go:build !linux

package maildir

// oNoAtime: only Linux has O_NOATIME.
const oNoAtime = 0
