package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
)

// The memory budget (--memory) sizes the engine's windows (how many planned
// messages wait for a worker, a listing page, the in-memory part of each
// spool) and is the Go runtime's soft heap limit, unless GOMEMLIMIT is set.
// The engine stays well below it, so the collector never has to run
// continuously to keep under it.

// maxDefaultMemory is the budget without --memory: beyond it the windows
// are no larger (migrate.Options.Memory).
const maxDefaultMemory = 256 << 20

// Where the kernel says how much memory this process's control group may
// use: cgroup v2, then v1. Variables for the tests.
var cgroupLimitFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// cgroupMemoryLimit is the memory limit of the control group, 0 when none
// (or unreadable, or "max", or the v1 "unlimited" value).
func cgroupMemoryLimit() int64 {
	for _, f := range cgroupLimitFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 {
			return 0 // v1 "unlimited" is a page-rounded 2^63-1
		}
		return n
	}
	return 0
}

// defaultMemory is 3/4 of the control group's limit (room for the rest of
// the process and the page cache), at most maxDefaultMemory.
func defaultMemory() int64 {
	if l := cgroupMemoryLimit(); l > 0 {
		return min(l/4*3, maxDefaultMemory)
	}
	return maxDefaultMemory
}

// parseMemory reads a --memory SIZE: bytes, or a number with K, M, G (or
// KB, KiB, ...; powers of 1024). "" is defaultMemory.
func parseMemory(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return defaultMemory(), nil
	}
	u := strings.ToUpper(s)
	mult := int64(1)
	for _, suf := range []struct {
		s string
		m int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(u, suf.s) {
			u, mult = strings.TrimSpace(strings.TrimSuffix(u, suf.s)), suf.m
			break
		}
	}
	n, err := strconv.ParseFloat(u, 64)
	if err != nil || n <= 0 || n*float64(mult) >= 1<<62 {
		return 0, fmt.Errorf("--memory %q: want a size such as 128M or 1G", s)
	}
	b := int64(n * float64(mult))
	if b < 16<<20 {
		return 0, fmt.Errorf("--memory %q: at least 16M", s)
	}
	return b, nil
}

// setMemoryLimit makes budget the soft heap limit, unless GOMEMLIMIT says
// otherwise.
func setMemoryLimit(budget int64) {
	memoryBudget.Store(budget)
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(budget)
	}
}

// memoryBudget is the budget setMemoryLimit was last given (the GC tuner
// never sets a limit above it).
var memoryBudget atomic.Int64
