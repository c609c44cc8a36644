// Command mailferry moves and syncs e-mail: POP3, IMAP or Maildir in,
// IMAP or Maildir out, exactly once, resumable after any interruption.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/mailferry/mailferry/checkpoint"
	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/migrate"
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
	// The soft heap limit is the memory budget (memory.go; migrate
	// --memory), not a hard cap.
	setMemoryLimit(defaultMemory())
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

// version is set by a release build (-ldflags "-X main.version=v1.2.3");
// otherwise buildVersion asks the build info.
var version = ""

// buildVersion is the module version `go install ...@v1.2.3` recorded, or
// the VCS revision of a build from a checkout ("devel" plus the commit).
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	switch {
	case rev == "":
		return "devel"
	case dirty:
		return "devel-" + rev + "-dirty"
	}
	return "devel-" + rev
}

// isHelp reports whether arg asks for help (so that "help help" does not
// ask itself for help forever).
func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "--help", "-help":
		return true
	}
	return false
}

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

// setupLog builds the logger: text on stderr (warnings, or info with -v),
// and JSON lines in --log FILE. Secrets are redacted from both.
func (c *common) setupLog(stderr io.Writer) error {
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelInfo
	}
	if c.quiet {
		level = slog.LevelError
	}
	handlers := []slog.Handler{slog.NewTextHandler(&redactWriter{w: stderr, secrets: c.secrets}, &slog.HandlerOptions{Level: level})}
	c.closeLog = func() {}
	if c.logFile != "" {
		f, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("open --log file: %w", err)
		}
		bw := bufio.NewWriter(f)
		handlers = append(handlers, slog.NewJSONHandler(&redactWriter{w: bw, secrets: c.secrets}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.closeLog = func() { bw.Flush(); f.Close() }
	}
	c.logger = slog.New(slog.NewMultiHandler(handlers...))
	return nil
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

const usageMigrate = `Usage: mailferry migrate SOURCE TARGET [flags]

Copies every message of SOURCE that is not yet in TARGET, with its flags,
internal date and folder. A checkpoint journal (--state) records each
message before and after it is stored, so that an interrupted run (Ctrl-C,
kill -9, a lost connection) resumes where it stopped without duplicating or
losing anything; a later run copies only new messages.

Examples:
  # a POP3 account into IMAP
  MAILFERRY_SOURCE_PASSWORD=... MAILFERRY_TARGET_PASSWORD=... \
    mailferry migrate pop3s://bob@pop.old.example imaps://bob@imap.new.example
  # a local backup of an IMAP account
  mailferry migrate imaps://bob@imap.example maildir:$HOME/Backup/Mail
  # restore the backup into a new account
  mailferry migrate maildir:$HOME/Backup/Mail imaps://bob@imap.new.example
`

func cmdMigrate(args []string, stdout, stderr io.Writer) int {
	c := newCommon("migrate", usageMigrate, stderr)
	syncFlags := c.fs.Bool("sync-flags", false, "also bring flag changes of already copied messages to the target")
	dryRun := c.fs.Bool("dry-run", false, "list what would be copied, copy nothing")
	maxSize := c.fs.Int64("max-size", 0, "skip (and list) messages larger than `BYTES`")
	maxRate := c.fs.Float64("max-rate", 0, "store at most `MSGS` messages per second (0: no limit), for providers' limits")
	maxBW := c.fs.Int64("max-bandwidth", 0, "send at most `BYTES` per second to the target (0: no limit)")
	fixLF := c.fs.Bool("fix-bare-lf", false, "convert bare LF line ends to CRLF for every target (IMAP targets always get CRLF); reported")
	stripNUL := c.fs.Bool("strip-nul", false, "remove NUL bytes from messages (some servers refuse them); reported")
	retries := c.fs.Int("retries", 6, "retry a failed operation this many times on a new connection (jittered backoff)")
	deleteSource := c.fs.Bool("delete-source", false, "delete each source message once it is safely in the target (POP3 DELE at QUIT; IMAP UID EXPUNGE of those messages only)")
	memFlag := c.fs.String("memory", "", "memory budget `SIZE` (64M, 1G) the copy sizes its windows by; the Go soft heap limit unless GOMEMLIMIT is set (default: 3/4 of the cgroup limit, at most 256M)")
	if err := c.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "mailferry migrate: %v\n", err)
		return exitUsage
	}
	memory, err := parseMemory(*memFlag)
	if err != nil {
		fmt.Fprintf(stderr, "mailferry migrate: %v\n", err)
		return exitUsage
	}
	setMemoryLimit(memory)
	if sameAccount(context.Background(), c.src, c.tgt) {
		fmt.Fprintf(stderr, "mailferry migrate: source and target are the same account (%s and %s): every message would be copied into itself\n", c.src, c.tgt)
		return exitUsage
	}
	if err := checkWritable(c.report); err != nil {
		fmt.Fprintf(stderr, "mailferry migrate: --report: %v\n", err)
		return exitUsage
	}
	rules, err := c.rules()
	if err != nil {
		fmt.Fprintf(stderr, "mailferry migrate: %v\n", err)
		return exitUsage
	}
	if err := c.setupLog(stderr); err != nil {
		fmt.Fprintf(stderr, "mailferry migrate: %v\n", err)
		return exitUsage
	}
	defer c.closeLog()
	if err := c.passwords(stderr); err != nil {
		fmt.Fprintf(stderr, "mailferry migrate: %v\n", err)
		return exitUsage
	}
	co := connOptions{caFile: c.caFile, timeout: c.timeout, folder: "INBOX", job: tmpTag(c.state, c.src, c.tgt, rules.ToFolder)}
	srcOpen, err := c.src.sourceOpener(co)
	if err == nil {
		_, err = c.tgt.targetOpener(co)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mailferry migrate: %v\n", c.redact(err.Error()))
		return exitUsage
	}
	tgtOpen, _ := c.tgt.targetOpener(co)

	journal, err := openJournal(c.state, c.src.String(), c.tgt.String(), rules.ToFolder)
	if err != nil {
		fmt.Fprintf(stderr, "mailferry migrate: %v\n", err)
		return exitUsage
	}
	defer journal.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stats := new(migrate.Stats)
	if testHookStats != nil {
		testHookStats(stats)
	}
	prog := startProgress(ctx, stats, progressOptions{noBar: c.noProgress || c.quiet, interval: c.stats, logger: c.logger, stderr: stderr, verb: "copying"})
	started := time.Now()
	sum, err := migrate.Run(ctx, srcOpen, tgtOpen, journal, migrate.Options{
		Workers: c.workers, Folders: rules, SyncFlags: *syncFlags, MaxSize: *maxSize, DryRun: *dryRun,
		Stats: stats, Logger: c.logger, MaxRate: *maxRate, MaxBandwidth: *maxBW, FixBareLF: *fixLF, StripNUL: *stripNUL,
		Retries: *retries, DeleteSource: *deleteSource, Memory: memory,
	})
	prog.stop()
	if jerr := journal.Close(); jerr != nil && err == nil {
		err = jerr
	}
	if sum != nil {
		if *dryRun {
			printPlanFull(stdout, sum, gatherPlan(ctx, sum, srcOpen, tgtOpen, c.workers), c.src, c.tgt)
		} else {
			printSummary(stdout, sum, c.src, c.tgt, err)
		}
		if c.report != "" {
			rep := runReport{Version: buildVersion(), Source: c.src.String(), Target: c.tgt.String(), Started: started,
				Status: "ok", ExitCode: exitCodeOf(err, sum.Failed > 0), Summary: sum}
			switch {
			case sum.Interrupted:
				rep.Status = "interrupted"
			case err != nil:
				rep.Status, rep.Error = "error", c.redact(err.Error())
			case sum.Failed > 0:
				rep.Status = "failed"
			}
			if werr := writeJSON(c.report, rep); werr != nil {
				fmt.Fprintf(stderr, "mailferry migrate: write the report: %v\n", werr)
				if err == nil {
					// The copy is done, but what was asked for is not.
					return exitSomeFailed
				}
			}
		}
	}
	return finish(stderr, "migrate", err, sum != nil && sum.Failed > 0, c)
}

