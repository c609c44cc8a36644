package maildir

import "syscall"

// oNoAtime keeps a backup read from touching the files' access times.
const oNoAtime = syscall.O_NOATIME
