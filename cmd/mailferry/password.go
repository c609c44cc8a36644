package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/mailferry/mailferry/internal/failure"
	"golang.org/x/term"
)

// passwords fills in the endpoints' passwords from env, file or prompt.
func (c *common) passwords(stderr io.Writer) error {
	for _, side := range []struct {
		e        *endpoint
		env      string
		file     string
		tokenCmd string
		name     string
	}{
		{c.src, "MAILFERRY_SOURCE_PASSWORD", c.srcPassFile, c.srcTokenCmd, "source"},
		{c.tgt, "MAILFERRY_TARGET_PASSWORD", c.tgtPassFile, c.tgtTokenCmd, "target"},
	} {
		if side.e.scheme == "maildir" {
			continue
		}
		if side.tokenCmd != "" {
			side.e.token = tokenCommand(side.tokenCmd, side.name, c.secrets)
			continue
		}
		switch {
		case side.file != "":
			b, err := os.ReadFile(side.file)
			if err != nil {
				return fmt.Errorf("read the %s password file: %w", side.name, err)
			}
			side.e.pass = strings.TrimRight(string(b), "\r\n")
		case os.Getenv(side.env) != "":
			side.e.pass = os.Getenv(side.env)
		case term.IsTerminal(int(os.Stdin.Fd())):
			fmt.Fprintf(stderr, "Password for %s: ", side.e)
			b, err := term.ReadPassword(int(os.Stdin.Fd()))
			fmt.Fprintln(stderr)
			if err != nil {
				return fmt.Errorf("read the %s password: %w", side.name, err)
			}
			side.e.pass = string(b)
		default:
			return fmt.Errorf("no password for the %s %s: set %s or use --%s-password-file", side.name, side.e, side.env, side.name)
		}
		if side.e.pass == "" {
			return fmt.Errorf("the %s password is empty", side.name)
		}
		c.secrets.add(side.e.pass)
		if side.e.noTLS {
			fmt.Fprintf(stderr, "mailferry: warning: %s %s: the password and mail cross the network unencrypted (?tls=none)\n", side.name, side.e)
		}
	}
	return nil
}

// tokenCommand returns a function that runs cmd with sh -c and takes the
// first line it prints as the OAuth2 access token (like mbsync's PassCmd).
// The token is never printed; it is added to the redaction list.
func tokenCommand(cmd, side string, secrets *secretList) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		out, err := exec.CommandContext(ctx, "sh", "-c", cmd).Output()
		if err != nil {
			return "", failure.Mark(failure.Auth, fmt.Errorf("the %s OAuth2 token command failed: %v", side, err))
		}
		tok, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		tok = strings.TrimSpace(tok)
		if tok == "" {
			return "", failure.Mark(failure.Auth, fmt.Errorf("the %s OAuth2 token command printed no token", side))
		}
		secrets.add(tok)
		return tok, nil
	}
}

// secretList holds the passwords and tokens of a run, to be redacted from
// anything printed or logged. Safe for concurrent use: token commands add
// to it while loggers read it.
type secretList struct {
	mu   sync.Mutex
	list []string
}

func (l *secretList) add(s string) {
	if len(s) < 3 {
		return // too short to redact without mangling ordinary text
	}
	l.mu.Lock()
	l.list = append(l.list, s)
	l.mu.Unlock()
}

func (l *secretList) redact(s string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, sec := range l.list {
		s = strings.ReplaceAll(s, sec, "***")
	}
	return s
}

// redactWriter replaces any secret in log output (a server echoing a
// password back in an error, say) with "***".
type redactWriter struct {
	w       io.Writer
	secrets *secretList
}

func (r *redactWriter) Write(p []byte) (int, error) {
	_, err := io.WriteString(r.w, r.secrets.redact(string(p)))
	return len(p), err
}

func (c *common) redact(s string) string { return c.secrets.redact(s) }
