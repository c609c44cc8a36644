// Package dovecottest starts private, loopback-only Dovecot instances
// (IMAP, IMAPS, POP3, POP3S) for mailferry's integration tests, loads test
// mail into them and reads it back as the test oracle.
//
// Each Start gets its own directory, instance name, base_dir and free
// ports, so tests of several packages can run their own instances at the
// same time. The configuration comes from testdata/dovecot/dovecot.conf.tmpl
// at the module root. Users are in a passwd-file (password "secret"), mail
// is Maildir++ under Dir/mail/USER/Maildir. As root, mail is owned by the
// system account mailferrytest (created with useradd when missing), because
// Dovecot refuses UID 0 for mail users.
//
// When Dovecot is not installed, Start skips the test, unless the
// environment has MAILFERRY_REQUIRE_DOVECOT=1 (CI), then it fails.
package dovecottest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/servertest"
)

// Password is the password of every user.
const Password = "secret"

// MailAccount is the system account that owns the mail when the tests run
// as root.
const MailAccount = "mailferrytest"

// DefaultUsers are the users of an instance when Options.Users is empty.
var DefaultUsers = []string{"src", "dst", "pop", "pop2", "u1", "u2"}

// Options configure an instance. The zero value is the common setup.
type Options struct {
	// Users to create (default DefaultUsers), all with password "secret".
	Users []string
	// Separator is the IMAP hierarchy separator: "/" (default) or ".".
	Separator string
	// Prefix is the personal namespace prefix: "" (default) or "INBOX."
	// (with Separator ".").
	Prefix string
	// POP3LockSession makes a second POP3 session of a user fail with
	// "-ERR [IN-USE] ..." while one is open. Dovecot first waits about 10 s
	// for its session dotlock (a fixed timeout, no setting changes it), so
	// the refusal arrives after the PASS/AUTH reply is ~10 s late.
	POP3LockSession bool
	// QuotaBytes sets a storage quota in bytes (counted with RFC822, i.e.
	// CRLF, sizes: quota "count" backend, quota_vsizes) for some users;
	// APPEND over it fails with [OVERQUOTA]. doveadm shows it in KiB.
	QuotaBytes map[string]int64
	// MaxUserIPConnections is mail_max_userip_connections for IMAP and
	// POP3: sessions of one user from one address (0: 200; Dovecot's own
	// default is 10).
	MaxUserIPConnections int
}

// Server is a running instance.
type Server struct {
	// Dir holds the configuration, logs, certificate and mail.
	Dir string
	// Addresses "127.0.0.1:port" of the listeners. IMAP and POP3 offer
	// STARTTLS/STLS; IMAPS and POP3S are implicit TLS.
	IMAP, IMAPS, POP3, POP3S string
	// CAFile is the self-signed certificate (PEM) of all listeners, for
	// --ca-file. It is valid for 127.0.0.1 and localhost.
	CAFile string
	// Conf is the dovecot.conf of the instance (doveadm -c Conf ...).
	Conf string

	opt      Options
	uid, gid int
	cmd      *exec.Cmd
	exited   chan struct{}
	stderr   *servertest.LockedBuffer
}

var instances atomic.Int64

// binaries finds dovecot and doveadm; "" when Dovecot is not installed.
func binaries() (dovecot, doveadm string) {
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
			if p := filepath.Join(d, name); servertest.IsExec(p) {
				return p
			}
		}
		return ""
	}
	dovecot, doveadm = find("dovecot"), find("doveadm")
	if dovecot == "" || doveadm == "" {
		return "", ""
	}
	// The protocol binaries come from dovecot-imapd / dovecot-pop3d.
	for _, lib := range []string{"/usr/lib/dovecot", "/usr/libexec/dovecot", "/usr/local/libexec/dovecot"} {
		if servertest.IsExec(filepath.Join(lib, "imap")) && servertest.IsExec(filepath.Join(lib, "pop3")) {
			return dovecot, doveadm
		}
	}
	return "", ""
}

// Available reports whether Dovecot (with IMAP and POP3) is installed.
func Available() bool {
	d, _ := binaries()
	return d != ""
}

// templatePath is testdata/dovecot/dovecot.conf.tmpl at the module root.
func templatePath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "dovecot", "dovecot.conf.tmpl")
}

