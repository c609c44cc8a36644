package main

import (
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"
)

// TestExecPeakRSSIsTheChilds: the peak RSS of a measured run is the
// child's, not the benchmark's. (wait4's ru_maxrss alone is not: Go starts
// children with vfork semantics and the kernel carries the parent's RSS
// high-water mark into the child at exec, so a 200,000-message run showed
// the benchmark's own 71 MB for every tool.)
func TestExecPeakRSSIsTheChilds(t *testing.T) {
	ballast := make([]byte, 150<<20)
	for i := 0; i < len(ballast); i += 4096 {
		ballast[i] = 1 // resident
	}
	c := &config{work: t.TempDir(), log: slog.New(slog.DiscardHandler)}
	ru, err := c.exec(context.Background(), "sleep", []string{"sleep", "0.3"}, time.Minute)
	runtime.KeepAlive(ballast)
	if err != nil {
		t.Fatal(err)
	}
	if ru.rssMB <= 0 || ru.rssMB > 50 {
		t.Fatalf("peak RSS of sleep 0.3 measured as %.1f MB (the benchmark holds 150 MB)", ru.rssMB)
	}
	if ru.wall < 0.3 {
		t.Errorf("wall %.2f s for sleep 0.3", ru.wall)
	}
}
