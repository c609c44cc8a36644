// Command mailferry moves and syncs e-mail: POP3, IMAP or Maildir in,
// IMAP or Maildir out, exactly once, resumable after any interruption.
//
// One file per command (migrate.go, verify.go, plan.go, batch.go, demo.go,
// completion.go, man.go, version.go, help.go) and shared ones: flags.go
// (the flag definitions and their parsing), password.go (passwords, token
// commands, redaction), logging.go (the loggers), endpoint.go (SOURCE and
// TARGET), progress.go (bar and summaries).
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes (DESIGN.md §5).
const (
	exitOK          = 0
	exitSomeFailed  = 1
	exitUsage       = 2
	exitConnection  = 3
	exitInterrupted = 130 // SIGINT (Ctrl-C)
	exitTerminated  = 143 // SIGTERM (128+15), as a shell reports it
)

const usageIntro = `mailferry moves e-mail: POP3, IMAP, Maildir or mbox in; IMAP or Maildir out.
Every message exactly once, with its flags, date and folder; an interrupted
run resumes where it stopped, and a re-run copies only what is new.
`

const usageEndpoints = `Endpoints:
  pop3s://USER@HOST[:PORT]    POP3 over TLS (port 995)
  pop3://USER@HOST[:PORT]     POP3 with STLS, required (port 110); add ?tls=none to allow plaintext
  imaps://USER@HOST[:PORT]    IMAP over TLS (port 993)
  imap://USER@HOST[:PORT]     IMAP with STARTTLS, required (port 143); ?tls=none allows plaintext
  maildir:PATH                a Maildir++ tree as Dovecot keeps it (INBOX at PATH, folders as .Name)
  mbox:PATH                   (source only) an mbox file (Google Takeout, mutt) or a tree of them (Thunderbird)
  A user name holding '@' is fine: imaps://bob@example.com@mail.example.com
`

const usageRest = `Passwords (never printed, logged or stored):
  MAILFERRY_SOURCE_PASSWORD / MAILFERRY_TARGET_PASSWORD environment variables,
  --source-password-file / --target-password-file FILE,
  --source-password-command / --target-password-command CMD,
  or a prompt on a terminal (asked again, up to 3 times, when refused).

Exit codes:
  0 all done; 1 finished but some messages failed (listed in the summary);
  2 usage or configuration error; 3 connection, TLS or authentication failure;
  130 interrupted (Ctrl-C), 143 terminated (SIGTERM): run the same command
  again to resume.

Run "mailferry help COMMAND" (or "mailferry COMMAND --help") for its flags.
`

// usageTop is the overview "mailferry help" prints.
func usageTop() string {
	var b strings.Builder
	b.WriteString(usageIntro)
	b.WriteString("\nUsage:\n")
	width := 0
	for _, c := range commands {
		width = max(width, len(strings.TrimSpace("mailferry "+c.name+" "+c.args)))
	}
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, strings.TrimSpace("mailferry "+c.name+" "+c.args), c.summary)
	}
	b.WriteString("\n" + usageEndpoints + "\n" + usageRest)
	return b.String()
}

func main() {
	// The soft heap limit is the memory budget (memory.go; migrate
	// --memory), not a hard cap.
	setMemoryLimit(defaultMemory())
	startGCTuner()
	stop := startProfiles()
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageTop())
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help":
		return cmdHelp(args[1:], stdout, stderr)
	case "--version", "-version", "-V":
		return cmdVersion(args[1:], stdout, stderr)
	}
	c := findCommand(args[0])
	if c == nil {
		if strings.HasPrefix(args[0], "-") {
			fmt.Fprintf(stderr, "mailferry: %s: a flag comes after the command, e.g. mailferry migrate %s ...; see mailferry help\n", args[0], args[0])
			return exitUsage
		}
		return unknownCommand(stderr, args[0])
	}
	return c.run(args[1:], stdout, stderr)
}
