package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/testkit/imaptest"
)

type hostileLiteral struct{ *bytes.Reader }

func (l hostileLiteral) Size() int64 { return int64(l.Len()) }

// TestHostileFolderNames: folder names that try to leave the Maildir root
// (or are not valid file names) land inside it, renamed and reported.
func TestHostileFolderNames(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	// The 5,000-byte name makes go-imap's test server drop the connection
	// at STATUS and at EXAMINE: that folder alone fails (exit 1).
	names := []string{"../../etc", "a/../../b", "nul\x00name", ".", "..", "~", "ctl\x01\x07\x1b[31mred\x7f", strings.Repeat("n", 5000)}
	all := append([]string{"INBOX"}, names...)
	for i, name := range all {
		if name != "INBOX" {
			if err := srv.User.Create(name, nil); err != nil {
				t.Logf("the test server refuses folder %.40q: %v", name, err)
				continue
			}
		}
		body := fmt.Sprintf("Message-ID: <hostile-%d@mailferry.test>\r\nSubject: folder %d\r\n\r\nin folder %.60q\r\n", i, i, name)
		if _, err := srv.User.Append(name, hostileLiteral{bytes.NewReader([]byte(body))}, &imap.AppendOptions{}); err != nil {
			t.Fatalf("append to %.40q: %v", name, err)
		}
	}

	parent := t.TempDir()
	root := filepath.Join(parent, "box", "Maildir")
	if err := os.Mkdir(filepath.Dir(root), 0o700); err != nil {
		t.Fatal(err)
	}
	sentinel := filepath.Join(parent, "outside")
	os.WriteFile(sentinel, []byte("x"), 0o600)
	before := walkAll(t, parent, root)
	report := filepath.Join(t.TempDir(), "report.json")
	r := mf(t, []string{"MAILFERRY_SOURCE_PASSWORD=" + imaptest.Password}, "migrate", "imap://"+imaptest.User+"@"+srv.Addr+"?tls=none",
		"maildir:"+root, "--state", t.TempDir(), "--report", report, "--no-progress", "--timeout", "2s")
	if r.code != 0 && r.code != 1 {
		t.Fatalf("exit %d:\n%s", r.code, tail(r.String(), 40))
	}
	if after := walkAll(t, parent, root); after != before {
		t.Fatalf("files changed outside the Maildir root:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Nothing outside the temporary directory either (../../etc from root).
	for _, p := range []string{filepath.Join(parent, "etc"), filepath.Join(parent, "b"), filepath.Join(parent, "box", "etc")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was created", p)
		}
	}
	n := 0
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (filepath.Base(filepath.Dir(p)) == "cur" || filepath.Base(filepath.Dir(p)) == "new") {
			n++
		}
		return nil
	})
	var rep jsonReport
	b, err := os.ReadFile(report)
	if err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("report: %v", err)
	}
	renamed := 0
	for _, f := range rep.Folders {
		if f.Renamed != "" {
			renamed++
			t.Logf("%.50q → %.50q: %s", f.Source, f.Target, f.Renamed)
		}
	}
	t.Logf("exit %d, %d messages under the root, %d folders renamed, %d failures", r.code, n, renamed, len(rep.Failures))
	if n+len(rep.Failures) != len(all) || n < len(all)-1 {
		t.Fatalf("%d of %d messages arrived, %d failures: %+v\n%s", n, len(all), len(rep.Failures), rep.Failures, tail(r.String(), 30))
	}
	if renamed < 5 {
		t.Fatalf("only %d folders reported as renamed: %+v", renamed, rep.Folders)
	}
}

// walkAll lists every path under dir except those under skip, with sizes.
func walkAll(t *testing.T, dir, skip string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		info, _ := d.Info()
		fmt.Fprintf(&b, "%s %d\n", p, info.Size())
		return nil
	})
	return b.String()
}

// fakeServer runs script on each connection of a listener on 127.0.0.1.
func fakeServer(t *testing.T, script func(c net.Conn, r *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(60 * time.Second))
				go func() { <-done; c.Close() }()
				script(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String()
}

// endless writes chunk until the peer goes away.
func endless(c net.Conn, chunk []byte) {
	for {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

// imapScript answers CAPABILITY, LOGIN and LOGOUT sanely and every other
// command with hostile(tag).
func imapScript(hostile func(c net.Conn, tag string)) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, r *bufio.Reader) {
		fmt.Fprint(c, "* OK [CAPABILITY IMAP4rev1] fake ready\r\n")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			switch strings.ToUpper(f[1]) {
			case "CAPABILITY":
				fmt.Fprintf(c, "* CAPABILITY IMAP4rev1\r\n%s OK done\r\n", f[0])
			case "LOGIN":
				fmt.Fprintf(c, "%s OK logged in\r\n", f[0])
			case "LOGOUT":
				fmt.Fprintf(c, "* BYE\r\n%s OK bye\r\n", f[0])
				return
			default:
				hostile(c, f[0])
				return
			}
		}
	}
}

