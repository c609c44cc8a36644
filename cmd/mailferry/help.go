package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// command is one of mailferry's commands. flags builds its flag set (the
// same definitions parse the command line, print the help, and generate
// the shell completions and the man page).
type command struct {
	name    string
	args    string // e.g. "SOURCE TARGET [flags]"
	summary string
	usage   string
	run     func(args []string, stdout, stderr io.Writer) int
	flags   func() (*flag.FlagSet, map[string]bool) // nil: no flags; the map lists hidden flags
}

// commands lists mailferry's commands in the order the help shows them.
// Filled in init to break the initialization cycle (run uses commands).
var commands []*command

func init() {
	commands = []*command{
		{name: "migrate", args: "SOURCE TARGET [flags]", summary: "copy what is not yet in TARGET", usage: usageMigrate, run: cmdMigrate,
			flags: func() (*flag.FlagSet, map[string]bool) {
				c, _ := newMigrateFlags(io.Discard)
				return c.fs, c.hidden
			}},
		{name: "verify", args: "SOURCE TARGET [flags]", summary: "check every SOURCE message is in TARGET once, with flags and date", usage: usageVerify, run: cmdVerify,
			flags: func() (*flag.FlagSet, map[string]bool) {
				c, _ := newVerifyFlags(io.Discard)
				return c.fs, c.hidden
			}},
		{name: "plan", args: "SOURCE TARGET [flags]", summary: "show what migrate would copy, the quota and a time estimate", usage: usagePlan, run: cmdPlan,
			flags: func() (*flag.FlagSet, map[string]bool) {
				c, _ := newPlanFlags(io.Discard)
				return c.fs, c.hidden
			}},
		{name: "batch", args: "FILE.csv [flags]", summary: "migrate many accounts listed in a CSV file", usage: usageBatch, run: cmdBatch,
			flags: func() (*flag.FlagSet, map[string]bool) {
				b := newBatchFlags(io.Discard)
				return b.fs, nil
			}},
		{name: "demo", args: "[flags]", summary: "run a migration on built-in servers and sample mail", usage: usageDemo, run: cmdDemo,
			flags: func() (*flag.FlagSet, map[string]bool) {
				fs, _, _ := newDemoFlags(io.Discard)
				return fs, nil
			}},
		{name: "jobs", args: "[forget ID...] [flags]", summary: "list the jobs in the state directory, or remove a job's state", usage: usageJobs,
			run: func(args []string, stdout, stderr io.Writer) int {
				return runJobs(context.Background(), args, stdout, stderr)
			}},
		{name: "completion", args: "bash|zsh|fish", summary: "print a shell completion script", usage: usageCompletion, run: cmdCompletion},
		{name: "man", args: "", summary: "print the manual page (roff)", usage: usageMan, run: cmdMan},
		{name: "version", args: "", summary: "print the version and build information", usage: usageVersion, run: cmdVersion},
		{name: "help", args: "[COMMAND]", summary: "show help", usage: usageHelp, run: cmdHelp},
	}
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// didYouMean returns the candidate closest to s (edit distance at most 2,
// or a prefix), or "".
func didYouMean(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		d := editDistance(s, c)
		if len(s) >= 2 && strings.HasPrefix(c, s) {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// unknownCommand is the one-line error for a command mailferry does not have.
func unknownCommand(stderr io.Writer, name string) int {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	if m := didYouMean(name, names); m != "" {
		fmt.Fprintf(stderr, "mailferry: unknown command %q (did you mean %q?); see mailferry help\n", name, m)
	} else {
		fmt.Fprintf(stderr, "mailferry: unknown command %q; see mailferry help\n", name)
	}
	return exitUsage
}

const usageHelp = `Usage: mailferry help [COMMAND]

Prints the overview, or the help of COMMAND (the same as
"mailferry COMMAND --help").

Examples:
  mailferry help
  mailferry help migrate
`

func cmdHelp(args []string, stdout, stderr io.Writer) int {
	for len(args) > 0 && isHelp(args[0]) {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprint(stdout, usageTop())
		return exitOK
	}
	c := findCommand(args[0])
	if c == nil {
		return unknownCommand(stderr, args[0])
	}
	printCommandHelp(stdout, c)
	return exitOK
}

// printCommandHelp prints a command's help: its usage text and its flags.
func printCommandHelp(w io.Writer, c *command) {
	if c.flags == nil {
		fmt.Fprint(w, c.usage)
		return
	}
	fs, hidden := c.flags()
	printUsage(w, c.usage, fs, hidden)
}

// flagGroups puts each flag under a heading in the help; the order of
// flagGroupOrder is the order of the headings.
var flagGroups = map[string]string{
	"include": "Folders", "exclude": "Folders", "map": "Folders", "to-folder": "Folders", "keep-all-mail": "Folders",
	"sync-flags": "Copying", "dry-run": "Copying", "max-size": "Copying", "fix-bare-lf": "Copying", "strip-nul": "Copying",
	"delete-source": "Copying", "memory": "Copying", "probe-target": "Checks", "mbox-format": "Sources", "gmail-labels": "Sources",
	"deep": "Checks", "ignore-flags": "Checks", "ignore-keywords": "Checks", "ignore-dates": "Checks",
	"accounts": "Batch", "shard": "Batch", "log-dir": "Batch",
	"workers": "Connections", "ca-file": "Connections", "timeout": "Connections", "retries": "Connections",
	"max-rate": "Connections", "max-bandwidth": "Connections",
	"source-password-file": "Passwords", "target-password-file": "Passwords", "source-password-command": "Passwords",
	"target-password-command": "Passwords", "source-oauth2-token-command": "Passwords", "target-oauth2-token-command": "Passwords",
	"state": "Output and state", "report": "Output and state", "log": "Output and state", "no-progress": "Output and state",
	"stats": "Output and state", "verbose": "Output and state", "quiet": "Output and state",
}

var flagGroupOrder = []string{"Folders", "Sources", "Copying", "Checks", "Batch", "Connections", "Passwords", "Output and state", "Flags"}

// shortAlias maps a long flag name to its one-letter alias.
var shortAlias = map[string]string{"verbose": "v", "quiet": "q"}

func isAlias(name string) bool {
	for _, s := range shortAlias {
		if s == name {
			return true
		}
	}
	return false
}

// printUsage prints a command's usage text, then its flags grouped, GNU
// style (--name VALUE), with their defaults.
func printUsage(w io.Writer, usage string, fs *flag.FlagSet, hidden map[string]bool) {
	fmt.Fprint(w, usage)
	groups := map[string][]*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) {
		if hidden[f.Name] || isAlias(f.Name) {
			return
		}
		g := flagGroups[f.Name]
		if g == "" {
			g = "Flags"
		}
		groups[g] = append(groups[g], f)
	})
	for _, g := range flagGroupOrder {
		fl := groups[g]
		if len(fl) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", g)
		for _, f := range fl {
			printFlag(w, f)
		}
	}
}

// flagSynopsis is "-q, --quiet" or "--workers N".
func flagSynopsis(f *flag.Flag) string {
	name, help := flag.UnquoteUsage(f)
	s := "    --" + f.Name
	if a := shortAlias[f.Name]; a != "" {
		s = "-" + a + ", --" + f.Name
	}
	if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); !isBool {
		if name == "" || name == "value" {
			name = "VALUE"
		}
		if strings.Contains(help, "`") {
			name = "VALUE"
		}
		s += " " + name
	}
	return s
}

