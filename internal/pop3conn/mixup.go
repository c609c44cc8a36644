package pop3conn

import (
	"fmt"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/netconn"
)

// Port and protocol mix-ups: pop3s:// on a plain-text port fails the TLS
// handshake on the server's greeting; pop3s:// on an IMAPS port (993) or
// pop3:// on an IMAP port (143) gets an IMAP greeting ("* OK") where a
// POP3 one ("+OK") belongs. Both are named for what they are, with the
// endpoint that fits (the kinds stay TLS and Fatal: exit 3).

// plainGreetingOnTLS returns the error for a TLS handshake that read a
// plain-text greeting as its first record, or nil when err is another.
func plainGreetingOnTLS(addr string, err error) error {
	head, proto, ok := netconn.PlainGreeting(err)
	switch {
	case !ok:
		return nil
	case proto == "POP3":
		return failure.Mark(failure.TLS, fmt.Errorf(
			"pop3 %s: TLS handshake failed: the server greeted in plain text (%q) instead of starting TLS: it is a POP3 port without implicit TLS (STLS, usually 110); use pop3:// for it, or pop3s:// with the TLS port (usually 995)",
			addr, head))
	default:
		return failure.Mark(failure.TLS, fmt.Errorf(
			"pop3 %s: TLS handshake failed: the server greeted in plain text like an IMAP server (%q) instead of starting TLS: it is an IMAP port; use imap:// for it, or the POP3 port (995 for pop3s://, 110 for pop3://)",
			addr, head))
	}
}

// imapGreeting returns the error for an IMAP server's greeting on a POP3
// connection, or nil when line is not one.
func imapGreeting(addr, line string) error {
	if netconn.GreetedAs(line) != "IMAP" {
		return nil
	}
	return failure.Mark(failure.Fatal, fmt.Errorf(
		"pop3 %s: not a POP3 server: it greeted like an IMAP server (%q): it is an IMAP port; use imaps:// (port 993) or imap:// (port 143) to read it, or the server's POP3 port (995 for pop3s://, 110 for pop3://)",
		addr, truncate(line)))
}
