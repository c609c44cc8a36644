package maildirpp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mailferry/mailferry/internal/mutf7"
)

var b64 = mutf7.Encoding

// encodeComponent encodes one folder name component in IMAP modified UTF-7,
// then escapes "." (the Maildir++ hierarchy separator) as `\2e` and "\" as
// `\5c`, as Dovecot's listescape plugin does. The input must be valid UTF-8
// without "/". Both are printable ASCII, so they end any encoded run: the
// parts between them are encoded on their own.
func encodeComponent(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexAny(s, `.\`)
		if i < 0 {
			b.WriteString(mutf7.Encode(s))
			return b.String()
		}
		b.WriteString(mutf7.Encode(s[:i]))
		if s[i] == '.' {
			b.WriteString(`\2e`)
		} else {
			b.WriteString(`\5c`)
		}
		s = s[i+1:]
	}
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
