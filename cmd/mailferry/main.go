// Command mailferry moves and syncs e-mail: POP3, IMAP or Maildir in,
// IMAP or Maildir out, exactly once, resumable after any interruption.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// Exit codes (DESIGN.md §5).
const (
	exitOK          = 0
	exitSomeFailed  = 1
	exitUsage       = 2
	exitConnection  = 3
	exitInterrupted = 130
)

const usageTop = `mailferry moves e-mail: POP3, IMAP or Maildir in; IMAP or Maildir out.
Every message exactly once, with its flags, date and folder; an interrupted
run resumes where it stopped, and a re-run copies only what is new.

Usage:
  mailferry migrate SOURCE TARGET [flags]   copy what is not yet in TARGET
  mailferry verify  SOURCE TARGET [flags]   check every SOURCE message is in TARGET once, with flags and date
  mailferry plan    SOURCE TARGET [flags]   show what migrate would copy, the quota and a time estimate
  mailferry batch   FILE.csv [flags]        migrate many accounts listed in a CSV file
  mailferry demo                            run a migration on built-in servers and sample mail
  mailferry help [COMMAND]                  show help

Endpoints:
  pop3s://USER@HOST[:PORT]    POP3 over TLS (port 995)
  pop3://USER@HOST[:PORT]     POP3 with STLS, required (port 110); add ?tls=none to allow plaintext
  imaps://USER@HOST[:PORT]    IMAP over TLS (port 993)
  imap://USER@HOST[:PORT]     IMAP with STARTTLS, required (port 143); ?tls=none allows plaintext
  maildir:PATH                a Maildir++ tree as Dovecot keeps it (INBOX at PATH, folders as .Name)
  A user name holding '@' is fine: imaps://bob@example.com@mail.example.com

Passwords (never printed, logged or stored):
  MAILFERRY_SOURCE_PASSWORD / MAILFERRY_TARGET_PASSWORD environment variables,
  or --source-password-file / --target-password-file FILE, or a prompt on a terminal.

Exit codes:
  0 all done; 1 finished but some messages failed (listed in the summary);
  2 usage or configuration error; 3 connection, TLS or authentication failure;
  130 interrupted (run the same command again to resume).

Run "mailferry help migrate" for the flags.
`

func main() {
	// A soft heap limit: the GC works harder before the heap grows, so RSS
	// stays near the working set (bodies are streamed and spooled; what
	// grows with the account is only its listing). Not a hard cap.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(48 << 20)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageTop)
		return exitUsage
	}
	switch args[0] {
	case "migrate":
		return cmdMigrate(args[1:], stdout, stderr)
	case "verify":
		return cmdVerify(args[1:], stdout, stderr)
	case "plan":
		return cmdPlan(args[1:], stdout, stderr)
	case "batch":
		return cmdBatch(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		if len(args) > 1 && !isHelp(args[1]) {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usageTop)
		return exitOK
	case "version", "--version", "-version", "-V":
		fmt.Fprintln(stdout, "mailferry", buildVersion())
		return exitOK
	}
	fmt.Fprintf(stderr, "mailferry: unknown command %q\n\n%s", args[0], usageTop)
	return exitUsage
}