// flagHelp is the flag's help text with its default, when not the zero one.
func flagHelp(f *flag.Flag) string {
	_, help := flag.UnquoteUsage(f)
	switch f.DefValue {
	case "", "0", "false", "0s", "[]":
	default:
		def := f.DefValue
		if d, err := time.ParseDuration(def); err == nil {
			def = shortDuration(d)
		}
		help += " (default " + def + ")"
	}
	return help
}

func printFlag(w io.Writer, f *flag.Flag) {
	const col = 34
	left := "  " + flagSynopsis(f)
	lines := wrap(flagHelp(f), 80-col)
	if len(left) >= col-1 {
		fmt.Fprintln(w, left)
	} else {
		fmt.Fprintf(w, "%-*s%s\n", col, left, lines[0])
		lines = lines[1:]
	}
	for _, l := range lines {
		fmt.Fprintf(w, "%s%s\n", strings.Repeat(" ", col), l)
	}
}

// wrap breaks s into lines of at most width characters at spaces.
func wrap(s string, width int) []string {
	var lines []string
	var cur string
	for _, word := range strings.Fields(s) {
		switch {
		case cur == "":
			cur = word
		case len(cur)+1+len(word) > width:
			lines = append(lines, cur)
			cur = word
		default:
			cur += " " + word
		}
	}
	return append(lines, cur)
}

// allFlagNames lists a command's flags (hidden ones too, for completion
// of a command line copied from migrate), sorted.
func allFlagNames(fs *flag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *flag.Flag) {
		if !isAlias(f.Name) {
			out = append(out, f.Name)
		}
	})
	sort.Strings(out)
	return out
}

// shortDuration writes 1m for 1m0s and 1h for 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
