package e2e

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/cyrustest"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

// utf8x80 are messages holding genuine 0x80 octets (UTF-8 text), one beside
// a base64 part that BINARY[] decodes (so it differs from BODY[]).
func utf8x80() []corpus.Message {
	date := time.Date(2024, 5, 7, 7, 8, 9, 0, time.UTC)
	var out []corpus.Message
	for i, b := range []string{
		"From: a@example.com\r\nSubject: UTF-8 with 0x80\r\nMessage-ID: <u1@x>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xc4\x80 \xd1\x80\xd1\x83\xd1\x81\xd1\x81\xd0\xba\xd0\xb8\xd0\xb9 \xe8\x80\x80\r\n",
		"From: a@example.com\r\nSubject: UTF-8 with 0x80 and a base64 part\r\nMessage-ID: <u2@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xc4\x80 \xd1\x80\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECgIA=\r\n--b--\r\n",
	} {
		out = append(out, corpus.Message{Folder: "INBOX", Body: []byte(b), Date: date.Add(time.Duration(i) * time.Minute), MessageID: corpus.MessageIDOf([]byte(b))})
	}
	return out
}

// TestNULFromDovecot: Dovecot IMAP → Maildir of messages holding NUL bytes
// (which Dovecot serves as 0x80 under BODY[]) and of messages holding
// genuine 0x80 octets: every file is the original byte for byte.
func TestNULFromDovecot(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{Users: []string{"src"}})
	msgs := append(nulCorpus(), utf8x80()...)
	nuls := 0
	for _, m := range msgs {
		if bytes.IndexByte(m.Body, 0) >= 0 {
			nuls++
		}
	}
	if nuls < 3 {
		t.Fatalf("the corpus has %d messages with NUL", nuls)
	}
	dv.Load(t, "src", msgs)
	dst := filepath.Join(t.TempDir(), "md")
	r := mf(t, secretEnv, "migrate", "imap://src@"+dv.IMAP, "maildir:"+dst, "--ca-file", dv.CAFile, "--state", t.TempDir())
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, r.stdout, fmt.Sprintf("copied         %d messages", len(msgs)))
	checkNULArrived(t, "Maildir files", msgs, bodies(dovecottest.DumpMaildir(t, dst)), true)
}

// TestX80FromCyrus: Cyrus announces BINARY too and answers BINARY.PEEK[]
// with a literal8; messages with genuine 0x80 octets arrive unchanged.
func TestX80FromCyrus(t *testing.T) {
	cy := cyrustest.Start(t, cyrustest.Options{Users: []string{"src"}})
	msgs := utf8x80()
	cy.Load(t, "src", msgs)
	dst := filepath.Join(t.TempDir(), "md")
	r := mf(t, secretEnv, "migrate", "imap://src@"+cy.IMAP+"?tls=none", "maildir:"+dst, "--state", t.TempDir())
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, r.stdout, fmt.Sprintf("copied         %d messages", len(msgs)))
	checkNULArrived(t, "Maildir files", msgs, bodies(dovecottest.DumpMaildir(t, dst)), true)
}
