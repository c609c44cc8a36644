// Package imapservers starts, by name, the real IMAP servers that
// integration tests run against on loopback (Dovecot and Cyrus), for tests
// that check one behaviour on both.
package imapservers

import (
	"testing"

	"github.com/mailferry/mailferry/internal/testkit/cyrustest"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

// Names are the servers Start knows, for t.Run.
var Names = []string{"Dovecot", "Cyrus"}

// Start starts server name (one of Names) with users (password "secret")
// and returns its IMAP address; the server stops when the test ends. A
// server that is not installed skips the test, as dovecottest and
// cyrustest do.
func Start(tb testing.TB, name string, users ...string) string {
	tb.Helper()
	switch name {
	case "Dovecot":
		return dovecottest.Start(tb, dovecottest.Options{Users: users}).IMAP
	case "Cyrus":
		return cyrustest.Start(tb, cyrustest.Options{Users: users}).IMAP
	}
	tb.Fatalf("imapservers: unknown server %q", name)
	return ""
}
