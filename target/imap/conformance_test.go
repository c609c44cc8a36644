package imap

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/mailferry/mailferry/internal/testkit/conformance"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	"github.com/mailferry/mailferry/target"
)

// TestConformance runs the target suite against go-imap's in-memory server.
func TestConformance(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	conformance.RunTarget(t, func(t testing.TB) target.Target {
		tg, err := Open(context.Background(), srv.Config())
		if err != nil {
			t.Fatal(err)
		}
		return tg
	})
}

// TestDovecotConformance runs the target suite against Dovecot.
func TestDovecotConformance(t *testing.T) {
	if !dovecottest.Available() {
		t.Skip("Dovecot is not installed")
	}
	dv := dovecottest.Start(t, dovecottest.Options{})
	var dials atomic.Int32
	cfg := dovecotConfig(t, dv, "dst", &dials)
	conformance.RunTarget(t, func(t testing.TB) target.Target {
		tg, err := Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	})
}
