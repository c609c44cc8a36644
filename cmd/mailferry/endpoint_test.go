package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mboxsrc "github.com/mailferry/mailferry/source/mbox"
)

func TestParseEndpoint(t *testing.T) {
	home, _ := os.UserHomeDir()
	tests := []struct {
		in      string
		want    string // String(), or "" when an error is expected
		errWord string
	}{
		{"pop3s://bob@pop.example.com", "pop3s://bob@pop.example.com:995", ""},
		{"pop3://bob@pop.example.com:1110", "pop3://bob@pop.example.com:1110", ""},
		{"pop3://bob@127.0.0.1?tls=none", "pop3://bob@127.0.0.1:110?tls=none", ""},
		{"imaps://bob@example.com@mail.example.com", "imaps://bob@example.com@mail.example.com:993", ""},
		{"imap://bob%40example.com@[::1]:1143", "imap://bob@example.com@[::1]:1143", ""},
		{"IMAPS://bob@h", "imaps://bob@h:993", ""},
		{"maildir:/backup/mail", "maildir:/backup/mail", ""},
		{"maildir:~/bk", "maildir:" + filepath.Join(home, "bk"), ""},
		{"imaps://bob:hunter2@h", "", "password"},
		{"imaps://h", "", "user"},
		{"imaps://bob@", "", "host"},
		{"imaps://bob@h:99999", "", "port"},
		{"imaps://bob@h?tls=none", "", "implicit TLS"},
		{"imap://bob@h?foo=bar", "", "unknown option"},
		{"ftp://bob@h", "", "unknown scheme"},
		{"bob@h", "", "not an endpoint"},
		{"maildir:", "", "path"},
		{"mbox:/backup/Takeout.mbox", "mbox:/backup/Takeout.mbox", ""},
		{"mbox:///backup/tb", "mbox:/backup/tb", ""},
		{"mbox:~/mail", "mbox:" + filepath.Join(home, "mail"), ""},
		{"mbox:", "", "path"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			e, err := parseEndpoint(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("want an error, got %v", e)
				}
				if !strings.Contains(err.Error(), tc.errWord) {
					t.Fatalf("error %q does not mention %q", err, tc.errWord)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatal("the password is echoed in the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := e.String(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRedactWriter(t *testing.T) {
	var b strings.Builder
	secrets := new(secretList)
	secrets.add("s3cret-pass")
	w := &redactWriter{w: &b, secrets: secrets}
	w.Write([]byte("login failed: s3cret-pass rejected"))
	if strings.Contains(b.String(), "s3cret") {
		t.Fatal(b.String())
	}
}

func TestMboxFlags(t *testing.T) {
	var m mboxFlags
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	m.register(fs)
	if err := fs.Parse([]string{"--mbox-format", "mboxcl2", "--gmail-labels", "first"}); err != nil {
		t.Fatal(err)
	}
	e, err := parseEndpoint("mbox:/x")
	if err != nil {
		t.Fatal(err)
	}
	e.setMbox(m, "Old mail")
	if e.mbox.Format != mboxsrc.MboxCL2 || e.mbox.GmailLabels != "first" || e.mbox.Folder != "Old mail" || !e.local() {
		t.Fatalf("%+v", e.mbox)
	}
	for _, bad := range [][]string{{"--mbox-format", "mbx"}, {"--gmail-labels", "all"}} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		new(mboxFlags).register(fs)
		if err := fs.Parse(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, err := e.targetOpener(connOptions{}); err == nil {
		t.Error("mbox accepted as a target")
	}
}
