// Package failure classes errors in one place: what the engine retries,
// what fails one message, and what stops the run (exit code 3, or 2 for a
// configuration error).
//
// Drivers mark the errors they return with Mark; the engine and the CLI ask
// with KindOf. An unmarked error is Unknown and treated as retryable a few
// times by the engine before it fails the message.
package failure

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// Kind is the class of an error.
type Kind int

const (
	// Unknown: not classified by the driver.
	Unknown Kind = iota
	// Temporary: worth retrying after a pause on a new connection
	// (connection reset, timeout, BYE, [UNAVAILABLE], [THROTTLED], [SYS/TEMP]).
	Temporary
	// Message: this one message cannot be stored (too big, refused bytes);
	// report it and go on.
	Message
	// Quota: the target is full; stop the folder, report, resumable later.
	Quota
	// Auth: authentication failed. Fatal, exit 3.
	Auth
	// TLS: certificate or TLS negotiation failure, or a server without TLS
	// where TLS is required. Fatal, exit 3.
	TLS
	// Connect: the host is unknown or refuses connections. Fatal at start
	// (exit 3), temporary once a run has connected before.
	Connect
	// Config: a usage or configuration error. Fatal, exit 2.
	Config
	// Fatal: any other error that must stop the run (exit 3), such as a
	// protocol violation at login or a permanent server refusal ([SYS/PERM]).
	Fatal
)

var names = [...]string{"unknown", "temporary", "message", "quota", "auth", "tls", "connect", "config", "fatal"}

func (k Kind) String() string {
	if int(k) < len(names) {
		return names[k]
	}
	return "kind?"
}

type marked struct {
	kind Kind
	err  error
}

func (m *marked) Error() string { return m.err.Error() }
func (m *marked) Unwrap() error { return m.err }

// Mark returns err classed as k. Mark(k, nil) is nil.
func Mark(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &marked{kind: k, err: err}
}

// KindOf returns the class of err: the outermost Mark wins; otherwise a
// best guess from the standard library's network errors.
func KindOf(err error) Kind {
	if err == nil {
		return Unknown
	}
	var m *marked
	if errors.As(err, &m) {
		return m.kind
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return Connect
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return Connect
	}
	if errors.Is(err, context.Canceled) {
		return Unknown
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
		return Temporary
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Temporary
	}
	return Unknown
}

// Is reports whether err is of class k.
func Is(err error, k Kind) bool { return KindOf(err) == k }

// Retryable reports whether an operation that failed with err may succeed
// when tried again on a fresh connection. A Connect error is: a run that
// cannot connect at its start stops (the engine returns that error), but
// one that loses the server later waits for it like for a reset.
func Retryable(err error) bool {
	switch KindOf(err) {
	case Temporary, Unknown, Connect:
		return !errors.Is(err, context.Canceled)
	}
	return false
}

// IsFatal reports whether err must stop the run whatever it was doing:
// authentication, TLS, configuration and the errors marked Fatal. It is
// the one list the engine and the drivers consult.
func IsFatal(err error) bool {
	switch KindOf(err) {
	case Auth, TLS, Config, Fatal:
		return true
	}
	return false
}

// ExitCode maps a run-stopping error to the CLI exit code (README: exit
// codes).
func ExitCode(err error) int {
	switch KindOf(err) {
	case Config:
		return 2
	case Auth, TLS, Connect, Fatal:
		return 3
	}
	return 3
}