// runReport is migrate --report: which run it was, how it ended, and the
// summary's fields beside them.
type runReport struct {
	Version  string    `json:"version"`
	Source   string    `json:"source"`
	Target   string    `json:"target"`
	Started  time.Time `json:"started"`
	Status   string    `json:"status"` // ok, failed (some messages), interrupted, error
	ExitCode int       `json:"exit_code"`
	Error    string    `json:"error,omitempty"`
	*migrate.Summary
}

// exitCodeOf is the exit code finish picks, without printing anything.
func exitCodeOf(err error, someFailed bool) int {
	switch {
	case err == nil && someFailed:
		return exitSomeFailed
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return failure.ExitCode(err)
}

// finish prints the run-stopping error as one sentence and picks the exit code.
func finish(stderr io.Writer, cmd string, err error, someFailed bool, c *common) int {
	switch {
	case err == nil && someFailed:
		return exitSomeFailed
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "mailferry %s: interrupted; run the same command again to resume\n", cmd)
		return exitInterrupted
	}
	msg := c.redact(err.Error())
	code := failure.ExitCode(err)
	fmt.Fprintf(stderr, "mailferry %s: %s\n", cmd, msg)
	return code
}

func openJournal(stateDir string, parts ...string) (*checkpoint.Journal, error) {
	if stateDir == "" {
		stateDir = checkpoint.DefaultDir()
	}
	id := checkpoint.JobID(parts...)
	dir := filepath.Join(stateDir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the state directory: %w", err)
	}
	j, err := checkpoint.Open(filepath.Join(dir, "journal"))
	if err != nil {
		return nil, err
	}
	// A note for humans browsing the state directory (no secrets).
	_ = os.WriteFile(filepath.Join(dir, "job"), []byte(strings.Join(parts, "\n")+"\n"), 0o600)
	return j, nil
}

