package migrate

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSettle: the target is asked about a lost store only settleDelay after
// the loss, and after the start of the run (README promises it); with
// neither recent, no wait; a cancelled run does not wait.
func TestSettle(t *testing.T) {
	old := settleDelay
	defer func() { settleDelay = old }()
	ctx := context.Background()
	long := time.Now().Add(-time.Hour)

	settleDelay = 10 * time.Second
	w := &worker{e: &engine{started: long}}
	start := time.Now()
	if err := w.settle(ctx); err != nil || time.Since(start) > settleDelay/2 {
		t.Fatalf("nothing recent: waited %v (%v)", time.Since(start), err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	w.unknownAt = time.Now()
	if err := w.settle(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}

	settleDelay = 150 * time.Millisecond
	for _, tc := range []struct {
		name                   string
		recentStart, recentErr bool
	}{
		{"after an unknown outcome", false, true},
		{"after the start of a run", true, false},
	} {
		w := &worker{e: &engine{started: long}}
		if tc.recentStart {
			w.e.started = time.Now()
		}
		if tc.recentErr {
			w.unknownAt = time.Now()
		}
		start := time.Now()
		if err := w.settle(ctx); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < settleDelay*2/3 {
			t.Errorf("%s: waited only %v", tc.name, d)
		}
	}
}
