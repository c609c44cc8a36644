package servertest

import (
	"os"
	"os/exec"
	"syscall"
)

// OwnGroup makes cmd, once started, the leader of its own process group
// that dies with this process (SIGTERM on the parent's death), so that a
// server started by a test never outlives it even when cleanups do not run.
func OwnGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
}

// KillGroup kills p's whole process group (p started with OwnGroup).
func KillGroup(p *os.Process) { syscall.Kill(-p.Pid, syscall.SIGKILL) }
