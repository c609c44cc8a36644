package imap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/testkit/imapservers"
	"github.com/mailferry/mailferry/target"
)

// TestBinaryFindServers: on Dovecot and Cyrus (both announce BINARY) a
// NUL message goes as a literal8, and Find, without a mark, knows it by its
// bytes. (Under BODY[] Dovecot serves NUL as 0x80 and Cyrus sends a
// literal8 that go-imap cannot parse: Find reads BINARY.PEEK[] for it.)
func TestBinaryFindServers(t *testing.T) {
	for _, srv := range imapservers.Names {
		t.Run(srv, func(t *testing.T) {
			addr := imapservers.Start(t, srv, "dst")
			cfg := imapconn.Config{Addr: addr, Security: imapconn.None, User: "dst", Password: "secret", Timeout: 10 * time.Second}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b := nulBody(7)
			d := target.Delivery{Folder: "INBOX", Size: int64(len(b)), Binary: true,
				Fingerprint: target.Fingerprint{MessageID: "<n7@x>", Size: int64(len(b)), SHA256: sha256.Sum256(b)}}
			tg, err := Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !tg.AppendsBinary() {
				t.Fatal("AppendsBinary() false")
			}
			r, err := tg.Put(ctx, d, bytes.NewReader(b))
			tg.Close()
			if err != nil || r == "" {
				t.Fatalf("Put: %q, %v", r, err)
			}
			tg, err = Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			got, ok, err := tg.Find(ctx, d)
			if err != nil || !ok || got != r {
				t.Fatalf("Find = %q, %v, %v; want %q", got, ok, err, r)
			}
		})
	}
}
