package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// startProfiles is for developers measuring mailferry (BENCHMARKS.md):
// MAILFERRY_CPUPROFILE=FILE writes a CPU profile of the whole run, and
// MAILFERRY_HEAPPROFILE=FILE a heap profile at its end (after a GC, so it
// shows what is still held; alloc_space shows what was allocated). Not in
// --help: users never need them (MAILFERRY_HEAPPROFILE_EVERY: see below). The returned func stops and writes them.
func startProfiles() func() {
	var stops []func()
	if path := os.Getenv("MAILFERRY_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mailferry: MAILFERRY_CPUPROFILE: %v\n", err)
		} else if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "mailferry: MAILFERRY_CPUPROFILE: %v\n", err)
			f.Close()
		} else {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if path := os.Getenv("MAILFERRY_HEAPPROFILE"); path != "" {
		write := func(path string) {
			f, err := os.Create(path)
			if err != nil {
				fmt.Fprintf(os.Stderr, "mailferry: MAILFERRY_HEAPPROFILE: %v\n", err)
				return
			}
			defer f.Close()
			runtime.GC()
			if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
				fmt.Fprintf(os.Stderr, "mailferry: MAILFERRY_HEAPPROFILE: %v\n", err)
			}
		}
		// MAILFERRY_HEAPPROFILE_EVERY=DURATION also writes PATH.1, PATH.2,
		// ... during the run: what is held mid-copy, where the end's
		// profile shows only what outlives the journal.
		if every, err := time.ParseDuration(os.Getenv("MAILFERRY_HEAPPROFILE_EVERY")); err == nil && every > 0 {
			t := time.NewTicker(every)
			quit := make(chan struct{})
			go func() {
				for n := 1; ; n++ {
					select {
					case <-t.C:
						write(fmt.Sprintf("%s.%d", path, n))
					case <-quit:
						return
					}
				}
			}()
			stops = append(stops, func() { t.Stop(); close(quit) })
		}
		stops = append(stops, func() { write(path) })
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}
