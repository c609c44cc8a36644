package maildirpp

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// b64 is the modified BASE64 of RFC 3501 §5.1.3: "," instead of "/", no padding.
var b64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// encodeComponent encodes one folder name component in IMAP modified UTF-7,
// with one deliberate extension: '.' (the Maildir++ hierarchy separator) is
// not written literally but inside a shifted run, as "&AC4-". The input must
// be valid UTF-8 without "/".
func encodeComponent(s string) string {
	var b strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		u := utf16.Encode(run)
		buf := make([]byte, 0, 2*len(u))
		for _, c := range u {
			buf = append(buf, byte(c>>8), byte(c))
		}
		b.WriteByte('&')
		b.WriteString(b64.EncodeToString(buf))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		switch {
		case r == '&':
			flush()
			b.WriteString("&-")
		case r >= 0x20 && r <= 0x7e && r != '.':
			flush()
			b.WriteRune(r)
		default:
			run = append(run, r)
		}
	}
	flush()
	return b.String()
}

var errUTF7 = errors.New("invalid modified UTF-7")

// decodeComponent is the inverse of encodeComponent. It accepts any valid
// modified UTF-7 (also printable ASCII inside a shifted run, which Dovecot's
// own encoder never writes) and rejects malformed input.
func decodeComponent(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", fmt.Errorf("%w: byte 0x%02x", errUTF7, c)
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", fmt.Errorf("%w: unterminated \"&\"", errUTF7)
		}
		enc := s[i+1 : i+1+end]
		i += end + 2
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := b64.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", fmt.Errorf("%w: bad base64 %q", errUTF7, enc)
		}
		u := make([]uint16, len(raw)/2)
		for j := range u {
			u[j] = uint16(raw[2*j])<<8 | uint16(raw[2*j+1])
		}
		for _, r := range utf16.Decode(u) {
			if r == utf8.RuneError {
				return "", fmt.Errorf("%w: bad UTF-16 in %q", errUTF7, enc)
			}
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}
