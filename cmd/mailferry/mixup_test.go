package main

import (
	"bytes"
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailferry/mailferry/internal/testkit/pop3test"
)

// plainIMAP starts go-imap's in-memory server on a plain-text port (as
// port 143 is, before STARTTLS); tlsIMAP one on an implicit TLS port.
func startIMAP(t *testing.T, tlsCfg *tls.Config) string {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("u", "pw-imap")
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
	})
	var ln net.Listener
	var err error
	if tlsCfg != nil {
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

func startPOP3(t *testing.T, tlsCfg *tls.Config) string {
	t.Helper()
	srv, err := pop3test.Start(pop3test.Options{User: "u", Password: "pw", TLSConfig: tlsCfg, ImplicitTLS: tlsCfg != nil})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr()
}

// TestPortMixUps: a scheme on the wrong kind of port says what the port
// is and which endpoint fits, not "use --ca-file" or a parse error.
func TestPortMixUps(t *testing.T) {
	dir := t.TempDir()
	cert, caFile, err := demoCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	imapPlain := startIMAP(t, nil)
	imapTLS := startIMAP(t, tlsCfg)
	pop3Plain := startPOP3(t, nil)
	pop3TLS := startPOP3(t, tlsCfg)
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"imaps on a STARTTLS port", "imaps://u@" + imapPlain, []string{"use imap:// for it, or imaps:// with the TLS port (usually 993)"}},
		{"imaps on a POP3S port", "imaps://u@" + pop3TLS, []string{"greeted like a POP3 server", "use pop3s://"}},
		{"imap without TLS on a POP3 port", "imap://u@" + pop3Plain + "?tls=none", []string{"greeted like a POP3 server"}},
		{"imap STARTTLS on a POP3 port", "imap://u@" + pop3Plain, []string{"greeted like a POP3 server"}},
		{"imaps on a POP3 port", "imaps://u@" + pop3Plain, []string{"like a POP3 server", "use pop3://"}},
		{"pop3s on an IMAPS port", "pop3s://u@" + imapTLS, []string{"greeted like an IMAP server", "use imaps://"}},
		{"pop3s on a plain IMAP port", "pop3s://u@" + imapPlain, []string{"like an IMAP server", "use imap://"}},
		{"pop3 on an IMAP port", "pop3://u@" + imapPlain + "?tls=none", []string{"greeted like an IMAP server"}},
		{"pop3s on a POP3 port", "pop3s://u@" + pop3Plain, []string{"use pop3:// for it, or pop3s:// with the TLS port (usually 995)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("MAILFERRY_SOURCE_PASSWORD", "pw")
			var out, errb bytes.Buffer
			code := run([]string{"plan", tc.src, "maildir:" + t.TempDir() + "/out", "--ca-file", caFile, "--state", t.TempDir(),
				"--timeout", "5s", "--retries", "0", "-q"}, &out, &errb)
			msg := errb.String()
			if code != exitConnection {
				t.Errorf("exit %d, want %d", code, exitConnection)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr lacks %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "--ca-file") || strings.Contains(msg, "expected CRLF") {
				t.Errorf("misleading hint:\n%s", msg)
			}
		})
	}
}
