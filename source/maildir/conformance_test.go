package maildir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/internal/testkit/conformance"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/target"
	maildirtgt "github.com/mailferry/mailferry/target/maildir"
)

// TestConformance runs the source suite on a Maildir written by the Maildir
// target (flags as letters, the internal date as the mtime).
func TestConformance(t *testing.T) {
	conformance.RunSource(t, func(t testing.TB, msgs []conformance.Seed) source.Opener {
		root := t.TempDir()
		ctx := context.Background()
		tg, err := maildirtgt.Open(ctx, root, maildirtgt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer tg.Close()
		if _, err := tg.Ensure(ctx, mailbox.Folder{Name: "INBOX"}); err != nil {
			t.Fatal(err)
		}
		for i, m := range msgs {
			d := target.Delivery{Folder: "INBOX", Flags: m.Flags, Date: conformance.Date, Size: int64(len(m.Body)),
				Name: fmt.Sprintf("seed%d", i), Fingerprint: target.Fingerprint{Size: int64(len(m.Body)), SHA256: sha256.Sum256(m.Body)}}
			if _, err := tg.Put(ctx, d, bytes.NewReader(m.Body)); err != nil {
				t.Fatal(err)
			}
		}
		return func(ctx context.Context) (source.Source, error) { return Open(ctx, root) }
	})
}
