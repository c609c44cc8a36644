// Package mutf7 encodes folder names in IMAP's modified UTF-7 (RFC 3501
// §5.1.3), for the places that cannot use go-imap's (internal) encoder: the
// IMAP target's own store session and the Maildir++ folder names.
package mutf7

import (
	"encoding/base64"
	"strings"
	"unicode/utf16"
)

// Encoding is the modified BASE64 of RFC 3501 §5.1.3: "," instead of "/",
// no padding.
var Encoding = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// Encode returns s (valid UTF-8) in modified UTF-7: printable ASCII as it
// is, "&" as "&-", everything else as "&" + modified BASE64 of UTF-16BE +
// "-".
func Encode(s string) string {
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
		b.WriteString(Encoding.EncodeToString(buf))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		switch {
		case r == '&':
			flush()
			b.WriteString("&-")
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
