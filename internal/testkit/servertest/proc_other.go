//go:build !linux

package servertest

import (
	"os"
	"os/exec"
)

// OwnGroup does nothing here: the test servers (Dovecot, Cyrus) run on
// Linux only; this file lets the harnesses and the benchmark compile for
// the cross builds.
func OwnGroup(cmd *exec.Cmd) {}

// KillGroup kills p alone.
func KillGroup(p *os.Process) { p.Kill() }
