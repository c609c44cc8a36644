package pop3conn

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/mailbox"
)

// Error is a negative reply (-ERR) from the server.
type Error struct {
	// Cmd is the command that was refused, without secrets: "PASS" or
	// "AUTH PLAIN", never the password or the SASL response.
	Cmd string
	// Code is the RFC 2449 / RFC 3206 response code in upper case
	// ("IN-USE", "LOGIN-DELAY", "SYS/TEMP", "SYS/PERM", "AUTH"), or "".
	Code string
	// Text is the human-readable rest of the reply.
	Text string
}

func (e *Error) Error() string {
	if e.Code != "" {
		return "-ERR [" + e.Code + "] " + e.Text
	}
	return "-ERR " + e.Text
}

// Response codes (RFC 2449, RFC 3206).
const (
	CodeInUse      = "IN-USE"
	CodeLoginDelay = "LOGIN-DELAY"
	CodeSysTemp    = "SYS/TEMP"
	CodeSysPerm    = "SYS/PERM"
	CodeAuth       = "AUTH"
)

// maxLine bounds a status or listing line: RFC 2449 allows 512 octets;
// we accept far longer ones from lax servers but never unbounded.
const maxLine = 64 << 10

// parseReply parses a status line (without its CRLF). ok reports +OK;
// for -ERR, code and text are split per RFC 2449. A line that is neither
// +OK nor -ERR is a protocol error.
func parseReply(line string) (ok bool, code, text string, err error) {
	switch {
	case hasPrefixFold(line, "+OK"):
		rest := line[3:]
		if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			return false, "", "", fmt.Errorf("malformed reply %q", truncate(line))
		}
		return true, "", strings.TrimSpace(rest), nil
	case hasPrefixFold(line, "-ERR"):
		rest := line[4:]
		if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			return false, "", "", fmt.Errorf("malformed reply %q", truncate(line))
		}
		code, text = splitCode(strings.TrimSpace(rest))
		return false, code, text, nil
	}
	return false, "", "", fmt.Errorf("malformed reply %q", truncate(line))
}

// splitCode splits "[CODE] text" into CODE (upper case) and text.
func splitCode(s string) (code, text string) {
	if !strings.HasPrefix(s, "[") {
		return "", s
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return "", s
	}
	c := s[1:end]
	// resp-level = 1*achar: no spaces or controls inside the brackets.
	if c == "" || strings.ContainsAny(c, " \t[") {
		return "", s
	}
	for i := 0; i < len(c); i++ {
		if c[i] < 0x21 || c[i] > 0x7e {
			return "", s
		}
	}
	return strings.ToUpper(c), strings.TrimSpace(s[end+1:])
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// classify returns the failure class of a -ERR reply to cmd. login tells
// whether the command was part of authentication (USER, PASS, AUTH).
func classify(e *Error, login bool) failure.Kind {
	switch e.Code {
	case CodeAuth:
		return failure.Auth
	case CodeSysPerm:
		return failure.Fatal
	case CodeSysTemp, CodeLoginDelay, CodeInUse:
		return failure.Temporary
	}
	if login {
		return failure.Auth
	}
	return failure.Unknown
}

// loginError builds the error for a refused login.
func loginError(addr, user string, e *Error) error {
	err := fmt.Errorf("pop3 %s: login failed for %q: %w", addr, user, e)
	if e.Code == CodeInUse {
		err = fmt.Errorf("pop3 %s: login failed for %q: %w (%w)", addr, user, e, mailbox.ErrSingleSession)
	}
	return failure.Mark(classify(e, true), err)
}

// cmdError builds the error for a refused command outside login.
func CmdError(addr string, e *Error) error {
	err := fmt.Errorf("pop3 %s: %s refused: %w", addr, e.Cmd, e)
	k := classify(e, false)
	if k == failure.Unknown {
		return err
	}
	return failure.Mark(k, err)
}

// AsError returns the *Error inside err, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
