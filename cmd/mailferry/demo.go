package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"embed"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailferry/mailferry/internal/testkit/pop3test"
	"github.com/mailferry/mailferry/migrate"
)

//go:embed testdata/demo/*.eml
var demoMail embed.FS

// testHookStats, when set, sees the live counters of each migrate run; the
// demo uses it to interrupt itself part-way.
var testHookStats func(*migrate.Stats)

const usageDemo = `Usage: mailferry demo [flags]

Runs mailferry's main job on built-in servers, with no network and no
setup: an in-process POP3 server (over TLS) holding sample mail (Arabic,
Japanese and German subjects, attachments, dot-stuffed lines, no Message-ID,
two messages sharing one Message-ID) and an in-process IMAP server.
It moves the POP3 mailbox to IMAP and to a Maildir in a temporary
directory, interrupts itself part-way (as Ctrl-C would), resumes, runs once
more to show that nothing is copied twice, and verifies the result.

Examples:
  mailferry demo
  mailferry demo --messages 5000 --keep
`

func newDemoFlags(out io.Writer) (fs *flag.FlagSet, n *int, keep *bool) {
	fs = flag.NewFlagSet("demo", flag.ContinueOnError)
	n = fs.Int("messages", 600, "put `N` messages in the demo POP3 mailbox")
	keep = fs.Bool("keep", false, "keep the temporary directory (Maildir, journals) and print its path")
	fs.Usage = func() { printUsage(out, usageDemo, fs, nil) }
	return fs, n, keep
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs, n, keep := newDemoFlags(stdout)
	pos, err := parseArgs(fs, args)
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected argument %q; usage: mailferry demo [flags]", pos[0])
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "mailferry demo: %v\n", err)
		return exitUsage
	}
	code, err := demo(*n, *keep, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mailferry demo: %v\n", err)
		return exitConnection
	}
	return code
}

// demoMessages builds n messages from the samples: each sample once as it
// is, then numbered copies with their own Message-ID.
func demoMessages(n int) ([][]byte, error) {
	ents, err := demoMail.ReadDir("testdata/demo")
	if err != nil {
		return nil, err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	var samples [][]byte
	for _, e := range ents {
		b, err := demoMail.ReadFile("testdata/demo/" + e.Name())
		if err != nil {
			return nil, err
		}
		samples = append(samples, b)
	}
	out := make([][]byte, 0, n)
	for i := 0; len(out) < n; i++ {
		s := samples[i%len(samples)]
		if i >= len(samples) {
			// A numbered copy: its own Message-ID (or a header of its own).
			if j := bytes.Index(s, []byte("\nMessage-ID: <")); j >= 0 {
				k := j + bytes.IndexByte(s[j:], '@')
				s = bytes.Join([][]byte{s[:k], []byte(".copy" + strconv.Itoa(i)), s[k:]}, nil)
			} else {
				s = append([]byte("X-Demo-Copy: "+strconv.Itoa(i)+"\r\n"), s...)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func demo(n int, keep bool, stdout, stderr io.Writer) (int, error) {
	dir, err := os.MkdirTemp("", "mailferry-demo-")
	if err != nil {
		return 0, err
	}
	if keep {
		defer fmt.Fprintf(stdout, "\nThe demo's files are kept in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	cert, caFile, err := demoCert(dir)
	if err != nil {
		return 0, fmt.Errorf("make a certificate: %w", err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}

	msgs, err := demoMessages(n)
	if err != nil {
		return 0, err
	}
	pop, err := pop3test.Start(pop3test.Options{User: "sam", Password: "demo-pop3-secret", Messages: msgs,
		TLSConfig: tlsCfg, ImplicitTLS: true, Latency: 2 * time.Millisecond})
	if err != nil {
		return 0, fmt.Errorf("start the demo POP3 server: %w", err)
	}
	defer pop.Close()
	imapAddr, stopIMAP, err := demoIMAPServer(tlsCfg)
	if err != nil {
		return 0, fmt.Errorf("start the demo IMAP server: %w", err)
	}
	defer stopIMAP()

	os.Setenv("MAILFERRY_SOURCE_PASSWORD", "demo-pop3-secret")
	os.Setenv("MAILFERRY_TARGET_PASSWORD", "demo-imap-secret")
	src := "pop3s://sam@" + pop.Addr()
	state := filepath.Join(dir, "state")
	common := []string{"--ca-file", caFile, "--state", state}

	fmt.Fprintf(stdout, "mailferry demo: %d messages in a POP3 mailbox at %s (TLS), an IMAP server at %s (TLS)\n", len(msgs), pop.Addr(), imapAddr)
	targets := []struct{ title, url string }{
		{"POP3 → IMAP", "imaps://sam@" + imapAddr},
		{"POP3 → Maildir backup", "maildir:" + filepath.Join(dir, "Maildir")},
	}
	worst := exitOK
	for i, t := range targets {
		fmt.Fprintf(stdout, "\n━━ %d. %s ━━\n$ mailferry migrate %s %s\n", i+1, t.title, src, t.url)
		interruptAt := int64(len(msgs) * 2 / 5)
		var fired atomic.Bool
		testHookStats = func(st *migrate.Stats) {
			go func() {
				for !fired.Load() {
					if st.Copied.Load() >= interruptAt {
						fired.Store(true)
						fmt.Fprintf(stdout, "\n⚡ demo: pressing Ctrl-C after %d messages\n", st.Copied.Load())
						// As Ctrl-C would; where a process cannot signal
						// itself (Windows), the run simply completes.
						if p, err := os.FindProcess(os.Getpid()); err == nil {
							p.Signal(os.Interrupt)
						}
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		code := run(append([]string{"migrate", src, t.url}, common...), stdout, stderr)
		testHookStats = nil
		fired.Store(true)
		fmt.Fprintf(stdout, "(exit code %d)\n\n$ mailferry migrate %s %s   # again: resumes\n", code, src, t.url)
		code = run(append([]string{"migrate", src, t.url}, common...), stdout, stderr)
		fmt.Fprintf(stdout, "(exit code %d)\n\n$ mailferry migrate %s %s   # once more: nothing new\n", code, src, t.url)
		code = run(append([]string{"migrate", src, t.url}, common...), stdout, stderr)
		fmt.Fprintf(stdout, "(exit code %d)\n\n$ mailferry verify --deep %s %s\n", code, src, t.url)
		vcode := run(append([]string{"verify", "--deep", src, t.url}, common...), stdout, stderr)
		fmt.Fprintf(stdout, "(exit code %d)\n", vcode)
		worst = max(worst, code, vcode)
	}
	fmt.Fprintln(stdout, "\nThe demo's POP3 server deleted nothing:", len(pop.Deleted()), "deletions.")
	return worst, nil
}

// demoIMAPServer starts go-imap's in-memory IMAP server over TLS.
func demoIMAPServer(tlsCfg *tls.Config) (string, func(), error) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("sam", "demo-imap-secret")
	if err := u.Create("INBOX", nil); err != nil {
		return "", nil, err
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:      imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		TLSConfig: tlsCfg,
	})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tlsCfg)
	if err != nil {
		return "", nil, err
	}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }, nil
}

// demoCert makes a self-signed certificate for 127.0.0.1 and writes it as
// the CA file the demo passes with --ca-file.
func demoCert(dir string) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailferry demo"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	caFile := filepath.Join(dir, "demo-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile, nil
}
