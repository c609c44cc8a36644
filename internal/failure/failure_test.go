package failure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		kind  Kind
		retry bool
		exit  int
		fatal bool
	}{
		{"marked auth", Mark(Auth, errors.New("no")), Auth, false, 3, true},
		{"marked auth, wrapped", fmt.Errorf("connect: %w", Mark(Auth, errors.New("no"))), Auth, false, 3, true},
		{"tls", Mark(TLS, errors.New("x509")), TLS, false, 3, true},
		{"fatal", Mark(Fatal, errors.New("[SYS/PERM]")), Fatal, false, 3, true},
		{"outermost mark wins", Mark(Message, Mark(Temporary, errors.New("x"))), Message, false, 3, false},
		// Connect: retryable once running (the start returns it at once).
		{"dns", &net.DNSError{Err: "no such host", Name: "x.invalid"}, Connect, true, 3, false},
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, Connect, true, 3, false},
		{"eof", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), Temporary, true, 3, false},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, Temporary, true, 3, false},
		{"deadline", fmt.Errorf("read: %w", os.ErrDeadlineExceeded), Temporary, true, 3, false},
		{"config", Mark(Config, errors.New("bad flag")), Config, false, 2, true},
		{"unknown", errors.New("something"), Unknown, true, 3, false},
		{"canceled", context.Canceled, Unknown, false, 3, false},
		{"quota", Mark(Quota, errors.New("full")), Quota, false, 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if k := KindOf(tc.err); k != tc.kind {
				t.Fatalf("kind %v, want %v", k, tc.kind)
			}
			if r := Retryable(tc.err); r != tc.retry {
				t.Fatalf("retryable %v, want %v", r, tc.retry)
			}
			if c := ExitCode(tc.err); c != tc.exit {
				t.Fatalf("exit %d, want %d", c, tc.exit)
			}
			if f := IsFatal(tc.err); f != tc.fatal {
				t.Fatalf("fatal %v, want %v", f, tc.fatal)
			}
		})
	}
	if Mark(Auth, nil) != nil {
		t.Fatal("Mark(nil) must be nil")
	}
	if e := Mark(Auth, errors.New("text")); e.Error() != "text" {
		t.Fatal("Mark changes the message")
	}
}
