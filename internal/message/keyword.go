package message

import "strings"

// ValidKeyword reports whether s can be an IMAP flag keyword: an atom
// (RFC 3501 flag-keyword) of at most 200 octets, as Dovecot and Cyrus
// accept and as a Maildir keyword table can hold.
func ValidKeyword(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b <= 0x20 || b >= 0x7f || strings.IndexByte(`(){%*"\]`, b) >= 0 {
			return false
		}
	}
	return true
}
