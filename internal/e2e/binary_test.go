package e2e

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/cyrustest"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

// nulCorpus mixes messages holding NUL bytes (sent as literal8) with
// ordinary ones, one of them with a "Content-Transfer-Encoding: binary" part
// (which a literal8 would have the server rewrite as base64: it must go as
// a normal literal). No NUL message has such a part, for the same reason.
func nulCorpus() []corpus.Message {
	date := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	bodies := []string{
		"From: a@example.com\r\nSubject: one NUL\r\nMessage-ID: <nul1@x>\r\nDate: Mon, 6 May 2024 07:08:09 +0000\r\n\r\nbefore\x00after\r\n",
		"From: a@example.com\r\nSubject: plain\r\nMessage-ID: <plain1@x>\r\nDate: Mon, 6 May 2024 07:08:10 +0000\r\n\r\nnothing odd\r\n",
		"From: a@example.com\r\nSubject: many NULs, 8-bit body\r\nMessage-ID: <nul2@x>\r\nDate: Mon, 6 May 2024 07:08:11 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\x00\x00\x00\r\ncaf\xc3\xa9 \x00 na\xc3\xafve\r\n\x00\r\n",
		"From: a@example.com\r\nSubject: binary part\r\nMessage-ID: <bin1@x>\r\nDate: Mon, 6 May 2024 07:08:12 +0000\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\xff\xfe\x01\x02 eight \xe9\r\n",
		"From: a@example.com\r\nSubject: NUL in a long one\r\nMessage-ID: <nul3@x>\r\nDate: Mon, 6 May 2024 07:08:13 +0000\r\n\r\n" + strings.Repeat("line of text with a NUL \x00 in it\r\n", 4000),
		"From: a@example.com\r\nSubject: plain again\r\nMessage-ID: <plain2@x>\r\nDate: Mon, 6 May 2024 07:08:14 +0000\r\n\r\nstill nothing\r\n",
	}
	var out []corpus.Message
	for i, b := range bodies {
		out = append(out, corpus.Message{Folder: "INBOX", Body: []byte(b), Date: date.Add(time.Duration(i) * time.Minute), MessageID: corpus.MessageIDOf([]byte(b))})
	}
	return out
}

// fetchBinary reads every message of user's INBOX with BINARY.PEEK[]: for
// a message without transfer encoding these are its stored bytes, NUL
// included (Dovecot serves NUL as 0x80 under BODY[]). Never used on a
// source: BINARY[] decodes encoded parts.
func fetchBinary(t *testing.T, addr, user string) [][]byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(time.Minute))
	c := imapclient.New(conn, nil)
	defer c.Close()
	if err := c.WaitGreeting(); err != nil {
		t.Fatal(err)
	}
	if err := c.Login(user, "secret").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	sec := &imap.FetchItemBinarySection{Peek: true}
	var all imap.SeqSet
	all.AddRange(1, sel.NumMessages)
	msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, BinarySection: []*imap.FetchItemBinarySection{sec}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, m := range msgs {
		out = append(out, m.FindBinarySection(sec))
	}
	return out
}

// checkNULArrived says whether every message of want is in got exactly
// once, byte for byte (with lfOnly, CRLF compared as LF: Maildir files).
func checkNULArrived(t *testing.T, what string, want []corpus.Message, got [][]byte, lfOnly bool) {
	t.Helper()
	norm := func(b []byte) string {
		if lfOnly {
			b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
		}
		return string(b)
	}
	have := map[string]int{}
	for _, b := range got {
		have[norm(b)]++
	}
	var bad []string
	for _, m := range want {
		k := norm(m.Body)
		if have[k] != 1 {
			bad = append(bad, fmt.Sprintf("%s: %d copies stored exactly", m.MessageID, have[k]))
		}
		delete(have, k)
	}
	for k := range have {
		if len(k) > 300 {
			k = k[:300]
		}
		bad = append(bad, fmt.Sprintf("stored but not expected: %q", k))
	}
	if len(bad) > 0 {
		t.Fatalf("%s: %d messages expected, %d stored:\n%s", what, len(want), len(got), strings.Join(bad, "\n"))
	}
}

// TestNULToDovecot: POP3 → IMAP and Maildir → IMAP of messages holding NUL
// bytes into Dovecot, which announces BINARY: they go as literal8 and are
// stored byte for byte (the Maildir files, and BINARY.PEEK[]); a second
// run copies nothing.
func TestNULToDovecot(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{})
	msgs := nulCorpus()
	dv.Load(t, "pop", msgs)
	for _, tc := range []struct{ name, src, user string }{
		{"POP3 to IMAP", "pop3://pop@" + dv.POP3, "dst"},
		{"Maildir to IMAP", "maildir:" + dv.Maildir("pop"), "u1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			args := []string{"migrate", tc.src, "imap://" + tc.user + "@" + dv.IMAP, "--ca-file", dv.CAFile, "--state", state}
			r := mf(t, secretEnv, args...)
			if r.code != 0 {
				t.Fatal(r)
			}
			mustContain(t, r.stdout, fmt.Sprintf("copied         %d messages", len(msgs)))
			checkNULArrived(t, "Maildir files", msgs, bodies(dovecottest.DumpMaildir(t, dv.Maildir(tc.user))), true)
			checkNULArrived(t, "BINARY.PEEK[]", msgs, fetchBinary(t, dv.IMAP, tc.user), false)
			r = mf(t, secretEnv, args...)
			if r.code != 0 {
				t.Fatal(r)
			}
			mustContain(t, r.stdout, "copied         0 messages")
			if n := len(dovecottest.DumpMaildir(t, dv.Maildir(tc.user))); n != len(msgs) {
				t.Fatalf("after the second run the target holds %d messages", n)
			}
		})
	}
}

// TestNULToCyrus: Cyrus refuses NUL in a normal literal; as literal8 it
// stores the message byte for byte. (It serves such a message under
// BODY[] as a literal8 too, which go-imap beta.8 does not parse there: the
// oracle is BINARY.PEEK[].)
func TestNULToCyrus(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{})
	cy := cyrustest.Start(t, cyrustest.Options{})
	msgs := nulCorpus()
	dv.Load(t, "pop", msgs)
	r := mf(t, secretEnv, "migrate", "pop3://pop@"+dv.POP3, "imap://dst@"+cy.IMAP+"?tls=none", "--ca-file", dv.CAFile, "--state", t.TempDir())
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, r.stdout, fmt.Sprintf("copied         %d messages", len(msgs)))
	checkNULArrived(t, "BINARY.PEEK[]", msgs, fetchBinary(t, cy.IMAP, "dst"), false)
}

func bodies(msgs []corpus.Message) [][]byte {
	var out [][]byte
	for _, m := range msgs {
		out = append(out, m.Body)
	}
	return out
}
