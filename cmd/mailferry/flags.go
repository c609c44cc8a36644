package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// common holds the flags migrate and verify share.
type common struct {
	fs               *flag.FlagSet
	state            string
	workers          int
	toFolder         string
	include, exclude multiFlag
	maps             multiFlag
	keepAllMail      bool
	caFile           string
	srcPassFile      string
	tgtPassFile      string
	srcTokenCmd      string
	tgtTokenCmd      string
	timeout          time.Duration
	noProgress       bool
	stats            time.Duration
	report           string
	logFile          string
	verbose          bool
	quiet            bool
	src, tgt         *endpoint
	positional       []string
	logger           *slog.Logger
	closeLog         func()
	secrets          *secretList
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func newCommon(name, usage string, stderr io.Writer) *common {
	c := &common{fs: flag.NewFlagSet(name, flag.ContinueOnError), secrets: new(secretList)}
	fs := c.fs
	fs.SetOutput(stderr)
	fs.StringVar(&c.state, "state", "", "state `DIR` for checkpoint journals (default $XDG_STATE_HOME/mailferry)")
	fs.IntVar(&c.workers, "workers", 4, "concurrent connections to each side")
	fs.StringVar(&c.toFolder, "to-folder", "", "target `FOLDER` for the INBOX of the source (a POP3 mailbox), default INBOX")
	fs.Var(&c.include, "include", "copy only source folders matching `REGEX` (repeatable)")
	fs.Var(&c.exclude, "exclude", "skip source folders matching `REGEX` (repeatable)")
	fs.Var(&c.maps, "map", "put source folder `OLD=NEW` (and its sub-folders) under another name (repeatable)")
	fs.BoolVar(&c.keepAllMail, "keep-all-mail", false, "also copy Gmail's [Gmail]/All Mail and Important (skipped by default: every message is in a label too)")
	fs.StringVar(&c.caFile, "ca-file", "", "trust the CA certificate(s) in `PEM` file too (self-signed servers)")
	fs.StringVar(&c.srcPassFile, "source-password-file", "", "read the source password from `FILE`")
	fs.StringVar(&c.tgtPassFile, "target-password-file", "", "read the target password from `FILE`")
	fs.StringVar(&c.srcTokenCmd, "source-oauth2-token-command", "", "log in to the source with OAuth2 (XOAUTH2 / OAUTHBEARER): `CMD` prints an access token")
	fs.StringVar(&c.tgtTokenCmd, "target-oauth2-token-command", "", "log in to the target with OAuth2: `CMD` prints an access token")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "network timeout per operation")
	fs.BoolVar(&c.noProgress, "no-progress", false, "no progress bar, even on a terminal")
	fs.DurationVar(&c.stats, "stats", 30*time.Second, "off a terminal, log progress every `INTERVAL`")
	fs.StringVar(&c.report, "report", "", "write a JSON report to `FILE`")
	fs.StringVar(&c.logFile, "log", "", "write structured logs (JSON lines) to `FILE`")
	fs.BoolVar(&c.verbose, "v", false, "verbose: log more on stderr")
	fs.BoolVar(&c.quiet, "q", false, "quiet: print only errors and the summary")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	return c
}

// parse parses flags anywhere among the two positional arguments.
func (c *common) parse(args []string) error {
	// The flag package would print its error and the whole usage; the
	// caller prints one line instead (usage only for -h).
	out, usage := c.fs.Output(), c.fs.Usage
	c.fs.SetOutput(io.Discard)
	c.fs.Usage = func() {}
	defer func() { c.fs.SetOutput(out); c.fs.Usage = usage }()
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.fs.SetOutput(out)
				usage()
				return err
			}
			return flagErr(c.fs, err)
		}
		args = c.fs.Args()
		if len(args) == 0 {
			break
		}
		c.positional = append(c.positional, args[0])
		args = args[1:]
	}
	if len(c.positional) != 2 {
		return fmt.Errorf("want SOURCE and TARGET, got %d argument(s)", len(c.positional))
	}
	var err error
	if c.src, err = parseEndpoint(c.positional[0]); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if c.tgt, err = parseEndpoint(c.positional[1]); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if c.workers < 1 || c.workers > 64 {
		return fmt.Errorf("--workers %d: want 1 to 64", c.workers)
	}
	return nil
}

