package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMExits143: a run stopped by SIGTERM exits 143 (128+15) and says
// so, as README promises; SIGINT stays 130.
func TestSIGTERMExits143(t *testing.T) {
	defer stoppedBy.Store(0)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
		word string
	}{{syscall.SIGTERM, exitTerminated, "terminated (SIGTERM)"}, {syscall.SIGINT, exitInterrupted, "interrupted"}} {
		stoppedBy.Store(0)
		ctx, stop := signalContext()
		if err := syscall.Kill(os.Getpid(), tc.sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the signal did not cancel the run")
		}
		stop()
		var errb bytes.Buffer
		code := finish(&errb, "migrate", errors.Join(context.Canceled), false, &common{secrets: new(secretList)})
		if code != tc.code || !strings.Contains(errb.String(), tc.word) || exitCodeOf(context.Canceled, false) != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.sig, code, tc.code, errb.String())
		}
	}
}
