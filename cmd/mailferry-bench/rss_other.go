//go:build !linux

package main

import "os"

// maxRSSKiB is 0 off Linux: the benchmark's servers and its VmHWM sampling
// are Linux only; this file lets the benchmark compile in the cross builds.
func maxRSSKiB(ps *os.ProcessState) int64 { return 0 }
