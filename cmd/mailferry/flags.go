package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// common holds the flags migrate, verify, plan and every batch row share.
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
	srcPassCmd       string
	tgtPassCmd       string
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
	mbox             mboxFlags
	positional       []string
	logger           *slog.Logger
	closeLog         func()
	secrets          *secretList
	prompted         map[string]bool // sides whose password was typed at the prompt
	// hidden flags are accepted but not listed in the help (plan takes
	// migrate's --dry-run and --delete-source so that the same command
	// line works, but ignores them).
	hidden map[string]bool
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// newCommon defines the shared flags; the help (-h, --help) goes to out.
func newCommon(name, usage string, out io.Writer) *common {
	c := &common{fs: flag.NewFlagSet(name, flag.ContinueOnError), secrets: new(secretList), hidden: map[string]bool{}}
	fs := c.fs
	fs.StringVar(&c.state, "state", "", "keep the checkpoint journals in `DIR` (default $XDG_STATE_HOME/mailferry)")
	fs.IntVar(&c.workers, "workers", 4, "open `N` connections to each side (1 to 64)")
	fs.StringVar(&c.toFolder, "to-folder", "", "target `FOLDER` for the source's INBOX (a POP3 mailbox); default INBOX")
	fs.Var(&c.include, "include", "take only the source folders matching `REGEX` (repeatable)")
	fs.Var(&c.exclude, "exclude", "leave out the source folders matching `REGEX` (repeatable)")
	fs.Var(&c.maps, "map", "`OLD=NEW`: the source folder OLD (and its sub-folders) is NEW in the target (repeatable)")
	fs.BoolVar(&c.keepAllMail, "keep-all-mail", false, "also take Gmail's [Gmail]/All Mail and Important (left out by default: every message is in a label too)")
	fs.StringVar(&c.caFile, "ca-file", "", "also trust the CA certificate(s) in `PEM` file (self-signed servers)")
	fs.StringVar(&c.srcPassFile, "source-password-file", "", "read the source password from `FILE`")
	fs.StringVar(&c.tgtPassFile, "target-password-file", "", "read the target password from `FILE`")
	fs.StringVar(&c.srcPassCmd, "source-password-command", "", "run `CMD` (sh -c) for the source password; its output less one trailing newline")
	fs.StringVar(&c.tgtPassCmd, "target-password-command", "", "run `CMD` (sh -c) for the target password")
	fs.StringVar(&c.srcTokenCmd, "source-oauth2-token-command", "", "log in to the source with OAuth2 (XOAUTH2, OAUTHBEARER): `CMD` prints an access token")
	fs.StringVar(&c.tgtTokenCmd, "target-oauth2-token-command", "", "log in to the target with OAuth2: `CMD` prints an access token")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "give up a network operation after `DURATION` (30s, 2m)")
	fs.BoolVar(&c.noProgress, "no-progress", false, "no progress bar, even on a terminal")
	fs.DurationVar(&c.stats, "stats", 30*time.Second, "off a terminal, log the progress every `DURATION` (0: never)")
	fs.StringVar(&c.report, "report", "", "write a JSON report of the run to `FILE`")
	fs.StringVar(&c.logFile, "log", "", "append a complete record of the run (JSON lines) to `FILE`")
	addVerbosity(fs, &c.verbose, &c.quiet)
	c.mbox.register(fs)
	fs.Usage = func() { printUsage(out, usage, fs, c.hidden) }
	return c
}

// addVerbosity defines -v/--verbose and -q/--quiet.
func addVerbosity(fs *flag.FlagSet, verbose, quiet *bool) {
	fs.BoolVar(verbose, "verbose", false, "also print what is done (folders, connections, retries) on stderr")
	fs.BoolVar(verbose, "v", false, "")
	fs.BoolVar(quiet, "quiet", false, "no progress and no warnings: print only errors and the summary")
	fs.BoolVar(quiet, "q", false, "")
}

// parseArgs parses fs's flags anywhere among the positional arguments (as
// GNU programs do; "--" ends the flags) and returns the positional ones.
// A flag error is one line with a hint; -h and --help print the usage and
// return flag.ErrHelp.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	// The flag package would print its error and the whole usage; the
	// caller prints one line instead (usage only for -h).
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	defer func() { fs.SetOutput(out); fs.Usage = usage }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, err
			}
			return nil, flagErr(fs, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// flag stops at "--" too: what follows is positional.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		args = rest
		pos = append(pos, args[0])
		args = args[1:]
	}
	return pos, nil
}

