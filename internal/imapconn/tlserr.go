package imapconn

import (
	"crypto/x509"
	"fmt"
	"io"
	"strings"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/netconn"
)

type (
	x509UnknownAuthority = x509.UnknownAuthorityError
	x509Hostname         = x509.HostnameError
	x509CertInvalid      = x509.CertificateInvalidError
)

// Port and protocol mix-ups: imaps:// on a plain-text port (143, or a
// POP3 port) fails the TLS handshake on the server's greeting; imaps:// on
// a POP3S port (995) or imap:// on a POP3 port (110) gets a POP3 greeting
// ("+OK") where an IMAP one ("* OK") belongs. Both are named for what they
// are, with the endpoint that fits, rather than as a certificate problem
// or a parse error (the kinds stay TLS and Fatal: exit 3).

// plainGreetingOnTLS returns the error for a TLS handshake that read a
// plain-text greeting as its first record, or nil when err is another.
func plainGreetingOnTLS(addr string, err error) error {
	head, proto, ok := netconn.PlainGreeting(err)
	switch {
	case !ok:
		return nil
	case proto == "IMAP":
		return failure.Mark(failure.TLS, fmt.Errorf(
			"TLS with %s failed: the server greeted in plain text (%q) instead of starting TLS: it is an IMAP port without implicit TLS (STARTTLS, usually 143); use imap:// for it, or imaps:// with the TLS port (usually 993)",
			addr, head))
	default:
		return failure.Mark(failure.TLS, fmt.Errorf(
			"TLS with %s failed: the server greeted in plain text like a POP3 server (%q) instead of starting TLS: it is a POP3 port; use pop3:// for it, or the IMAP port (993 for imaps://, 143 for imap://)",
			addr, head))
	}
}

// notIMAPGreeting is the error for a first line that is not an IMAP
// greeting; a POP3 greeting says which server it is.
func notIMAPGreeting(addr, line string) error {
	if netconn.GreetedAs(line) == "POP3" {
		return failure.Mark(failure.Fatal, fmt.Errorf(
			"read greeting from %s: not an IMAP greeting: the server greeted like a POP3 server (%s): it is a POP3 port; use pop3s:// (port 995) or pop3:// (port 110) to read it, or the server's IMAP port (993 for imaps://, 143 for imap://)",
			addr, clip(line)))
	}
	return failure.Mark(failure.Fatal, fmt.Errorf("read greeting from %s: not an IMAP greeting: %s", addr, clip(line)))
}

// peekGreeting reads the server's first line (up to 4 KiB) so that a POP3
// greeting is named before imapclient fails to parse it; the bytes read
// are replayed to imapclient.
func peekGreeting(r io.Reader, addr string) ([]byte, error) {
	var line []byte
	b := make([]byte, 1)
	for len(line) < 4096 {
		n, err := r.Read(b)
		if n == 1 {
			line = append(line, b[0])
			if b[0] == '\n' {
				break
			}
		}
		if err != nil {
			if len(line) > 0 {
				break // imapclient reports the cut greeting
			}
			return nil, Classify(fmt.Errorf("read greeting from %s: %w", addr, err))
		}
	}
	if s := string(line); strings.HasPrefix(s, "+OK") || strings.HasPrefix(s, "-ERR") {
		return nil, notIMAPGreeting(addr, strings.TrimRight(s, "\r\n"))
	}
	return line, nil
}
