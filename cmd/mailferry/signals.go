package main

import (
	"context"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// stoppedBy is the signal that stopped the run (0: none yet): the exit code
// is 130 for SIGINT (Ctrl-C) and 143 for SIGTERM, as a shell reports a
// process killed by them.
var stoppedBy atomic.Int32

// signalContext is cancelled by SIGINT or SIGTERM; it records which.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			if s == syscall.SIGTERM {
				stoppedBy.Store(int32(syscall.SIGTERM))
			} else {
				stoppedBy.Store(int32(syscall.SIGINT))
			}
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel()
	}
}

// interruptCode is the exit code of a run stopped by a signal.
func interruptCode() int {
	if stoppedBy.Load() == int32(syscall.SIGTERM) {
		return exitTerminated
	}
	return exitInterrupted
}

// interruptWord says how the run was stopped.
func interruptWord() string {
	if stoppedBy.Load() == int32(syscall.SIGTERM) {
		return "terminated (SIGTERM)"
	}
	return "interrupted"
}
