package dovecottest

import (
	"encoding/base64"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A private copy of IMAP modified UTF-7 (RFC 3501 §5.1.3), so that this test
// oracle does not depend on the code it checks.

var b64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

func mutf7Encode(s string) string {
	var b strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		u := utf16.Encode(run)
		p := make([]byte, 2*len(u))
		for i, c := range u {
			p[2*i], p[2*i+1] = byte(c>>8), byte(c)
		}
		b.WriteString("&" + b64.EncodeToString(p) + "-")
		run = run[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
		} else {
			run = append(run, r)
		}
	}
	flush()
	return b.String()
}

// mutf7Decode decodes s; it returns s unchanged when s is not valid.
func mutf7Decode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		j := strings.IndexByte(s[i:], '-')
		if j < 0 {
			return s
		}
		j += i
		if j == i+1 {
			b.WriteByte('&')
			i = j + 1
			continue
		}
		p, err := b64.DecodeString(s[i+1 : j])
		if err != nil || len(p)%2 != 0 {
			return s
		}
		u := make([]uint16, len(p)/2)
		for k := range u {
			u[k] = uint16(p[2*k])<<8 | uint16(p[2*k+1])
		}
		for _, r := range utf16.Decode(u) {
			if r == utf8.RuneError {
				return s
			}
			b.WriteRune(r)
		}
		i = j + 1
	}
	return b.String()
}
