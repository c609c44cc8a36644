package maildirpp

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// b64 is the modified BASE64 of RFC 3501 §5.1.3: "," instead of "/", no padding.
var b64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// encodeComponent encodes one folder name component in IMAP modified UTF-7,
// then escapes "." (the Maildir++ hierarchy separator) as `\2e` and "\" as
// `\5c`, as Dovecot's listescape plugin does. The input must be valid UTF-8
// without "/".
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
		case r == '.':
			flush()
			b.WriteString(`\2e`)
		case r == '\\':
			flush()
			b.WriteString(`\5c`)
		case r >= 0x20 && r <= 0x7e:
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
// own encoder never writes), turns `\XX` (two hex digits of a printable
// ASCII character) into that character, keeps any other "\" as it is, and
// rejects malformed input.
func decodeComponent(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", fmt.Errorf("%w: byte 0x%02x", errUTF7, c)
		}
		if c == '\\' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil && v >= 0x20 && v <= 0x7e {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
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