// Start starts an instance and registers its shutdown with tb.Cleanup.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	dovecot, _ := binaries()
	if dovecot == "" {
		if os.Getenv("MAILFERRY_REQUIRE_DOVECOT") == "1" {
			tb.Fatal("dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d) and MAILFERRY_REQUIRE_DOVECOT=1")
		}
		tb.Skip("dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d); skipping")
	}
	if len(o.Users) == 0 {
		o.Users = DefaultUsers
	}
	if o.Separator == "" {
		o.Separator = "/"
	}
	if o.Separator != "/" && o.Separator != "." {
		tb.Fatalf("dovecottest: separator %q: want \"/\" or \".\"", o.Separator)
	}
	if o.Prefix != "" && !strings.HasSuffix(o.Prefix, o.Separator) {
		tb.Fatalf("dovecottest: prefix %q must end with the separator %q", o.Prefix, o.Separator)
	}
	tmpl, err := template.ParseFiles(templatePath())
	if err != nil {
		tb.Fatalf("dovecottest: read the config template: %v", err)
	}
	// A short path: base_dir holds unix sockets (108-byte path limit).
	dir, err := os.MkdirTemp("", "mfdv-")
	if err != nil {
		tb.Fatalf("dovecottest: %v", err)
	}
	s := &Server{Dir: dir, Conf: filepath.Join(dir, "dovecot.conf"), CAFile: filepath.Join(dir, "ssl", "cert.pem"), opt: o}
	tb.Cleanup(func() {
		s.stop(tb)
		if !tb.Failed() || os.Getenv("MAILFERRY_KEEP_DOVECOT") == "" {
			os.RemoveAll(dir)
		} else {
			tb.Logf("dovecottest: kept %s", dir)
		}
	})
	if err := s.prepare(); err != nil {
		tb.Fatalf("dovecottest: %v", err)
	}
	loginUser, internalUser := "dovenull", "dovecot"
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			tb.Fatalf("dovecottest: %v", err)
		}
		loginUser, internalUser = u.Username, u.Username
	}
	dh := "/usr/share/dovecot/dh.pem"
	if _, err := os.Stat(dh); err != nil {
		dh = ""
	}
	for attempt := 1; ; attempt++ {
		ports, err := servertest.FreePorts(4)
		if err != nil {
			tb.Fatalf("dovecottest: pick free ports: %v", err)
		}
		s.IMAP, s.IMAPS, s.POP3, s.POP3S = servertest.Addr(ports[0]), servertest.Addr(ports[1]), servertest.Addr(ports[2]), servertest.Addr(ports[3])
		var conf bytes.Buffer
		err = tmpl.Execute(&conf, map[string]any{
			"Instance": fmt.Sprintf("mailferrytest-%d-%d", os.Getpid(), instances.Add(1)),
			"Dir":      dir, "LoginUser": loginUser, "InternalUser": internalUser, "NonRoot": os.Geteuid() != 0,
			"DH": dh, "Quota": len(o.QuotaBytes) > 0, "Separator": o.Separator, "Prefix": o.Prefix,
			"POP3LockSession": o.POP3LockSession, "MaxConn": cmp.Or(o.MaxUserIPConnections, 200),
			"IMAPPort": ports[0], "IMAPSPort": ports[1], "POP3Port": ports[2], "POP3SPort": ports[3],
		})
		if err != nil {
			tb.Fatalf("dovecottest: config template: %v", err)
		}
		if err := os.WriteFile(s.Conf, conf.Bytes(), 0o644); err != nil {
			tb.Fatalf("dovecottest: %v", err)
		}
		err = s.run(dovecot)
		if err == nil {
			break
		}
		s.stop(tb)
		if attempt < 5 && strings.Contains(err.Error(), "in use") {
			tb.Logf("dovecottest: %v; retrying with other ports", err)
			continue
		}
		tb.Fatalf("dovecottest: start dovecot: %v", err)
	}
	return s
}

