package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuOf is the CPU time used so far by this process and by the Dovecot
// instance of the configuration conf (its master's process group,
// finished processes included).
func cpuOf(conf string) time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	stat := func(pid string) []string {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return nil
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			return nil
		}
		return strings.Fields(s[i+2:]) // from the state on: [0] state, [2] pgrp, [11..14] utime stime cutime cstime
	}
	ents, _ := os.ReadDir("/proc")
	pgrp := ""
	for _, e := range ents {
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.Contains(string(b), conf) {
			if f := stat(e.Name()); len(f) > 14 {
				pgrp = f[2]
				break
			}
		}
	}
	if pgrp == "" {
		return total
	}
	const tick = 10 * time.Millisecond // USER_HZ 100
	for _, e := range ents {
		f := stat(e.Name())
		if len(f) <= 14 || f[2] != pgrp {
			continue
		}
		for _, k := range f[11:15] {
			v, _ := strconv.ParseInt(k, 10, 64)
			total += time.Duration(v) * tick
		}
	}
	return total
}
