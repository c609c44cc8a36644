package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/testkit/pop3test"
)

func pop3Server(t *testing.T, pass string) string {
	t.Helper()
	srv, err := pop3test.Start(pop3test.Options{User: "u", Password: pass,
		Messages: [][]byte{[]byte("Message-ID: <1@x>\r\n\r\nhi\r\n")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr()
}

// TestPromptAsksAgain: a password typed at the prompt that the server
// refuses is asked for again, up to three times in all.
func TestPromptAsksAgain(t *testing.T) {
	addr := pop3Server(t, "right-pw")
	defer func(a func() bool, b func() ([]byte, error)) { stdinIsTerminal, readPassword = a, b }(stdinIsTerminal, readPassword)
	stdinIsTerminal = func() bool { return true }
	for _, tc := range []struct {
		typed []string
		code  int
		asked int
	}{
		{[]string{"wrong-1", "right-pw"}, exitOK, 2},
		{[]string{"wrong-1", "wrong-2", "wrong-3", "right-pw"}, exitConnection, 3},
	} {
		asked := 0
		readPassword = func() ([]byte, error) {
			p := tc.typed[asked]
			asked++
			return []byte(p), nil
		}
		var out, errb bytes.Buffer
		code := run([]string{"migrate", "pop3://u@" + addr + "?tls=none", "maildir:" + t.TempDir(), "--state", t.TempDir(), "--no-progress"}, &out, &errb)
		if code != tc.code || asked != tc.asked {
			t.Errorf("%v: exit %d, asked %d times; want exit %d, %d times\n%s", tc.typed, code, asked, tc.code, tc.asked, errb.String())
		}
		if strings.Contains(errb.String(), "wrong-") {
			t.Errorf("a typed password is printed:\n%s", errb.String())
		}
	}
}

// TestNoPromptOffATerminal: without a terminal there is no prompt, but an
// error naming the ways to give a password.
func TestNoPromptOffATerminal(t *testing.T) {
	defer func(a func() bool) { stdinIsTerminal = a }(stdinIsTerminal)
	stdinIsTerminal = func() bool { return false }
	t.Setenv("MAILFERRY_SOURCE_PASSWORD", "")
	var out, errb bytes.Buffer
	code := run([]string{"migrate", "pop3://u@127.0.0.1:1?tls=none", "maildir:" + t.TempDir(), "--state", t.TempDir()}, &out, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), "--source-password-command") {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
}

// TestPasswordCommand: --source-password-command's output less one
// trailing newline is the password; it is never printed or logged.
func TestPasswordCommand(t *testing.T) {
	addr := pop3Server(t, "cmd-pw-4711")
	dir := t.TempDir()
	for _, tc := range []struct {
		cmd  string
		code int
		want string
	}{
		{"echo cmd-pw-4711", exitOK, "Done"},
		{"printf 'cmd-pw-4711\\n\\n'", exitConnection, ""}, // only one newline is trimmed
		{"echo cmd-pw-4711; exit 3", exitUsage, "the source password command failed"},
	} {
		var out, errb bytes.Buffer
		logf := dir + "/log"
		code := run([]string{"migrate", "pop3://u@" + addr + "?tls=none", "maildir:" + t.TempDir(), "--state", t.TempDir(),
			"--no-progress", "--log", logf, "--source-password-command", tc.cmd}, &out, &errb)
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("%q: exit %d, want %d and %q\n%s%s", tc.cmd, code, tc.code, tc.want, out.String(), errb.String())
		}
		if strings.Contains(out.String()+errb.String(), "cmd-pw-4711") {
			t.Errorf("%q: the password is printed", tc.cmd)
		}
	}
}
