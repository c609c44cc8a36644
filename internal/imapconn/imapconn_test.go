package imapconn

import (
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
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailferry/mailferry/internal/failure"
)

func TestNames(t *testing.T) {
	tests := []struct {
		names     Names
		canonical string
		server    string
	}{
		{Names{Delim: '/'}, "INBOX", "INBOX"},
		{Names{Delim: '/'}, "A/B", "A/B"},
		{Names{Delim: '.'}, "A/B", "A.B"},
		{Names{Delim: '.', Prefix: "INBOX."}, "Sent", "INBOX.Sent"},
		{Names{Delim: '.', Prefix: "INBOX."}, "Archive/2024", "INBOX.Archive.2024"},
		{Names{Delim: '.', Prefix: "INBOX."}, "INBOX", "INBOX"},
		{Names{Delim: '.'}, "v1\u20242", "v1\u20242"},
		{Names{Delim: '/'}, "العملاء/الرياض", "العملاء/الرياض"},
		{Names{Delim: '.'}, "Tom & Jerry/a\u2215b", "Tom & Jerry.a/b"},
	}
	for _, tt := range tests {
		if got := tt.names.ToServer(tt.canonical); got != tt.server {
			t.Errorf("%+v.ToServer(%q) = %q, want %q", tt.names, tt.canonical, got, tt.server)
		}
		if got, ok := tt.names.ToCanonical(tt.server); !ok || got != tt.canonical {
			t.Errorf("%+v.ToCanonical(%q) = %q, %v, want %q", tt.names, tt.server, got, ok, tt.canonical)
		}
	}
	// A "." inside a component on a "."-server does not add a level.
	n := Names{Delim: '.'}
	if got := n.ToServer("v1.2"); strings.Count(got, ".") != 0 {
		t.Errorf("ToServer(v1.2) = %q", got)
	}
	// Outside the personal namespace.
	if _, ok := (Names{Delim: '.', Prefix: "INBOX."}).ToCanonical("shared.x"); ok {
		t.Error("shared.x is not personal")
	}
	// INBOX children on a prefix server.
	if got := (Names{Delim: '.', Prefix: "INBOX."}).ToServer("INBOX/Sub"); got != "INBOX.Sub" {
		t.Errorf("INBOX/Sub -> %q", got)
	}
}

func TestClassify(t *testing.T) {
	no := func(code imap.ResponseCode) error {
		return fmt.Errorf("op: %w", &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: "x"})
	}
	tests := []struct {
		err  error
		want failure.Kind
	}{
		{no(imap.ResponseCodeAuthenticationFailed), failure.Auth},
		{no(imap.ResponseCodeUnavailable), failure.Temporary},
		{no("THROTTLED"), failure.Temporary},
		{no(imap.ResponseCodeLimit), failure.Temporary},
		{no(imap.ResponseCodeOverQuota), failure.Quota},
		{no(imap.ResponseCodeTooBig), failure.Message},
		{no(""), failure.Unknown},
		{io.ErrUnexpectedEOF, failure.Temporary},
		// go-imap's decode errors are formatted with %v: only the text is left.
		{errors.New("in response-data: unexpected EOF"), failure.Temporary},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), failure.Temporary},
		{x509.UnknownAuthorityError{}, failure.TLS},
		{failure.Mark(failure.Fatal, io.EOF), failure.Fatal},
		{context.Canceled, failure.Unknown},
	}
	for _, tt := range tests {
		if got := failure.KindOf(Classify(tt.err)); got != tt.want {
			t.Errorf("Classify(%v) kind = %v, want %v", tt.err, got, tt.want)
		}
	}
	if Classify(nil) != nil {
		t.Error("Classify(nil) != nil")
	}
}

func startServer(t *testing.T, caps imap.CapSet, tlsCfg *tls.Config, implicit bool) string {
	mem := imapmemserver.New()
	mem.AddUser(imapmemserver.NewUser("u", "good"))
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps: caps, InsecureAuth: true, TLSConfig: tlsCfg, Logger: nopLogger{},
	})
	var ln net.Listener
	var err error
	if implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", tlsCfg)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...interface{}) {}

func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

func TestDial(t *testing.T) {
	srvTLS, pool := selfSigned(t)
	plainAddr := startServer(t, imap.CapSet{imap.CapIMAP4rev1: {}}, nil, false)
	stlsAddr := startServer(t, imap.CapSet{imap.CapIMAP4rev1: {}}, srvTLS, false)
	tlsAddr := startServer(t, imap.CapSet{imap.CapIMAP4rev1: {}}, srvTLS, true)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := ln.Addr().String()
	ln.Close()

	trusted := &tls.Config{RootCAs: pool}
	tests := []struct {
		name string
		cfg  Config
		want failure.Kind // Unknown: success
	}{
		{"plain ok", Config{Addr: plainAddr, Security: None, User: "u", Password: "good"}, failure.Unknown},
		{"plain bad password", Config{Addr: plainAddr, Security: None, User: "u", Password: "bad"}, failure.Auth},
		{"starttls not offered", Config{Addr: plainAddr, Security: STARTTLS, User: "u", Password: "good"}, failure.TLS},
		{"starttls ok", Config{Addr: stlsAddr, Security: STARTTLS, TLSConfig: trusted, User: "u", Password: "good"}, failure.Unknown},
		{"starttls unknown CA", Config{Addr: stlsAddr, Security: STARTTLS, User: "u", Password: "good"}, failure.TLS},
		{"implicit ok", Config{Addr: tlsAddr, Security: Implicit, TLSConfig: trusted, User: "u", Password: "good"}, failure.Unknown},
		{"implicit unknown CA", Config{Addr: tlsAddr, Security: Implicit, User: "u", Password: "good"}, failure.TLS},
		{"implicit bad password", Config{Addr: tlsAddr, Security: Implicit, TLSConfig: trusted, User: "u", Password: "x"}, failure.Auth},
		{"refused", Config{Addr: closedAddr, Security: None, User: "u", Password: "good"}, failure.Connect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Timeout = 5 * time.Second
			c, err := Dial(context.Background(), tt.cfg)
			if tt.want == failure.Unknown {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				if err := c.Noop().Wait(); err != nil {
					t.Errorf("NOOP: %v", err)
				}
				c.Close()
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if got := failure.KindOf(err); got != tt.want {
				t.Errorf("Dial error %v: kind %v, want %v", err, got, tt.want)
			}
			if strings.Contains(err.Error(), tt.cfg.Password) && tt.cfg.Password != "u" {
				t.Errorf("error contains the password: %v", err)
			}
			if tt.want == failure.TLS && strings.Contains(tt.name, "CA") && !strings.Contains(err.Error(), "--ca-file") {
				t.Errorf("TLS error does not suggest --ca-file: %v", err)
			}
		})
	}
}

func TestCloseOnDone(t *testing.T) {
	addr := startServer(t, imap.CapSet{imap.CapIMAP4rev1: {}}, nil, false)
	c, err := Dial(context.Background(), Config{Addr: addr, Security: None, User: "u", Password: "good"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := CloseOnDone(ctx, c)
	defer stop()
	cancel()
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("client not closed after cancel")
	}
	if err := c.Noop().Wait(); err == nil {
		t.Error("NOOP on a closed client succeeded")
	}
	if err := Wrap(ctx, errors.New("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Wrap = %v", err)
	}
}
