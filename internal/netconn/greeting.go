package netconn

import (
	"crypto/tls"
	"errors"
	"strings"
)

// Port and protocol mix-ups (imaps:// on a STARTTLS or POP3 port,
// pop3s:// on an IMAP port, ...) show as a server greeting where a TLS
// record or the other protocol's greeting belongs. The IMAP and POP3
// clients name them with the endpoint that fits; which protocol greeted is
// decided here, once.

// GreetedAs names the protocol a greeting line (or its first bytes)
// belongs to: "IMAP" for an untagged response ("* OK", "* PREAUTH",
// "* BYE"), "POP3" for "+OK" or "-ERR", "" for anything else.
func GreetedAs(line string) string {
	switch {
	case strings.HasPrefix(line, "* "):
		return "IMAP"
	case strings.HasPrefix(line, "+OK"), strings.HasPrefix(line, "-ERR"):
		return "POP3"
	}
	return ""
}

// PlainGreeting reports whether err is a TLS handshake that read a
// plain-text greeting as its first record, and returns the greeting's
// first bytes (the record header) with the protocol they belong to.
func PlainGreeting(err error) (head, proto string, ok bool) {
	var rh tls.RecordHeaderError
	if !errors.As(err, &rh) {
		return "", "", false
	}
	head = string(rh.RecordHeader[:])
	proto = GreetedAs(head)
	return head, proto, proto != ""
}
