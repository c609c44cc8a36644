package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/testkit/pop3test"
)

func TestDemo(t *testing.T) {
	r := mf(t, nil, "demo", "--messages", "200")
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, r.stdout, "pressing Ctrl-C", "(exit code 130)", "nothing to copy", "Verify: OK")
	if strings.Count(r.stdout, "Verify: OK") != 2 {
		t.Fatalf("want two verified targets:\n%s", r.stdout)
	}
	for _, secret := range []string{"demo-pop3-secret", "demo-imap-secret"} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Fatalf("a password is printed:\n%s", r)
		}
	}
}

func TestPlaintextServerRefused(t *testing.T) {
	srv, err := pop3test.Start(pop3test.Options{User: "u", Password: "pw-0815", Messages: [][]byte{[]byte("Subject: x\r\n\r\nx\r\n")}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	env := []string{"MAILFERRY_SOURCE_PASSWORD=pw-0815"}
	root := filepath.Join(t.TempDir(), "m")
	r := mf(t, env, "migrate", "pop3://u@"+srv.Addr(), "maildir:"+root, "--state", t.TempDir())
	if r.code != 3 {
		t.Fatalf("want exit 3 without STLS:\n%s", r)
	}
	checkOneSentence(t, r, "pw-0815")
	mustContain(t, r.stderr, "tls=none")

	r = mf(t, env, "migrate", "pop3://u@"+srv.Addr()+"?tls=none", "maildir:"+root, "--state", t.TempDir())
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, r.stderr, "unencrypted")
	if len(srv.Deleted()) != 0 {
		t.Fatal("the POP3 source was changed")
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	tests := [][]string{
		{"migrate"},
		{"migrate", "pop3s://u@h"},
		{"migrate", "ftp://u@h", "maildir:/tmp/x"},
		{"migrate", "pop3s://u:secret@h", "maildir:/tmp/x"},
		{"migrate", "pop3s://u@h", "pop3s://u@h2"},
		{"migrate", "--workers", "0", "pop3s://u@h", "maildir:/tmp/x"},
		{"nonsense"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := mf(t, []string{"MAILFERRY_SOURCE_PASSWORD=x", "MAILFERRY_TARGET_PASSWORD=x"}, args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\n%s", r.code, r)
			}
			if strings.Contains(r.stderr, "secret") {
				t.Fatal("password echoed")
			}
		})
	}
	// Missing password, not on a terminal.
	r := mf(t, nil, "migrate", "pop3s://u@h", "maildir:"+t.TempDir())
	if r.code != 2 || !strings.Contains(r.stderr, "MAILFERRY_SOURCE_PASSWORD") {
		t.Fatal(r)
	}
}

func TestHelp(t *testing.T) {
	for _, cmd := range []string{"migrate", "verify", "demo"} {
		r := mf(t, nil, cmd, "--help")
		if r.code != 0 || !strings.Contains(r.stderr+r.stdout, "Usage: mailferry "+cmd) {
			t.Fatalf("%s --help: %s", cmd, r)
		}
	}
	r := mf(t, nil, "help")
	if r.code != 0 || !strings.Contains(r.stdout, "Exit codes") {
		t.Fatal(r)
	}
}

func TestStateFilesArePrivateAndSecretFree(t *testing.T) {
	msgs := [][]byte{}
	for i := 0; i < 30; i++ {
		msgs = append(msgs, []byte(fmt.Sprintf("Message-ID: <%d@x>\r\nSubject: %d\r\n\r\nbody\r\n", i, i)))
	}
	srv, err := pop3test.Start(pop3test.Options{User: "u", Password: "pw-unique-9731", Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	state := t.TempDir()
	logf := filepath.Join(t.TempDir(), "log.json")
	report := filepath.Join(t.TempDir(), "report.json")
	r := mf(t, []string{"MAILFERRY_SOURCE_PASSWORD=pw-unique-9731"}, "migrate", "pop3://u@"+srv.Addr()+"?tls=none",
		"maildir:"+t.TempDir(), "--state", state, "--log", logf, "--report", report, "-v")
	if r.code != 0 {
		t.Fatal(r)
	}
	if strings.Contains(r.stdout+r.stderr, "pw-unique-9731") {
		t.Fatal("password in output")
	}
	for _, f := range []string{logf, report} {
		b, err := os.ReadFile(f)
		if err != nil || strings.Contains(string(b), "pw-unique-9731") {
			t.Fatalf("%s: %v or holds the password", f, err)
		}
	}
	filepath.Walk(state, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() && info.Mode().Perm() != 0o700 && p != state {
			t.Errorf("%s: mode %v, want 0700", p, info.Mode().Perm())
		}
		if !info.IsDir() {
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", p, info.Mode().Perm())
			}
			b, _ := os.ReadFile(p)
			if strings.Contains(string(b), "pw-unique-9731") {
				t.Errorf("%s holds the password", p)
			}
		}
		return nil
	})
}