// pop3Script answers the login and listing commands and RETR with retr.
func pop3Script(greeting string, retr func(c net.Conn)) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, r *bufio.Reader) {
		fmt.Fprint(c, greeting)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			switch strings.ToUpper(f[0]) {
			case "CAPA":
				fmt.Fprint(c, "+OK\r\nUSER\r\nUIDL\r\n.\r\n")
			case "USER", "PASS", "NOOP":
				fmt.Fprint(c, "+OK\r\n")
			case "STAT":
				fmt.Fprint(c, "+OK 1 1000\r\n")
			case "LIST":
				fmt.Fprint(c, "+OK\r\n1 1000\r\n.\r\n")
			case "UIDL":
				fmt.Fprint(c, "+OK\r\n1 uid-1\r\n.\r\n")
			case "RETR", "TOP":
				retr(c)
				return
			case "QUIT":
				fmt.Fprint(c, "+OK\r\n")
				return
			default:
				fmt.Fprint(c, "-ERR what\r\n")
			}
		}
	}
}

func hang(c net.Conn) { c.Read(make([]byte, 1)) } // until the client gives up

// TestBrokenServers: servers that lie about sizes, never end a line, stop
// mid-literal or send garbage make the binary end in bounded time with exit
// 1 or 3, name the server on stderr, and keep its memory small.
func TestBrokenServers(t *testing.T) {
	garbage := bytes.Repeat([]byte("\x00\xff\x1b]garbage{99999999999}\r\n)))(((\n"), 50)
	tests := []struct {
		name, scheme string
		script       func(net.Conn, *bufio.Reader)
	}{
		{"IMAP literal of 4 GB", "imap", imapScript(func(c net.Conn, tag string) {
			fmt.Fprint(c, "* LIST () \"/\" {4000000000}\r\nINBOX")
			endless(c, bytes.Repeat([]byte("A"), 64<<10))
		})}, // refused at the announcement (imapconn limits); was 612 MB peak RSS
		{"IMAP endless line", "imap", func(c net.Conn, _ *bufio.Reader) {
			fmt.Fprint(c, "* OK ")
			endless(c, bytes.Repeat([]byte("a"), 64<<10))
		}}, // refused after 4 MiB (imapconn limits); was 296 MB peak RSS
		{"IMAP stops mid-literal", "imap", imapScript(func(c net.Conn, tag string) {
			fmt.Fprint(c, "* LIST () \"/\" {100}\r\nINB")
			hang(c)
		})},
		{"IMAP garbage after the greeting", "imap", func(c net.Conn, _ *bufio.Reader) {
			fmt.Fprint(c, "* OK ready\r\n")
			c.Write(garbage)
			hang(c)
		}},
		{"POP3 endless line", "pop3", func(c net.Conn, _ *bufio.Reader) {
			fmt.Fprint(c, "+OK ")
			endless(c, bytes.Repeat([]byte("a"), 64<<10))
		}},
		{"POP3 garbage after the greeting", "pop3", func(c net.Conn, _ *bufio.Reader) {
			fmt.Fprint(c, "+OK ready\r\n")
			c.Write(garbage)
			hang(c)
		}},
		{"POP3 stops mid-message", "pop3", pop3Script("+OK ready\r\n", func(c net.Conn) {
			fmt.Fprint(c, "+OK 1000 octets\r\nSubject: x\r\n\r\nhalf")
			hang(c)
		})},
		{"POP3 message that never ends", "pop3", pop3Script("+OK ready\r\n", func(c net.Conn) {
			fmt.Fprint(c, "+OK 1000 octets\r\nSubject: x\r\n\r\n")
			endless(c, bytes.Repeat([]byte("no end in sight\r\n"), 4096))
		})}, // refused past 2x1000 octets + 1 MiB; never ended before
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeServer(t, tc.script)
			res, hwm, took := runMeasured(t, 20*time.Second, []string{"MAILFERRY_SOURCE_PASSWORD=pw"}, "migrate",
				tc.scheme+"://u@"+addr+"?tls=none", "maildir:"+filepath.Join(t.TempDir(), "m"),
				"--state", t.TempDir(), "--no-progress", "--timeout", "2s", "--retries", "1")
			t.Logf("exit %d after %v, peak RSS %d MB; stderr: %s", res.code, took.Round(time.Millisecond), hwm>>20, tail(res.stderr, 3))
			if res.code != 1 && res.code != 3 {
				t.Fatalf("exit %d, want 1 or 3:\n%s", res.code, tail(res.String(), 30))
			}
			if strings.Contains(res.stderr, "goroutine ") || strings.Contains(res.stderr, "panic") {
				t.Fatalf("crash:\n%s", tail(res.stderr, 30))
			}
			if !strings.Contains(res.stderr, addr) {
				t.Errorf("stderr does not name the server %s:\n%s", addr, tail(res.stderr, 10))
			}
			if hwm > 150<<20 {
				t.Errorf("peak RSS %d MB, want < 150 MB", hwm>>20)
			}
		})
	}
}

// runMeasured runs the binary, sampling its peak RSS (VmHWM) until it exits;
// it fails the test when the run outlasts limit.
func runMeasured(t *testing.T, limit time.Duration, env []string, args ...string) (result, int64, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var hwm int64
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
loop:
	for {
		select {
		case err = <-done:
			break loop
		case <-tick.C:
			if v := vmHWM(status); v > hwm {
				hwm = v
			}
		}
	}
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("still running after %v:\n%s", limit, tail(errb.String(), 20))
	}
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("killed by %v", ws.Signal())
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return r, hwm, took
}

// vmHWM reads VmHWM (bytes) from a /proc/PID/status file, 0 if gone.
func vmHWM(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
