//go:build !linux

package maildirpp

// Only Linux has O_NOATIME.
const oNoAtime = 0
