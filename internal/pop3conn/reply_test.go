package pop3conn

import (
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/failure"
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		line       string
		ok         bool
		code, text string
		bad        bool
	}{
		{"+OK", true, "", "", false},
		{"+OK 2 320", true, "", "2 320", false},
		{"+ok lower case", true, "", "lower case", false},
		{"-ERR", false, "", "", false},
		{"-ERR no such message", false, "", "no such message", false},
		{"-ERR [IN-USE] Do you have another POP session running?", false, "IN-USE", "Do you have another POP session running?", false},
		{"-ERR [LOGIN-DELAY] wait", false, "LOGIN-DELAY", "wait", false},
		{"-ERR [SYS/TEMP] later", false, "SYS/TEMP", "later", false},
		{"-ERR [sys/perm] gone", false, "SYS/PERM", "gone", false},
		{"-ERR [AUTH] Authentication failed.", false, "AUTH", "Authentication failed.", false},
		{"-ERR [AUTH]", false, "AUTH", "", false},
		{"-ERR [not a code] text", false, "", "[not a code] text", false},
		{"-ERR [unterminated text", false, "", "[unterminated text", false},
		{"-ERR []", false, "", "[]", false},
		{"+OKAY", false, "", "", true},
		{"-ERROR", false, "", "", true},
		{"* OK IMAP", false, "", "", true},
		{"", false, "", "", true},
		{"+ challenge", false, "", "", true},
	}
	for _, tt := range tests {
		ok, code, text, err := parseReply(tt.line)
		if (err != nil) != tt.bad {
			t.Errorf("%q: err = %v", tt.line, err)
			continue
		}
		if tt.bad {
			continue
		}
		if ok != tt.ok || code != tt.code || text != tt.text {
			t.Errorf("%q: got (%v, %q, %q), want (%v, %q, %q)", tt.line, ok, code, text, tt.ok, tt.code, tt.text)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		code  string
		login bool
		want  failure.Kind
	}{
		{"AUTH", false, failure.Auth},
		{"", true, failure.Auth},
		{"", false, failure.Unknown},
		{"SYS/PERM", true, failure.Fatal},
		{"SYS/TEMP", false, failure.Temporary},
		{"LOGIN-DELAY", true, failure.Temporary},
		{"IN-USE", true, failure.Temporary},
		{"UNKNOWN-EXT", true, failure.Auth},
	}
	for _, tt := range tests {
		if got := classify(&Error{Code: tt.code}, tt.login); got != tt.want {
			t.Errorf("classify(%q, login=%v) = %v, want %v", tt.code, tt.login, got, tt.want)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"+OK", "-ERR [IN-USE] x", "-ERR [SYS/TEMP]", "-ERR [", "+OK\x00", "-ERR [a b] c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		ok, code, text, err := parseReply(line)
		if err != nil {
			if ok || code != "" || text != "" {
				t.Fatalf("error with values: %v %q %q", ok, code, text)
			}
			return
		}
		if ok && code != "" {
			t.Fatalf("+OK with code %q", code)
		}
		if code != strings.ToUpper(code) || strings.ContainsAny(code, " []") {
			t.Fatalf("bad code %q", code)
		}
		if !ok {
			e := &Error{Code: code, Text: text}
			// Re-parsing what Error prints gives the same code and text.
			ok2, code2, text2, err2 := parseReply(e.Error())
			if err2 != nil || ok2 || code2 != code || (text2 != text && code == "") {
				t.Fatalf("re-parse of %q: %v %q %q %v", e.Error(), ok2, code2, text2, err2)
			}
		}
	})
}
