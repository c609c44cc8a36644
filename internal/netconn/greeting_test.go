package netconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
)

func TestGreetedAs(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"* OK [CAPABILITY IMAP4rev1] Dovecot ready.", "IMAP"},
		{"* PREAUTH ready", "IMAP"},
		{"* BYE too many", "IMAP"},
		{"* OK ", "IMAP"}, // a 5-byte TLS record header
		{"+OK Dovecot ready.", "POP3"},
		{"-ERR [IN-USE] locked", "POP3"},
		{"220 smtp ready", ""},
		{"\x16\x03\x01\x00\x05", ""},
	} {
		if got := GreetedAs(c.line); got != c.want {
			t.Errorf("GreetedAs(%q) = %q, want %q", c.line, got, c.want)
		}
	}
}

func TestPlainGreeting(t *testing.T) {
	rec := func(s string) error {
		var rh tls.RecordHeaderError
		copy(rh.RecordHeader[:], s)
		return fmt.Errorf("handshake: %w", rh)
	}
	if head, proto, ok := PlainGreeting(rec("+OK D")); !ok || proto != "POP3" || head != "+OK D" {
		t.Errorf("POP3 greeting: %q %q %v", head, proto, ok)
	}
	if _, proto, ok := PlainGreeting(rec("* OK ")); !ok || proto != "IMAP" {
		t.Errorf("IMAP greeting: %q %v", proto, ok)
	}
	if _, _, ok := PlainGreeting(rec("HTTP/")); ok {
		t.Error("an HTTP answer taken for a mail greeting")
	}
	if _, _, ok := PlainGreeting(errors.New("x509: unknown authority")); ok {
		t.Error("a certificate error taken for a plain greeting")
	}
}
