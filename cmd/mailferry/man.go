package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

const usageMan = `Usage: mailferry man

Prints mailferry's manual page (roff, section 1), made from the same
command and flag definitions as the help.

Examples:
  mailferry man > /usr/local/share/man/man1/mailferry.1
  mailferry man | man -l -
`

func cmdMan(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Fprint(stdout, usageMan)
		return exitOK
	}
	if len(args) != 0 {
		fmt.Fprintf(stderr, "mailferry man: unexpected argument %q; usage: mailferry man\n", args[0])
		return exitUsage
	}
	writeMan(stdout, time.Now())
	return exitOK
}

// roff escapes text for a roff line: backslashes, and a leading dot or
// quote that roff would read as a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	var b strings.Builder
	for _, r := range s {
		if r > 127 {
			fmt.Fprintf(&b, `\[u%04X]`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func writeMan(w io.Writer, now time.Time) {
	fmt.Fprintf(w, ".TH MAILFERRY 1 %q %q \"User Commands\"\n", now.UTC().Format("2006-01-02"), "mailferry "+buildVersion())
	fmt.Fprintln(w, ".SH NAME\nmailferry \\- move e\\-mail between POP3, IMAP and Maildir, exactly once")
	fmt.Fprintln(w, ".SH SYNOPSIS")
	for _, c := range commands {
		fmt.Fprintf(w, ".B mailferry %s\n", c.name)
		if c.args != "" {
			fmt.Fprintln(w, roff(c.args))
		}
		fmt.Fprintln(w, ".br")
	}
	fmt.Fprintln(w, ".SH DESCRIPTION")
	paragraphs(w, usageIntro)
	fmt.Fprintln(w, ".SH ENDPOINTS")
	preformatted(w, strings.TrimPrefix(usageEndpoints, "Endpoints:\n"))
	fmt.Fprintln(w, ".SH COMMANDS")
	for _, c := range commands {
		fmt.Fprintf(w, ".SS %s\n", roff(strings.TrimSpace("mailferry "+c.name+" "+c.args)))
		body := c.usage
		if _, rest, ok := strings.Cut(body, "\n\n"); ok && strings.HasPrefix(body, "Usage:") {
			body = rest
		}
		preformatted(w, body)
		if c.flags == nil {
			continue
		}
		fs, hidden := c.flags()
		fs.VisitAll(func(f *flag.Flag) {
			if hidden[f.Name] || isAlias(f.Name) {
				return
			}
			fmt.Fprintf(w, ".TP\n.B %s\n%s\n", roff(flagSynopsis(f)), roff(flagHelp(f)))
		})
	}
	fmt.Fprintln(w, ".SH PASSWORDS AND EXIT STATUS")
	preformatted(w, usageRest)
	fmt.Fprintln(w, ".SH SEE ALSO\nmbsync(1), imapsync(1)")
}

func paragraphs(w io.Writer, text string) {
	for _, p := range strings.Split(strings.TrimSpace(text), "\n\n") {
		fmt.Fprintf(w, ".PP\n%s\n", roff(strings.Join(strings.Fields(p), " ")))
	}
}

// preformatted prints text as it is laid out (examples, tables).
func preformatted(w io.Writer, text string) {
	fmt.Fprintln(w, ".PP\n.nf")
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintln(w, roff(l))
	}
	fmt.Fprintln(w, ".fi")
}
