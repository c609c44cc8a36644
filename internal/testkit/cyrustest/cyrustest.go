// Package cyrustest starts private, loopback-only Cyrus IMAP instances (IMAP
// and POP3) for mailferry's integration tests, loads test mail into them over
// IMAP and reads it back as the test oracle.
//
// Cyrus is not installed as a Debian package (cyrus-imapd conflicts with
// dovecot-imapd): .ci/install-cyrus unpacks it into a private directory and
// writes DIR/env, which Start reads. DIR is $MAILFERRY_CYRUS_DIR, else
// /opt/mailferry-cyrus as root, else $HOME/.cache/mailferry/cyrus. A Cyrus
// installed by the system package (/usr/lib/cyrus/bin) is used when no
// private one is found.
//
// Each Start gets its own directory (configuration, databases, spool,
// sasldb), free ports and its own master process, configured from
// testdata/cyrus/*.tmpl at the module root. The master must start as root
// and runs as the system account cyrus (created when missing). Users and the
// admin have the password "secret"; the admin creates each user's mailbox
// and sets quotas over IMAP, as cyradm would.
//
// When Cyrus is missing or the tests do not run as root, Start skips the
// test, unless the environment has MAILFERRY_REQUIRE_CYRUS=1 (CI), then it
// fails.
package cyrustest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/testkit/servertest"
)

// Password is the password of every user and of the admin.
const Password = "secret"

// Admin is the login of the instance's administrator (imapd.conf admins).
const Admin = "cyrusadmin"

// Account is the system account Cyrus runs as.
const Account = "cyrus"

// ServerName is imapd.conf's servername, also the SASL realm of the users.
const ServerName = "mailferrytest"

// DefaultUsers are the users of an instance when Options.Users is empty.
var DefaultUsers = []string{"src", "dst", "pop", "u1", "u2"}

// Options configure an instance. The zero value is Debian's setup:
// personal folders under "INBOX." with "." as the separator.
type Options struct {
	// Users to create (default DefaultUsers), all with password "secret".
	Users []string
	// AltNamespace puts personal folders beside INBOX instead of under
	// "INBOX." (imapd.conf altnamespace).
	AltNamespace bool
	// UnixHierarchySep makes "/" the separator instead of "."
	// (imapd.conf unixhierarchysep).
	UnixHierarchySep bool
	// QuotaKB sets a STORAGE quota in KiB for some users (SETQUOTA on
	// user.NAME). Cyrus answers an APPEND over it with "NO Over quota"
	// without a response code.
	QuotaKB map[string]int64
	// Reject8Bit refuses 8-bit header bytes instead of turning them into X.
	Reject8Bit bool
	// MaxMessageSize is imapd.conf maxmessagesize in bytes (0: none); Cyrus
	// then announces APPENDLIMIT.
	MaxMessageSize int64
}

// Server is a running instance.
type Server struct {
	// Dir holds the configuration, databases, spool and sasldb.
	Dir string
	// IMAP and POP3 are "127.0.0.1:port" (plain, no TLS).
	IMAP, POP3 string
	// Version is the Cyrus package version.
	Version string

	opt    Options
	inst   install
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *servertest.LockedBuffer
}

// install is where the Cyrus binaries and their libraries are.
type install struct {
	bin        string // master, imapd, pop3d, ctl_cyrusdb
	saslpasswd string
	env        []string // LD_LIBRARY_PATH, SASL_PATH
	version    string
}

// installDir is where .ci/install-cyrus puts Cyrus by default.
func installDir() string {
	if d := os.Getenv("MAILFERRY_CYRUS_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/opt/mailferry-cyrus"
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "mailferry", "cyrus")
}

// find locates a private install (DIR/env) or a system one.
func find() (install, error) {
	dir := installDir()
	if b, err := os.ReadFile(filepath.Join(dir, "env")); err == nil {
		kv := map[string]string{}
		for _, ln := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(ln, "="); ok && !strings.HasPrefix(ln, "#") {
				kv[k] = v
			}
		}
		in := install{
			bin:        filepath.Join(kv["ROOT"], "usr/lib/cyrus/bin"),
			saslpasswd: filepath.Join(kv["ROOT"], "usr/sbin/saslpasswd2"),
			env:        []string{"LD_LIBRARY_PATH=" + kv["LD_LIBRARY_PATH"], "SASL_PATH=" + kv["SASL_PATH"]},
			version:    kv["VERSION"],
		}
		if err := in.check(); err != nil {
			return install{}, fmt.Errorf("%s/env: %w (run .ci/install-cyrus again)", dir, err)
		}
		return in, nil
	}
	in := install{bin: "/usr/lib/cyrus/bin", saslpasswd: "/usr/sbin/saslpasswd2", version: "system"}
	if err := in.check(); err != nil {
		return install{}, fmt.Errorf("no %s/env and no system Cyrus (%v)", dir, err)
	}
	return in, nil
}

