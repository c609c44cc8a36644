package maildirpp

import "syscall"

const oNoAtime = syscall.O_NOATIME