// flagErr turns the flag package's error into one line with a hint: the
// flag meant for an unknown one, or what a flag's value should look like.
func flagErr(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		best, bestD := "", 3
		fs.VisitAll(func(f *flag.Flag) {
			if d := editDistance(name, f.Name); d < bestD || (strings.HasPrefix(f.Name, name) && bestD > 1) {
				best, bestD = f.Name, min(d, 1)
			}
		})
		if best != "" {
			return fmt.Errorf("unknown flag --%s (did you mean --%s?); see mailferry help %s", name, best, fs.Name())
		}
		return fmt.Errorf("unknown flag --%s; see mailferry help %s", name, fs.Name())
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		// invalid value "10M" for flag -max-size: parse error
		if i := strings.Index(rest, " for flag -"); i >= 0 {
			name := rest[i+len(" for flag -"):]
			if j := strings.Index(name, ":"); j >= 0 {
				name = name[:j]
			}
			if f := fs.Lookup(name); f != nil {
				kind, help := flag.UnquoteUsage(f)
				return fmt.Errorf("--%s %s: %s (--%s %s: %s)", name, rest[:i], hintFor(f), name, kind, help)
			}
		}
	}
	return err
}

// hintFor says what a flag's value looks like.
func hintFor(f *flag.Flag) string {
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case int, int64:
			return "want a whole number (bytes without a unit, e.g. 10485760 for 10 MiB)"
		case float64:
			return "want a number"
		case time.Duration:
			return "want a duration such as 30s, 2m or 1h"
		case bool:
			return "want true or false"
		}
	}
	return "not a valid value"
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func (c *common) rules() (migrate.FolderRules, error) {
	r := migrate.FolderRules{ToFolder: c.toFolder, KeepAllMail: c.keepAllMail}
	for _, s := range c.include {
		re, err := regexp.Compile(s)
		if err != nil {
			return r, fmt.Errorf("--include %q: %w", s, err)
		}
		r.Include = append(r.Include, re)
	}
	for _, s := range c.exclude {
		re, err := regexp.Compile(s)
		if err != nil {
			return r, fmt.Errorf("--exclude %q: %w", s, err)
		}
		r.Exclude = append(r.Exclude, re)
	}
	m, err := migrate.ParseMap(c.maps)
	if err != nil {
		return r, err
	}
	r.Map = m
	return r, nil
}

// runFlags are the flags of migrate beyond the common ones, defined once:
// migrate, plan and batch (and every batch row) take them.
type runFlags struct {
	syncFlags, dryRun, fixLF, stripNUL, deleteSource bool
	maxSize, maxBW                                   int64
	maxRate                                          float64
	retries                                          int
}

func addRunFlags(fs *flag.FlagSet) *runFlags {
	r := new(runFlags)
	fs.BoolVar(&r.syncFlags, "sync-flags", false, "also bring flag changes of already copied messages to the target")
	fs.BoolVar(&r.dryRun, "dry-run", false, "list what would be copied, copy nothing")
	fs.Int64Var(&r.maxSize, "max-size", 0, "skip (and list) messages larger than `BYTES`")
	fs.Float64Var(&r.maxRate, "max-rate", 0, "store at most `MSGS` messages per second (0: no limit), for providers' limits")
	fs.Int64Var(&r.maxBW, "max-bandwidth", 0, "send at most `BYTES` per second to the target (0: no limit)")
	fs.BoolVar(&r.fixLF, "fix-bare-lf", false, "convert bare LF line ends to CRLF for every target (IMAP targets always get CRLF); reported")
	fs.BoolVar(&r.stripNUL, "strip-nul", false, "remove NUL bytes from messages (some servers refuse them); reported")
	fs.IntVar(&r.retries, "retries", 6, "retry a failed operation this many times on a new connection (jittered backoff)")
	fs.BoolVar(&r.deleteSource, "delete-source", false, "delete each source message once it is safely in the target (POP3 DELE at QUIT; IMAP UID EXPUNGE of those messages only)")
	return r
}

func (r *runFlags) options(workers int, rules migrate.FolderRules) migrate.Options {
	return migrate.Options{
		Workers: workers, Folders: rules, SyncFlags: r.syncFlags, MaxSize: r.maxSize, DryRun: r.dryRun,
		MaxRate: r.maxRate, MaxBandwidth: r.maxBW, FixBareLF: r.fixLF, StripNUL: r.stripNUL,
		Retries: r.retries, DeleteSource: r.deleteSource,
	}
}