func (in install) check() error {
	for _, p := range []string{"master", "imapd", "pop3d", "ctl_cyrusdb"} {
		if !servertest.IsExec(filepath.Join(in.bin, p)) {
			return fmt.Errorf("%s is missing", filepath.Join(in.bin, p))
		}
	}
	if !servertest.IsExec(in.saslpasswd) {
		return fmt.Errorf("%s is missing", in.saslpasswd)
	}
	return nil
}

// Available reports whether Start can run an instance here.
func Available() bool {
	_, err := find()
	return err == nil && os.Geteuid() == 0
}

func skipOrFail(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("MAILFERRY_REQUIRE_CYRUS") == "1" {
		tb.Fatalf("cyrustest: %s, and MAILFERRY_REQUIRE_CYRUS=1", why)
	}
	tb.Skipf("cyrustest: %s; skipping", why)
}

func templateDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "cyrus")
}

// Start starts an instance with the users' mailboxes created and registers
// its shutdown with tb.Cleanup.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	in, err := find()
	if err != nil {
		skipOrFail(tb, "Cyrus is not installed (bash .ci/install-cyrus): "+err.Error())
	}
	if os.Geteuid() != 0 {
		skipOrFail(tb, "the Cyrus master must start as root")
	}
	if len(o.Users) == 0 {
		o.Users = DefaultUsers
	}
	tmpl, err := template.ParseGlob(filepath.Join(templateDir(), "*.tmpl"))
	if err != nil {
		tb.Fatalf("cyrustest: read the config templates: %v", err)
	}
	dir, err := os.MkdirTemp("", "mfcy-")
	if err != nil {
		tb.Fatalf("cyrustest: %v", err)
	}
	s := &Server{Dir: dir, Version: in.version, opt: o, inst: in}
	tb.Cleanup(func() {
		s.stop(tb)
		if !tb.Failed() || os.Getenv("MAILFERRY_KEEP_CYRUS") == "" {
			os.RemoveAll(dir)
		} else {
			tb.Logf("cyrustest: kept %s", dir)
		}
	})
	uid, gid, err := account()
	if err != nil {
		tb.Fatalf("cyrustest: %v", err)
	}
	if err := s.prepare(uid, gid); err != nil {
		tb.Fatalf("cyrustest: %v", err)
	}
	for attempt := 1; ; attempt++ {
		ports, err := servertest.FreePorts(2)
		if err != nil {
			tb.Fatalf("cyrustest: pick free ports: %v", err)
		}
		s.IMAP, s.POP3 = servertest.Addr(ports[0]), servertest.Addr(ports[1])
		data := map[string]any{
			"Dir": dir, "Bin": in.bin, "ServerName": ServerName, "Admin": Admin,
			"AltNamespace": o.AltNamespace, "UnixHierarchySep": o.UnixHierarchySep,
			"Reject8Bit": o.Reject8Bit, "MaxMessageSize": o.MaxMessageSize,
			"IMAPPort": ports[0], "POP3Port": ports[1],
		}
		for _, name := range []string{"imapd.conf", "cyrus.conf"} {
			var b bytes.Buffer
			if err := tmpl.ExecuteTemplate(&b, name+".tmpl", data); err != nil {
				tb.Fatalf("cyrustest: config template: %v", err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
				tb.Fatalf("cyrustest: %v", err)
			}
		}
		err = s.run()
		if err == nil {
			break
		}
		s.stop(tb)
		// Cyrus logs only to syslog: a port taken in the meantime shows as
		// a listener that never greets.
		if attempt < 3 {
			tb.Logf("cyrustest: %v; retrying with other ports", err)
			continue
		}
		tb.Fatalf("cyrustest: start cyrus: %v", err)
	}
	if err := s.createUsers(); err != nil {
		tb.Fatalf("cyrustest: %v", err)
	}
	return s
}

var accountMu sync.Mutex

// account returns uid and gid of Account, creating it (group mail, as
// Debian's cyrus-common does) when missing. Other test processes may create
// it at the same moment: retry.
func account() (uid, gid int, err error) {
	accountMu.Lock()
	defer accountMu.Unlock()
	for i := 0; i < 20; i++ {
		if u, e := user.Lookup(Account); e == nil {
			uid, _ = strconv.Atoi(u.Uid)
			gid, _ = strconv.Atoi(u.Gid)
			return uid, gid, nil
		}
		args := []string{"--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"}
		if _, e := user.LookupGroup("mail"); e == nil {
			args = append(args, "--gid", "mail")
		} else {
			args = append(args, "--user-group")
		}
		out, e := exec.Command("useradd", append(args, Account)...).CombinedOutput()
		if e == nil {
			continue
		}
		err = fmt.Errorf("create the system account %s: %v: %s", Account, e, bytes.TrimSpace(out))
		time.Sleep(100 * time.Millisecond)
	}
	return 0, 0, err
}

