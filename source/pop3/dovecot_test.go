package pop3

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/source"
)

// TestDovecot checks RETR against a real Dovecot started with
// /work/shared/bench/dovecot-up.sh DIR PORTBASE and loaded with
// load-corpus.sh DIR pop CORPUS --only INBOX. It runs only when
// MAILFERRY_POP3_DOVECOT_DIR=DIR is set; MAILFERRY_POP3_DOVECOT_CORPUS
// names the corpus directory (its INBOX/*.eml must equal what RETR returns).
func TestDovecot(t *testing.T) {
	dir := os.Getenv("MAILFERRY_POP3_DOVECOT_DIR")
	if dir == "" {
		t.Skip("MAILFERRY_POP3_DOVECOT_DIR not set")
	}
	conf, err := os.ReadFile(filepath.Join(dir, "dovecot.conf"))
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]string{}
	for _, m := range regexp.MustCompile(`inet_listener (pop3s?) \{\s*address = \S+\s*port = (\d+)`).FindAllStringSubmatch(string(conf), -1) {
		ports[m[1]] = m[2]
	}
	pem, err := os.ReadFile(filepath.Join(dir, "ssl", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)

	want := map[[32]byte]int{}
	if corpus := os.Getenv("MAILFERRY_POP3_DOVECOT_CORPUS"); corpus != "" {
		files, _ := filepath.Glob(filepath.Join(corpus, "INBOX", "*.eml"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want[sha256.Sum256(b)]++
		}
	}
	for _, tt := range []struct {
		name string
		sec  Security
		port string
	}{{"stls", STARTTLS, ports["pop3"]}, {"implicit", Implicit, ports["pop3s"]}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			src, err := Open(ctx, Config{Addr: "127.0.0.1:" + tt.port, Security: tt.sec,
				TLSConfig: &tls.Config{RootCAs: pool}, User: "pop", Password: "secret", Timeout: 10 * time.Second})
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
			if len(want) > 0 {
				missing := 0
				for h, n := range want {
					if got[h] != n {
						missing++
					}
				}
				if missing > 0 || len(got) != len(want) {
					t.Errorf("%d corpus messages not returned byte-identical (%d distinct fetched, %d expected)", missing, len(got), len(want))
				}
			}
		})
	}
}

func TestDovecotWrongPassword(t *testing.T) {
	dir := os.Getenv("MAILFERRY_POP3_DOVECOT_DIR")
	if dir == "" {
		t.Skip("MAILFERRY_POP3_DOVECOT_DIR not set")
	}
	conf, err := os.ReadFile(filepath.Join(dir, "dovecot.conf"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`inet_listener pop3 \{\s*address = \S+\s*port = (\d+)`).FindStringSubmatch(string(conf))
	if m == nil {
		t.Fatal("no pop3 listener in dovecot.conf")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = Open(ctx, Config{Addr: "127.0.0.1:" + m[1], Security: None, User: "pop", Password: "not-the-password", Timeout: 10 * time.Second})
	if !failure.Is(err, failure.Auth) || strings.Contains(err.Error(), "not-the-password") {
		t.Fatalf("err = %v (kind %v)", err, failure.KindOf(err))
	}
	t.Log(err)
}
