package pop3

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/source"
)

// TestDovecot checks RETR against a real Dovecot
// (internal/testkit/dovecottest) whose user "pop" holds a generated
// INBOX (internal/testkit/corpus): every message comes back byte-identical
// over STLS and over implicit TLS.
func TestDovecot(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{Users: []string{"pop"}})
	msgs := corpus.Generate(corpus.Options{Messages: 120, Seed: 12, OnlyInbox: true})
	dv.Load(t, "pop", msgs)
	pem, err := os.ReadFile(dv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)

	want := map[[32]byte]int{}
	for _, m := range msgs {
		want[sha256.Sum256(m.Body)]++
	}
	for _, tt := range []struct {
		name string
		sec  Security
		addr string
	}{{"stls", STARTTLS, dv.POP3}, {"implicit", Implicit, dv.POP3S}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			src, err := Open(ctx, Config{Addr: tt.addr, Security: tt.sec,
				TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, User: "pop", Password: dovecottest.Password, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			t.Logf("CAPA: %v", src.Client().Capabilities())
			f := source.Folder{Name: "INBOX"}
			metas, err := src.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]string, len(metas))
			for i, m := range metas {
				ids[i] = m.ID
			}
			got := map[[32]byte]int{}
			err = src.Fetch(ctx, f, ids, func(m source.Meta, r io.Reader) error {
				b, err := io.ReadAll(r)
				if err != nil {
					return err
				}
				if int64(len(b)) != m.Size {
					t.Errorf("%s: RETR gave %d bytes, LIST said %d", m.ID, len(b), m.Size)
				}
				got[sha256.Sum256(b)]++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d messages fetched", len(metas))
			missing := 0
			for h, n := range want {
				if got[h] != n {
					missing++
				}
			}
			if missing > 0 || len(got) != len(want) || len(metas) != len(msgs) {
				t.Errorf("%d corpus messages not returned byte-identical (%d of %d listed, %d distinct fetched, %d expected)",
					missing, len(metas), len(msgs), len(got), len(want))
			}
		})
	}
}

func TestDovecotWrongPassword(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{Users: []string{"pop"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Open(ctx, Config{Addr: dv.POP3, Security: None, User: "pop", Password: "not-the-password", Timeout: 10 * time.Second})
	if !failure.Is(err, failure.Auth) || strings.Contains(err.Error(), "not-the-password") {
		t.Fatalf("err = %v (kind %v)", err, failure.KindOf(err))
	}
	t.Log(err)
}
