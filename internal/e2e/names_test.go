package e2e

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	"github.com/mailferry/mailferry/internal/testkit/pop3test"
)

// Folder names that must survive IMAP → Maildir → IMAP: a '.' inside a name
// (legal on '/'-delimited servers), '&', spaces, Arabic, deep nesting.
var trickyNames = []string{"Project v1.2", "R&D", "With Space", "أرشيف/٢٠٢٤", "Deep/a/b/c/d/e/f", "Dots.in.name/child.x", "~tilde"}

func TestFolderNamesSurviveEveryDirection(t *testing.T) {
	src := imaptest.Start(t, imaptest.Options{})
	dst := imaptest.Start(t, imaptest.Options{})
	date := time.Date(2024, 2, 29, 12, 30, 0, 0, time.UTC)
	for i, name := range trickyNames {
		if err := src.User.Create(name, nil); err != nil {
			t.Fatalf("create %q: %v", name, err)
		}
		body := fmt.Sprintf("Message-ID: <n%d@x>\r\nSubject: in %s\r\n\r\nbody\r\n", i, name)
		if _, err := src.User.Append(name, imaptestLiteral(body), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}, Time: date}); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"MAILFERRY_SOURCE_PASSWORD=" + imaptest.Password, "MAILFERRY_TARGET_PASSWORD=" + imaptest.Password}
	root := filepath.Join(t.TempDir(), "Maildir")
	state := t.TempDir()
	r := mf(t, env, "migrate", "imap://"+imaptest.User+"@"+src.Addr+"?tls=none", "maildir:"+root, "--state", state)
	if r.code != 0 {
		t.Fatal(r)
	}
	got := dovecottest.DumpMaildir(t, root)
	var names []string
	for _, m := range got {
		names = append(names, m.Folder)
	}
	for _, name := range trickyNames {
		if !slices.Contains(names, name) {
			t.Errorf("Maildir lacks folder %q (has %q)", name, names)
		}
	}
	r = mf(t, env, "migrate", "maildir:"+root, "imap://"+imaptest.User+"@"+dst.Addr+"?tls=none", "--state", state)
	if r.code != 0 {
		t.Fatal(r)
	}
	for i, name := range trickyNames {
		mbox, err := dst.User.Status(name, &imap.StatusOptions{NumMessages: true})
		if err != nil {
			t.Errorf("target lacks %q: %v", name, err)
			continue
		}
		if *mbox.NumMessages != 1 {
			t.Errorf("%q holds %d messages", name, *mbox.NumMessages)
		}
		_ = i
	}
}

func imaptestLiteral(s string) imap.LiteralReader {
	return &literal{Reader: bytes.NewReader([]byte(s)), n: int64(len(s))}
}

type literal struct {
	*bytes.Reader
	n int64
}

func (l *literal) Size() int64 { return l.n }

// Dovecot with pop3_lock_session makes a second session wait ~10 s for the
// lock (and succeed once the first quits), so [IN-USE] is tested against the
// in-process POP3 server, which refuses a second session at once.
func TestPOP3InUseFallsBackToOneSession(t *testing.T) {
	msgs := inboxOnly(200, 11)
	var raw [][]byte
	for _, m := range msgs {
		raw = append(raw, m.Body)
	}
	srv, err := pop3test.Start(pop3test.Options{User: "u", Password: "secret", Messages: raw, InUseAfter: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	root := filepath.Join(t.TempDir(), "m")
	r := mf(t, secretEnv, "migrate", "pop3://u@"+srv.Addr()+"?tls=none", "maildir:"+root, "--state", t.TempDir(), "--workers", "4")
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, r.stderr, "only one session")
	checkReport(t, "POP3 [IN-USE] → Maildir", compareMaildir(msgs, root, t))
}
