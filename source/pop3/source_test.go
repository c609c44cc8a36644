package pop3

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/testkit/pop3test"
	"github.com/mailferry/mailferry/source"
)

// testMessages covers dot stuffing, a ".." line, bare LF, a missing final
// line ending is avoided (POP3 cannot carry it), and a long line.
func testMessages() [][]byte {
	return [][]byte{
		[]byte("From: a@example.org\r\nSubject: one\r\n\r\nHello.\r\n"),
		[]byte("Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\n...\r\n"),
		[]byte("Subject: bare lf\n\nline one\nline two\n.dot after lf\n"),
		[]byte("Subject: long\r\n\r\n" + strings.Repeat("x", 100000) + "\r\n"),
		[]byte("Subject: mixed\r\n\r\na\nb\r\n\r\n"),
	}
}

func startServer(t *testing.T, o pop3test.Options) *pop3test.Server {
	t.Helper()
	if o.Messages == nil {
		o.Messages = testMessages()
	}
	s, err := pop3test.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func srvCfg(s *pop3test.Server) Config {
	return Config{Addr: s.Addr(), Security: None, User: "user", Password: "secret", Timeout: 5 * time.Second}
}

func fetchAll(t *testing.T, src *Source, ids []string) (map[string][]byte, error) {
	t.Helper()
	got := map[string][]byte{}
	err := src.Fetch(context.Background(), source.Folder{Name: "INBOX"}, ids, func(m source.Meta, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if int64(len(b)) != m.Size {
			t.Errorf("%s: %d bytes, listed size %d", m.ID, len(b), m.Size)
		}
		got[m.ID] = b
		return nil
	})
	return got, err
}

func TestSourceRoundTrip(t *testing.T) {
	for _, o := range []pop3test.Options{
		{},
		{NoPipelining: true},
		{NoUIDL: true},
		{Latency: time.Millisecond},
	} {
		t.Run(fmt.Sprintf("nopipe=%v,nouidl=%v", o.NoPipelining, o.NoUIDL), func(t *testing.T) {
			srv := startServer(t, o)
			ctx := context.Background()
			src, err := Open(ctx, srvCfg(srv))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			fs, err := src.Folders(ctx)
			if err != nil || len(fs) != 1 || fs[0].Name != "INBOX" {
				t.Fatalf("Folders = %v, %v", fs, err)
			}
			metas, err := src.List(ctx, fs[0])
			if err != nil {
				t.Fatal(err)
			}
			msgs := testMessages()
			if len(metas) != len(msgs) {
				t.Fatalf("List: %d messages", len(metas))
			}
			var ids []string
			for i, m := range metas {
				if m.Size != int64(len(msgs[i])) {
					t.Errorf("message %d size %d, want %d", i+1, m.Size, len(msgs[i]))
				}
				if o.NoUIDL && !strings.HasPrefix(m.ID, "sha256:") {
					t.Errorf("ID without UIDL = %q", m.ID)
				}
				ids = append(ids, m.ID)
			}
			// Reverse order: Fetch follows the order of ids.
			rev := append([]string(nil), ids...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			var order []string
			err = src.Fetch(ctx, fs[0], rev, func(m source.Meta, r io.Reader) error {
				order = append(order, m.ID)
				if m.ID == rev[1] {
					return nil // leave the body unread: Fetch drains it
				}
				b, err := io.ReadAll(r)
				if err != nil {
					return err
				}
				i := indexOf(ids, m.ID)
				if !bytes.Equal(b, msgs[i]) {
					t.Errorf("message %d: got %q, want %q", i+1, clip(b), clip(msgs[i]))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(order, ",") != strings.Join(rev, ",") {
				t.Errorf("order %v, want %v", order, rev)
			}
			// A second session sees the same IDs.
			src2, err := Open(ctx, srvCfg(srv))
			if err != nil {
				t.Fatal(err)
			}
			defer src2.Close()
			metas2, err := src2.List(ctx, fs[0])
			if err != nil {
				t.Fatal(err)
			}
			for i := range metas2 {
				if metas2[i].ID != metas[i].ID {
					t.Errorf("ID of message %d changed between sessions", i+1)
				}
			}
		})
	}
}

func TestNoUIDLDuplicateHeaders(t *testing.T) {
	m := []byte("Subject: same\r\n\r\nbody\r\n")
	srv := startServer(t, pop3test.Options{NoUIDL: true, Messages: [][]byte{m, m, []byte("Subject: other\r\n\r\nbody\r\n")}})
	src, err := Open(context.Background(), srvCfg(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	metas, err := src.List(context.Background(), source.Folder{Name: "INBOX"})
	if err != nil {
		t.Fatal(err)
	}
	if metas[1].ID != metas[0].ID+"#2" || metas[2].ID == metas[0].ID {
		t.Errorf("IDs = %v", metas)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func clip(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}

func TestFetchVanished(t *testing.T) {
	srv := startServer(t, pop3test.Options{UIDLs: []string{"a", "b", "c", "d", "e"}})
	src, err := Open(context.Background(), srvCfg(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f := source.Folder{Name: "INBOX"}
	if err := src.Delete(context.Background(), f, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	got, err := fetchAll(t, src, []string{"a", "zzz", "b", "c"})
	var v *source.VanishedError
	if !errors.As(err, &v) {
		t.Fatalf("err = %v, want a VanishedError", err)
	}
	if strings.Join(v.IDs, ",") != "zzz,b" || v.Folder != "INBOX" {
		t.Errorf("vanished = %+v", v)
	}
	if len(got) != 2 || got["a"] == nil || got["c"] == nil {
		t.Errorf("delivered %d messages", len(got))
	}
	metas, _ := src.List(context.Background(), f)
	if len(metas) != 4 {
		t.Errorf("List after Delete: %d messages", len(metas))
	}
}

func TestDeleteCommitsAtQuitOnly(t *testing.T) {
	srv := startServer(t, pop3test.Options{UIDLs: []string{"a", "b", "c", "d", "e"}})
	ctx := context.Background()
	f := source.Folder{Name: "INBOX"}

	// Dropped session: nothing deleted.
	src, err := Open(ctx, srvCfg(srv))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Delete(ctx, f, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	src.Client().Close()
	time.Sleep(50 * time.Millisecond)
	if d := srv.Deleted(); len(d) != 0 {
		t.Fatalf("deleted without QUIT: %v", d)
	}

	// QUIT commits.
	src, err = Open(ctx, srvCfg(srv))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Delete(ctx, f, []string{"b", "d", "nope"}); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if d := srv.Deleted(); strings.Join(d, ",") != "b,d" {
		t.Errorf("Deleted = %v", d)
	}
	if r := srv.Remaining(); len(r) != 3 {
		t.Errorf("Remaining = %d messages", len(r))
	}
}

func TestInUse(t *testing.T) {
	srv := startServer(t, pop3test.Options{InUseAfter: 1})
	ctx := context.Background()
	first, err := Open(ctx, srvCfg(srv))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, srvCfg(srv))
	if !errors.Is(err, source.ErrSingleSession) || !failure.Is(err, failure.Temporary) {
		t.Fatalf("second session: %v (kind %v)", err, failure.KindOf(err))
	}
	first.Close()
	time.Sleep(50 * time.Millisecond)
	third, err := Open(ctx, srvCfg(srv))
	if err != nil {
		t.Fatalf("after the first session ended: %v", err)
	}
	third.Close()
}

func TestSysTempOnce(t *testing.T) {
	srv := startServer(t, pop3test.Options{SysTempOnce: true, UIDLs: []string{"a", "b", "c", "d", "e"}})
	src, err := Open(context.Background(), srvCfg(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = fetchAll(t, src, []string{"a", "b"})
	if !failure.Is(err, failure.Temporary) || !strings.Contains(err.Error(), "SYS/TEMP") {
		t.Fatalf("err = %v (kind %v)", err, failure.KindOf(err))
	}
	got, err := fetchAll(t, src, []string{"a", "b"})
	if err != nil || len(got) != 2 {
		t.Fatalf("retry: %d messages, %v", len(got), err)
	}
}

func TestWrongPassword(t *testing.T) {
	srv := startServer(t, pop3test.Options{})
	cfg := srvCfg(srv)
	cfg.Password = "wrong-pass"
	_, err := Open(context.Background(), cfg)
	if !failure.Is(err, failure.Auth) {
		t.Fatalf("err = %v", err)
	}
	want := fmt.Sprintf(`pop3 %s: login failed for "user": -ERR [AUTH] Authentication failed.`, srv.Addr())
	if err.Error() != want || strings.Contains(err.Error(), "wrong-pass") {
		t.Errorf("err = %q, want %q", err, want)
	}
}

// testTLS returns a server config with a fresh self-signed certificate
// for 127.0.0.1 and a client config trusting it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pop3test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

func TestTLS(t *testing.T) {
	srvTLS, cliTLS := testTLS(t)
	tests := []struct {
		name     string
		implicit bool
		sec      Security
		trust    bool
		kind     failure.Kind // Unknown = success
	}{
		{"implicit", true, Implicit, true, failure.Unknown},
		{"stls", false, STARTTLS, true, failure.Unknown},
		{"implicit untrusted", true, Implicit, false, failure.TLS},
		{"stls untrusted", false, STARTTLS, false, failure.TLS},
		{"implicit against plain port", false, Implicit, true, failure.TLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, pop3test.Options{TLSConfig: srvTLS, ImplicitTLS: tt.implicit})
			cfg := srvCfg(srv)
			cfg.Security = tt.sec
			cfg.Timeout = time.Second
			if tt.trust {
				cfg.TLSConfig = cliTLS
			}
			src, err := Open(context.Background(), cfg)
			if tt.kind == failure.Unknown {
				if err != nil {
					t.Fatal(err)
				}
				defer src.Close()
				if src.Client().HasCapability("STLS") {
					t.Error("STLS still offered after TLS")
				}
				if _, err := fetchAll(t, src, nil); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !failure.Is(err, tt.kind) {
				t.Fatalf("err = %v (kind %v), want %v", err, failure.KindOf(err), tt.kind)
			}
			// A plain-text port is not a certificate problem: the hint is
			// the scheme that fits it, not --ca-file.
			if hint := map[bool]string{true: "use pop3:// for it", false: "--ca-file"}[tt.name == "implicit against plain port"]; !strings.Contains(err.Error(), hint) {
				t.Errorf("error %q does not suggest %s", err, hint)
			}
		})
	}
}

func TestConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Open(context.Background(), Config{Addr: addr, Security: None, Timeout: time.Second})
	if !failure.Is(err, failure.Connect) {
		t.Fatalf("err = %v (kind %v)", err, failure.KindOf(err))
	}
}

func TestLongPasswordUsesSASLContinuation(t *testing.T) {
	pw := strings.Repeat("p", 300) // too long for an initial response on the AUTH line
	srv := startServer(t, pop3test.Options{Password: pw})
	cfg := srvCfg(srv)
	cfg.Password = pw
	src, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
}
