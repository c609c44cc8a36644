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

// Hooks for tests: whether stdin is a terminal, and reading a password
// from it without echo.
var (
	stdinIsTerminal = func() bool { return term.IsTerminal(int(os.Stdin.Fd())) }
	readPassword    = func() ([]byte, error) { return term.ReadPassword(int(os.Stdin.Fd())) }
)

// promptTries is how many times a refused password typed at the prompt is
// asked for.
const promptTries = 3

// passwords fills in the endpoints' passwords from (in this order) an
// OAuth2 token command, --*-password-file, --*-password-command, the
// environment, or a prompt on a terminal.
func (c *common) passwords(stderr io.Writer) error {
	c.prompted = map[string]bool{}
	for _, side := range []struct {
		e        *endpoint
		env      string
		file     string
		cmd      string
		tokenCmd string
		name     string
	}{
		{c.src, "MAILFERRY_SOURCE_PASSWORD", c.srcPassFile, c.srcPassCmd, c.srcTokenCmd, "source"},
		{c.tgt, "MAILFERRY_TARGET_PASSWORD", c.tgtPassFile, c.tgtPassCmd, c.tgtTokenCmd, "target"},
	} {
		if side.e.local() {
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
		case side.cmd != "":
			p, err := passwordCommand(side.cmd, side.name)
			if err != nil {
				return err
			}
			side.e.pass = p
		case os.Getenv(side.env) != "":
			side.e.pass = os.Getenv(side.env)
		case stdinIsTerminal():
			p, err := prompt(stderr, side.e, side.name)
			if err != nil {
				return err
			}
			side.e.pass = p
			c.prompted[side.name] = true
		default:
			return fmt.Errorf("no password for the %s %s: set %s, or use --%s-password-file or --%s-password-command",
				side.name, side.e, side.env, side.name, side.name)
		}
		if side.e.pass == "" {
			return fmt.Errorf("the %s password is empty", side.name)
		}
		c.secrets.add(side.e.pass)
		if side.e.noTLS && !c.quiet {
			fmt.Fprintf(stderr, "mailferry: warning: %s %s: the password and mail cross the network unencrypted (?tls=none)\n", side.name, side.e)
		}
	}
	return nil
}

// prompt asks for a password on the terminal, without echo.
func prompt(stderr io.Writer, e *endpoint, side string) (string, error) {
	fmt.Fprintf(stderr, "Password for %s: ", e)
	b, err := readPassword()
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read the %s password: %w", side, err)
	}
	return string(b), nil
}

// passwordCommand runs cmd with sh -c (as mbsync's PassCmd) and takes what
// it prints, less one trailing newline, as the password. Neither the
// command's output nor its error output is shown or logged.
func passwordCommand(cmd, side string) (string, error) {
	c := exec.Command("sh", "-c", cmd)
	c.Stderr = nil
	out, err := c.Output()
	if err != nil {
		return "", failure.Mark(failure.Config, fmt.Errorf("the %s password command failed (%v); run it by hand to see why", side, err))
	}
	s := string(out)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	return s, nil
}

// checkPrompted logs in once with each password typed at the prompt: a
// refused one is asked for again, up to promptTries times in all, rather
// than failing the run.
func (c *common) checkPrompted(ctx context.Context, stderr io.Writer, co connOptions) error {
	for _, side := range []struct {
		e    *endpoint
		name string
	}{{c.src, "source"}, {c.tgt, "target"}} {
		if !c.prompted[side.name] {
			continue
		}
		for try := 1; ; try++ {
			err := tryLogin(ctx, side.e, co)
			if err == nil || !failure.Is(err, failure.Auth) {
				break // a good password, or another problem the run will report
			}
			if try == promptTries {
				return fmt.Errorf("%s: %s", side.name, c.redact(err.Error()))
			}
			fmt.Fprintf(stderr, "mailferry: the %s refused the password; try again (%d of %d)\n", side.name, try+1, promptTries)
			p, err := prompt(stderr, side.e, side.name)
			if err != nil {
				return err
			}
			if p == "" {
				return fmt.Errorf("the %s password is empty", side.name)
			}
			side.e.pass = p
			c.secrets.add(p)
		}
	}
	return nil
}

// tryLogin opens one connection to e and closes it.
func tryLogin(ctx context.Context, e *endpoint, co connOptions) error {
	open, err := e.sourceOpener(co)
	if err != nil {
		return err
	}
	s, err := open(ctx)
	if err != nil {
		return err
	}
	return s.Close()
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
