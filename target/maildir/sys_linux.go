package maildir

import (
	"io/fs"
	"syscall"
	"time"
)

// ctime is the inode change time of fi, which Chtimes cannot set back.
func ctime(fi fs.FileInfo) (time.Time, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(st.Ctim.Unix()), true
}