// parse parses flags anywhere among the two positional arguments.
func (c *common) parse(args []string) error {
	pos, err := parseArgs(c.fs, args)
	if err != nil {
		return err
	}
	c.positional = pos
	if len(c.positional) != 2 {
		return fmt.Errorf("want SOURCE and TARGET, got %d argument(s); usage: mailferry %s SOURCE TARGET [flags]", len(c.positional), c.fs.Name())
	}
	if c.src, err = parseEndpoint(c.positional[0]); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	c.src.setMbox(c.mbox, c.toFolder)
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
				return fmt.Errorf("--%s %s: %s; see mailferry help %s", name, rest[:i], hintFor(f), fs.Name())
			}
		}
	}
	return err
}

// hintFor says what a flag's value looks like.
func hintFor(f *flag.Flag) string {
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case size:
			return "want a size such as 512K, 10M or 1G (or bytes)"
		case int, int64:
			return "want a whole number"
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
	memory                                           int64 // --memory; 0: the default
	probeTarget                                      bool  // plan --probe-target
}

func addRunFlags(fs *flag.FlagSet) *runFlags {
	r := new(runFlags)
	fs.BoolVar(&r.syncFlags, "sync-flags", false, "also bring flag changes of already copied messages to the target")
	fs.BoolVar(&r.dryRun, "dry-run", false, "list what would be copied, copy nothing")
	fs.Var((*size)(&r.maxSize), "max-size", "skip (and list) messages larger than `SIZE` (10M, 1G)")
	fs.Float64Var(&r.maxRate, "max-rate", 0, "store at most `N` messages per second (0: no limit), for providers' limits")
	fs.Var((*size)(&r.maxBW), "max-bandwidth", "send at most `SIZE` per second to the target (512K, 2M; 0: no limit)")
	fs.BoolVar(&r.fixLF, "fix-bare-lf", false, "convert bare LF line ends to CRLF for every target (IMAP targets always get CRLF); reported")
	fs.BoolVar(&r.stripNUL, "strip-nul", false, "remove NUL bytes from messages (some servers refuse them); reported")
	fs.IntVar(&r.retries, "retries", 6, "retry a failed operation `N` times on a new connection (jittered backoff)")
	fs.BoolVar(&r.deleteSource, "delete-source", false, "delete each source message once it is safely in the target (POP3 DELE at QUIT; IMAP UID EXPUNGE of those messages only)")
	fs.Func("memory", "memory budget `SIZE` (64M, 1G) the copy sizes its windows by; the most Go's soft heap limit may be, unless GOMEMLIMIT is set (default: 3/4 of the cgroup limit, at most 256M)", func(s string) (err error) {
		r.memory, err = parseMemory(s)
		return err
	})
	return r
}

func (r *runFlags) options(workers int, rules migrate.FolderRules) migrate.Options {
	return migrate.Options{
		Workers: workers, Folders: rules, SyncFlags: r.syncFlags, MaxSize: r.maxSize, DryRun: r.dryRun,
		MaxRate: r.maxRate, MaxBandwidth: r.maxBW, FixBareLF: r.fixLF, StripNUL: r.stripNUL,
		Retries: r.retries, DeleteSource: r.deleteSource, Memory: r.memory,
	}
}

// size is a flag value in bytes, given with an optional binary suffix:
// 512K, 10M, 1G, 2T (KiB, MiB, ... and "10MB", "10MiB" are the same).
type size int64

func (s *size) String() string {
	if s == nil {
		return "0"
	}
	return strconv.FormatInt(int64(*s), 10)
}

func (s *size) Get() any { return *s }

func (s *size) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = size(n)
	return nil
}

// parseSize reads "10M" as 10 MiB; a bare number is bytes.
func parseSize(v string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(v))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	if t == "" {
		return 0, errors.New("empty size")
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil && n >= 0 && n <= (1<<62)/mult {
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("bad size %q", v)
	}
	return int64(f * float64(mult)), nil
}