// prepare makes the directories Cyrus expects (what Debian's postinst and
// mkimap would) and the sasldb with the users and the admin, all owned by
// the cyrus account.
func (s *Server) prepare(uid, gid int) error {
	for _, d := range []string{"config", "config/db", "config/socket", "config/proc", "config/log",
		"config/msg", "config/user", "config/quota", "config/sieve", "spool", "run/proc", "run/lock", "run/socket"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o750); err != nil {
			return err
		}
	}
	sasldb := filepath.Join(s.Dir, "sasldb2")
	for _, u := range append([]string{Admin}, s.opt.Users...) {
		cmd := exec.Command(s.inst.saslpasswd, "-f", sasldb, "-u", ServerName, "-p", "-c", u)
		cmd.Env = append(os.Environ(), s.inst.env...)
		cmd.Stdin = strings.NewReader(Password)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("saslpasswd2 %s: %v: %s", u, err, bytes.TrimSpace(out))
		}
	}
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		return err
	}
	return filepath.Walk(s.Dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// run starts the master in the foreground and waits until IMAP and POP3
// greet.
func (s *Server) run() error {
	s.stderr = &servertest.LockedBuffer{}
	cmd := exec.Command(filepath.Join(s.inst.bin, "master"), "-C", filepath.Join(s.Dir, "imapd.conf"),
		"-M", filepath.Join(s.Dir, "cyrus.conf"), "-p", filepath.Join(s.Dir, "run", "master.pid"))
	cmd.Env = append(os.Environ(), s.inst.env...)
	cmd.Stdout, cmd.Stderr = s.stderr, s.stderr
	// Pdeathsig does not survive the master's switch to the cyrus account,
	// but covers the start.
	servertest.OwnGroup(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(15 * time.Second)
	// "Cyrus" in the greeting: a port taken in the meantime by another
	// server must not pass for this instance.
	for _, l := range []struct{ addr, greeting string }{{s.IMAP, "* OK"}, {s.POP3, "+OK"}} {
		for {
			err := servertest.Greet(l.addr, l.greeting, "Cyrus")
			if err == nil {
				break
			}
			select {
			case <-s.exited:
				return fmt.Errorf("cyrus master exited: %s", s.stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s does not answer after 15 s: %v; master: %s", l.addr, err, s.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// stop terminates the master (it takes its children down) and waits.
func (s *Server) stop(tb testing.TB) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			tb.Logf("cyrustest: master (pid %d) did not stop in 10 s; killing it", s.cmd.Process.Pid)
			servertest.KillGroup(s.cmd.Process)
			<-s.exited
		}
	}
	// Children the master left behind (it waits for none on SIGTERM).
	servertest.KillGroup(s.cmd.Process)
	s.cmd = nil
}

// Sep is the hierarchy separator: "/" or ".".
func (s *Server) Sep() string {
	if s.opt.UnixHierarchySep {
		return "/"
	}
	return "."
}

// Prefix is the personal namespace prefix: "INBOX." (or "INBOX/") without
// altnamespace, else "".
func (s *Server) Prefix() string {
	if s.opt.AltNamespace {
		return ""
	}
	return "INBOX" + s.Sep()
}

// IMAPName is the name of a canonical ("/"-separated) folder for its user.
func (s *Server) IMAPName(folder string) string {
	if strings.EqualFold(folder, "INBOX") {
		return "INBOX"
	}
	return s.Prefix() + strings.ReplaceAll(folder, "/", s.Sep())
}

// canonical turns a user's mailbox name into the canonical form.
func (s *Server) canonical(name string, delim rune) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	name = strings.TrimPrefix(name, s.Prefix())
	if delim != 0 && delim != '/' {
		name = strings.ReplaceAll(name, string(delim), "/")
	}
	return name
}

// Login opens a plain IMAP session as user (or Admin); the caller closes it.
func (s *Server) Login(user string) (*imapclient.Client, error) {
	conn, err := net.DialTimeout("tcp", s.IMAP, 10*time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(3 * time.Minute))
	c := imapclient.New(conn, nil)
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if err := c.Login(user, Password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	return c, nil
}

// createUsers creates user.NAME for every user and sets the quotas, as the
// admin (whose namespace is never the alternate one).
func (s *Server) createUsers() error {
	c, err := s.Login(Admin)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, u := range s.opt.Users {
		mbox := "user" + s.Sep() + u
		if err := c.Create(mbox, nil).Wait(); err != nil {
			return fmt.Errorf("create %s: %w", mbox, err)
		}
		if kb, ok := s.opt.QuotaKB[u]; ok {
			if err := c.SetQuota(mbox, map[imap.QuotaResourceType]int64{imap.QuotaResourceStorage: kb}).Wait(); err != nil {
				return fmt.Errorf("setquota %s: %w", mbox, err)
			}
		}
	}
	return c.Logout().Wait()
}