// tmpTag names this job's temporary files in a Maildir target (so that a
// run removes what a killed run of the same job left, and nothing else):
// the job and its state directory, whose lock this process holds.
func tmpTag(state string, src, tgt fmt.Stringer, toFolder string) string {
	if state == "" {
		state = checkpoint.DefaultDir()
	}
	if abs, err := filepath.Abs(state); err == nil {
		state = abs
	}
	return checkpoint.JobID(state, src.String(), tgt.String(), toFolder)
}

// checkWritable finds out before a run whether the report file can be
// written (its directory exists and takes a new file), so that a long copy
// does not end in an error about it.
func checkWritable(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".mailferry-report-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return os.Rename(tmp, path)
}

// writeReport writes a report file whole or not at all (temporary file,
// then rename).
func writeReport(path string, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write report: %w", err)
	}
	return os.Rename(tmp, path)
}

const usageVerify = `Usage: mailferry verify SOURCE TARGET [flags]

Reads both sides (the target as it is, never the journal) and checks, folder
by folder, that every source message is in the target exactly once (matched
by Message-ID and size; --deep by SHA-256 of every body), with its flags and
its internal date. Each problem is named by folder, source ID (IMAP UID,
POP3 UIDL, Maildir file), target ID and Message-ID:

  missing     a source message with no copy in the target
  duplicated  more copies in the target than in the source (all listed)
  flags       a copy whose flags differ (compared as sets, only the flags a
              target can hold: \Seen \Answered \Flagged \Draft \Deleted and
              keywords; a POP3 source has none, so nothing to compare)
  date        a copy whose internal date is more than a second off (a POP3
              message's date is derived as migrate derives it: the newest
              Received: header, else Date:)
  extra       a target message with no source message (not a failure)

The terminal shows the first 20 problems of each kind; --report FILE.json
lists them all. Exit code 0 when every source message is in the target
exactly once with its flags and date, 1 otherwise (--ignore-flags,
--ignore-keywords and --ignore-dates leave those out of the check).
`

func cmdVerify(args []string, stdout, stderr io.Writer) int {
	c := newCommon("verify", usageVerify, stderr)
	deep := c.fs.Bool("deep", false, "compare the SHA-256 of every message body")
	ignoreFlags := c.fs.Bool("ignore-flags", false, "do not compare flags")
	ignoreKeywords := c.fs.Bool("ignore-keywords", false, "compare the system flags only (a target that refuses keywords)")
	ignoreDates := c.fs.Bool("ignore-dates", false, "do not compare internal dates")
	if err := c.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "mailferry verify: %v\n", err)
		return exitUsage
	}
	rules, err := c.rules()
	if err == nil {
		err = c.setupLog(stderr)
	}
	if err == nil {
		defer c.closeLog()
		err = c.passwords(stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mailferry verify: %v\n", err)
		return exitUsage
	}
	co := connOptions{caFile: c.caFile, timeout: c.timeout, folder: "INBOX"}
	srcOpen, err := c.src.sourceOpener(co)
	var tgtRead = srcOpen
	if err == nil {
		tgtRead, err = c.tgt.sourceOpener(co)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mailferry verify: %v\n", c.redact(err.Error()))
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stats := new(migrate.Stats)
	prog := startProgress(ctx, stats, progressOptions{noBar: c.noProgress || c.quiet, interval: c.stats, logger: c.logger, stderr: stderr, verb: "verifying"})
	rep, err := migrate.Verify(ctx, srcOpen, tgtRead, migrate.VerifyOptions{
		Folders: rules, Deep: *deep, CRLF: c.tgt.scheme == "imap" || c.tgt.scheme == "imaps", Logger: c.logger, Stats: stats,
		IgnoreFlags: *ignoreFlags, IgnoreKeywords: *ignoreKeywords, IgnoreDates: *ignoreDates,
	})
	prog.stop()
	if rep != nil {
		printVerify(stdout, rep, c.src, c.tgt)
		if c.report != "" {
			if werr := writeReport(c.report, rep.WriteJSON); werr != nil {
				fmt.Fprintf(stderr, "mailferry verify: %v\n", werr)
			}
		}
	}
	return finish(stderr, "verify", err, rep != nil && !rep.OK(), c)
}