// prepare writes the directories, certificate and users file.
func (s *Server) prepare() error {
	for _, d := range []string{"run", "state", "log", "ssl", "mail"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		return err
	}
	if err := writeCert(filepath.Join(s.Dir, "ssl")); err != nil {
		return fmt.Errorf("make the certificate: %w", err)
	}
	s.uid, s.gid = os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		u, err := mailAccount()
		if err != nil {
			return err
		}
		s.uid, s.gid = u[0], u[1]
	}
	var users strings.Builder
	for _, u := range s.opt.Users {
		home := filepath.Join(s.Dir, "mail", u)
		if err := os.MkdirAll(home, 0o700); err != nil {
			return err
		}
		if err := os.Chown(home, s.uid, s.gid); err != nil {
			return err
		}
		extra := ""
		if q, ok := s.opt.QuotaBytes[u]; ok {
			extra = fmt.Sprintf("userdb_quota_rule=*:storage=%dB", q)
		}
		fmt.Fprintf(&users, "%s:{PLAIN}%s:%d:%d::%s::%s\n", u, Password, s.uid, s.gid, home, extra)
	}
	return os.WriteFile(filepath.Join(s.Dir, "users"), []byte(users.String()), 0o644)
}

var accountMu sync.Mutex

// mailAccount returns uid and gid of MailAccount, creating it if needed.
// Other test processes may create it at the same moment: retry.
func mailAccount() ([2]int, error) {
	accountMu.Lock()
	defer accountMu.Unlock()
	var lastErr error
	for i := 0; i < 20; i++ {
		if u, err := user.Lookup(MailAccount); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			return [2]int{uid, gid}, nil
		}
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", MailAccount).CombinedOutput()
		if err == nil {
			continue
		}
		lastErr = fmt.Errorf("create the system account %s: %v: %s", MailAccount, err, bytes.TrimSpace(out))
		time.Sleep(100 * time.Millisecond)
	}
	return [2]int{}, lastErr
}

func writeCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"mailferry test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}

// run starts dovecot in the foreground as a child and waits until the IMAP
// and POP3 listeners greet.
func (s *Server) run(dovecot string) error {
	s.stderr = &servertest.LockedBuffer{}
	cmd := exec.Command(dovecot, "-F", "-c", s.Conf)
	cmd.Stdout, cmd.Stderr = s.stderr, s.stderr
	servertest.OwnGroup(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for _, l := range []struct{ addr, greeting string }{{s.IMAP, "* OK"}, {s.POP3, "+OK"}, {s.IMAPS, ""}, {s.POP3S, ""}} {
		for {
			err := servertest.Greet(l.addr, l.greeting)
			if err == nil {
				break
			}
			select {
			case <-s.exited:
				return fmt.Errorf("dovecot exited: %s%s", s.stderr.String(), s.logTail())
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s does not answer after 20 s: %v%s", l.addr, err, s.logTail())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "log", "dovecot.log"))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	if len(b) == 0 {
		return ""
	}
	return "\nlog:\n" + string(b)
}

// Log returns the instance's error log (useful in a failing test).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "log", "dovecot.log"))
	return string(b)
}

// stop terminates the master (it takes its children down) and waits.
func (s *Server) stop(tb testing.TB) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		s.cmd = nil
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		tb.Logf("dovecottest: dovecot (pid %d) did not stop in 10 s; killing it", s.cmd.Process.Pid)
		servertest.KillGroup(s.cmd.Process)
		<-s.exited
	}
	s.cmd = nil
}

// Maildir is the Maildir++ root of user.
func (s *Server) Maildir(user string) string {
	return filepath.Join(s.Dir, "mail", user, "Maildir")
}

// Doveadm runs doveadm with this instance's configuration and returns its
// standard output; it fails the test when doveadm fails.
func (s *Server) Doveadm(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := s.doveadm(args...)
	if err != nil {
		tb.Fatalf("dovecottest: %v", err)
	}
	return out
}

func (s *Server) doveadm(args ...string) (string, error) {
	_, doveadm := binaries()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, doveadm, append([]string{"-c", s.Conf}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("doveadm %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// Reset kicks the user's sessions and deletes the user's Maildir (and its
// index files).
func (s *Server) Reset(tb testing.TB, user string) {
	tb.Helper()
	s.kick(tb, user)
	if err := os.RemoveAll(s.Maildir(user)); err != nil {
		tb.Fatalf("dovecottest: reset %s: %v", user, err)
	}
}

// kick ends the user's sessions and waits (bounded) until they are gone, so
// that no dying process writes index files into a new Maildir.
func (s *Server) kick(tb testing.TB, user string) {
	tb.Helper()
	s.doveadm("kick", user) // fails when there is nobody to kick
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := s.doveadm("who", "-1", user)
		if err != nil || !strings.Contains(out, user) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("dovecottest: sessions of %s still open 10 s after doveadm kick:\n%s", user, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
