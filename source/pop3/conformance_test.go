package pop3

import (
	"context"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/conformance"
	"github.com/mailferry/mailferry/internal/testkit/pop3test"
	"github.com/mailferry/mailferry/source"
)

// TestConformance runs the source suite against the POP3 test server.
func TestConformance(t *testing.T) {
	conformance.RunSource(t, func(t testing.TB, msgs []conformance.Seed) source.Opener {
		var box [][]byte
		for _, m := range msgs {
			box = append(box, m.Body)
		}
		srv, err := pop3test.Start(pop3test.Options{Messages: box})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		cfg := Config{Addr: srv.Addr(), Security: None, User: "user", Password: "secret", Timeout: 5 * time.Second}
		return func(ctx context.Context) (source.Source, error) { return Open(ctx, cfg) }
	})
}
