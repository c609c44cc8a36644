package cyrustest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
)

func TestLoadDumpPOP3(t *testing.T) {
	tests := []struct {
		name       string
		opt        Options
		wantPrefix string
	}{
		{"Debian defaults: INBOX. prefix", Options{Users: []string{"src"}}, "INBOX."},
		{"altnamespace and / separator", Options{Users: []string{"src"}, AltNamespace: true, UnixHierarchySep: true}, ""},
	}
	all := corpus.Generate(corpus.Options{Messages: 60, Seed: 3})
	msgs := Unchanged(all)
	if len(msgs) < 30 || len(msgs) == len(all) {
		t.Fatalf("Unchanged kept %d of %d corpus messages; the corpus changed?", len(msgs), len(all))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			t0 := time.Now()
			s := Start(t, tc.opt)
			t1 := time.Now()
			s.Load(t, "src", msgs)
			t2 := time.Now()
			got := s.Dump(t, "src")
			t.Logf("Cyrus %s: start %v, load(%d) %v, dump %v", s.Version, t1.Sub(t0).Round(time.Millisecond), len(msgs), t2.Sub(t1).Round(time.Millisecond), time.Since(t2).Round(time.Millisecond))
			if s.Prefix() != tc.wantPrefix {
				t.Errorf("Prefix() = %q, want %q", s.Prefix(), tc.wantPrefix)
			}
			if rep := corpus.Compare(msgs, got, corpus.CompareOptions{Flags: true, Dates: true}); !rep.OK() {
				t.Fatalf("dump differs from what was loaded: %s", rep)
			}

			// The server's own names: the folder hierarchy under the prefix.
			c, err := s.Login("src")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			list, err := c.List("", "*", nil).Collect()
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, l := range list {
				names = append(names, l.Mailbox)
				if want := rune(s.Sep()[0]); l.Delim != want {
					t.Errorf("%q: delimiter %q, want %q", l.Mailbox, l.Delim, want)
				}
			}
			for _, want := range []string{"INBOX", s.IMAPName("Archive/2023/Q4 Reports"), s.IMAPName("العملاء/الرياض")} {
				if !contains(names, want) {
					t.Errorf("LIST lacks %q: %q", want, names)
				}
			}

			// POP3 serves INBOX: UIDL is UIDVALIDITY.UID, RETR the CRLF bytes.
			var inbox []corpus.Message
			for _, m := range msgs {
				if m.Folder == "INBOX" {
					inbox = append(inbox, m)
				}
			}
			sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
			if err != nil {
				t.Fatal(err)
			}
			p := dialPOP3(t, s.POP3, "src")
			uidl := p.multi("UIDL")
			if len(uidl) != len(inbox) {
				t.Fatalf("UIDL lists %d messages, INBOX has %d", len(uidl), len(inbox))
			}
			if want := fmt.Sprintf("1 %d.1", sel.UIDValidity); uidl[0] != want {
				t.Errorf("UIDL line 1 = %q, want %q", uidl[0], want)
			}
			body := p.multi("RETR 1")
			if got := strings.Join(body, "\r\n") + "\r\n"; got != string(inbox[0].Body) {
				t.Errorf("RETR 1 differs from the first INBOX message:\n%.300q\nwant\n%.300q", got, inbox[0].Body)
			}
			p.cmd("QUIT")
		})
	}
}

// TestRewritesAndQuota pins the Cyrus behaviour the oracle and the e2e
// tests depend on: 8-bit header bytes become X, bare LF is refused, and an
// APPEND over quota is refused with a plain "Over quota", maxmessagesize is
// announced as APPENDLIMIT.
func TestRewritesAndQuota(t *testing.T) {
	s := Start(t, Options{Users: []string{"u1"}, QuotaKB: map[string]int64{"u1": 2}, MaxMessageSize: 1 << 20})
	c, err := s.Login("u1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Has("APPENDLIMIT=1048576") {
		t.Errorf("capabilities lack APPENDLIMIT=1048576: %v", caps)
	}
	date := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	eight := "Subject: caf\xc3\xa9\r\nMessage-ID: <8bit@test>\r\n\r\nbody caf\xc3\xa9\r\n"
	if err := appendMsg(c, "INBOX", corpus.Message{Body: []byte(eight), Date: date}); err != nil {
		t.Fatalf("append with 8-bit header: %v", err)
	}
	got := s.Dump(t, "u1")
	if want := "Subject: cafXX\r\nMessage-ID: <8bit@test>\r\n\r\nbody caf\xc3\xa9\r\n"; len(got) != 1 || string(got[0].Body) != want {
		t.Fatalf("stored %q, want %q", got, want)
	}
	err = appendMsg(c, "INBOX", corpus.Message{Body: []byte("Subject: lf\nMessage-ID: <lf@test>\n\nbody\n"), Date: date})
	if err == nil || !strings.Contains(err.Error(), "bare newlines") {
		t.Errorf("append with bare LF: %v, want a refusal for bare newlines", err)
	}
	big := "Subject: big\r\nMessage-ID: <big@test>\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 64)
	err = appendMsg(c, "INBOX", corpus.Message{Body: []byte(big), Date: date})
	var ierr *imap.Error
	if !errors.As(err, &ierr) || ierr.Type != imap.StatusResponseTypeNo || !strings.Contains(ierr.Text, "Over quota") {
		t.Errorf("append over a 2 KiB quota: %v, want NO Over quota", err)
	}
	// Refusals leave the session usable.
	if err := c.Noop().Wait(); err != nil {
		t.Errorf("NOOP after the refusals: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type pop3Conn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialPOP3(t *testing.T, addr, user string) *pop3Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	p := &pop3Conn{t: t, c: c, r: bufio.NewReader(c)}
	p.cmd("")
	p.cmd("USER " + user)
	p.cmd("PASS " + Password)
	return p
}

// cmd sends line (none when empty) and wants a +OK status line.
func (p *pop3Conn) cmd(line string) string {
	p.t.Helper()
	if line != "" {
		fmt.Fprintf(p.c, "%s\r\n", line)
	}
	s, err := p.r.ReadString('\n')
	if err != nil {
		p.t.Fatalf("POP3 %q: %v", line, err)
	}
	if !strings.HasPrefix(s, "+OK") {
		p.t.Fatalf("POP3 %q: %q", line, s)
	}
	return s
}

// multi runs a command with a multi-line answer and returns its lines,
// dot-unstuffed.
func (p *pop3Conn) multi(line string) []string {
	p.t.Helper()
	p.cmd(line)
	var out []string
	for {
		s, err := p.r.ReadString('\n')
		if err != nil {
			p.t.Fatalf("POP3 %q: %v", line, err)
		}
		s = strings.TrimSuffix(s, "\r\n")
		if s == "." {
			return out
		}
		out = append(out, strings.TrimPrefix(s, "."))
	}
}
