package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mailferry/mailferry/checkpoint"
	"github.com/mailferry/mailferry/cmd/mailferry/internal/batch"
	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/migrate"
)

const usageBatch = `Usage: mailferry batch FILE.csv [flags]

Migrates every account listed in FILE.csv, --accounts at a time, each with
its own checkpoint journal (in --state, the same one "mailferry migrate"
uses for that source and target) and, with --log-dir, its own log file.
Re-running the same batch resumes every account where it stopped; finished
accounts copy nothing. A bad row is reported with its line number and does
not stop the others. Exit code 0 when every account is OK, 1 when any
failed, 2 for a bad command line or file, 130 when interrupted.

FILE.csv has a header row; columns (any order, the last three optional):
  source,target,source_password,target_password,flags
  pop3s://bob@pop.old.example,imaps://bob@imap.new.example,env:BOB_OLD,file:/run/secrets/bob,--to-folder "Old mail"
A password column says where the password comes from: env:NAME, file:PATH
(its first line) or cmd:COMMAND (sh -c; the first line it prints). flags
are migrate flags for that row, split like a shell does.

Flags given to batch that migrate also knows (--state, --ca-file,
--timeout, --delete-source, --max-size, …) apply to every row; a row's own
flags come after them and win.

Examples:
  mailferry batch accounts.csv --accounts 8 --workers 32 --report batch.json
  # share 2 of 3 (one per machine or Kubernetes pod), logs per account
  mailferry batch accounts.csv --shard 2/3 --state /state/journals --log-dir /state/logs
`

// batchPassThrough are the batch flags handed to every row's migrate.
var batchPassThrough = map[string]bool{
	"state": true, "ca-file": true, "timeout": true, "sync-flags": true, "dry-run": true, "max-size": true,
	"max-rate": true, "max-bandwidth": true, "fix-bare-lf": true, "strip-nul": true, "retries": true,
	"delete-source": true, "keep-all-mail": true, "v": true, "q": true, "verbose": true, "quiet": true,
}

type batchRun struct {
	base    []string // flags for every row, before its own
	logDir  string
	stderr  io.Writer // shared, line-locked
	workers int       // per account
}

// lockedWriter serializes whole writes of several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prefixWriter puts "line N: " before every write (slog writes one record
// per call).
type prefixWriter struct {
	prefix string
	w      io.Writer
}

func (p prefixWriter) Write(b []byte) (int, error) {
	_, err := p.w.Write(append([]byte(p.prefix), b...))
	return len(b), err
}

// batchFlags are batch's flags: its own, and those of migrate it hands to
// every row.
type batchFlags struct {
	fs                             *flag.FlagSet
	accounts, workers              int
	shard, logDir, logFile, report string
	noProgress, quiet, verbose     bool
	stats                          time.Duration
}

func newBatchFlags(out io.Writer) *batchFlags {
	b := &batchFlags{fs: flag.NewFlagSet("batch", flag.ContinueOnError)}
	fs := b.fs
	fs.IntVar(&b.accounts, "accounts", 4, "migrate `K` accounts at once")
	fs.IntVar(&b.workers, "workers", 8, "open `N` connections per side for the whole batch, split across the running accounts")
	fs.StringVar(&b.shard, "shard", "", "run only the stable share `I/N` of the rows (hash of source and target)")
	fs.StringVar(&b.logDir, "log-dir", "", "write one log file per account (JSON lines) into `DIR`")
	fs.StringVar(&b.logFile, "log", "", "append the batch's own log (JSON lines) to `FILE`")
	fs.StringVar(&b.report, "report", "", "write a JSON report of every account to `FILE`")
	fs.BoolVar(&b.noProgress, "no-progress", false, "no progress bar, even on a terminal")
	fs.DurationVar(&b.stats, "stats", 5*time.Second, "off a terminal, log the progress every `DURATION` (0: never)")
	fs.String("state", "", "keep the checkpoint journals in `DIR` (default $XDG_STATE_HOME/mailferry)")
	fs.String("ca-file", "", "also trust the CA certificate(s) in `PEM` file (self-signed servers)")
	fs.Duration("timeout", 60*time.Second, "give up a network operation after `DURATION` (30s, 2m)")
	fs.Bool("keep-all-mail", false, "also take Gmail's [Gmail]/All Mail and Important")
	addVerbosity(fs, &b.verbose, &b.quiet)
	addRunFlags(fs)
	fs.Usage = func() { printUsage(out, usageBatch, fs, nil) }
	return b
}

func cmdBatch(args []string, stdout, stderr io.Writer) int {
	b := newBatchFlags(stdout)
	fs := b.fs
	accounts, workers, shardFlag, logDir, logFile := &b.accounts, &b.workers, &b.shard, &b.logDir, &b.logFile
	report, noProgress, stats, quiet := &b.report, &b.noProgress, &b.stats, &b.quiet
	pos, err := parseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "mailferry batch: %v\n", err)
		return exitUsage
	}
	usageErr := func(err error) int {
		fmt.Fprintf(stderr, "mailferry batch: %v\n", err)
		return exitUsage
	}
	if len(pos) != 1 {
		return usageErr(fmt.Errorf("want one FILE.csv, got %d argument(s)", len(pos)))
	}
	if *accounts < 1 || *workers < 1 {
		return usageErr(errors.New("--accounts and --workers must be at least 1"))
	}
	var shard batch.Shard
	if *shardFlag != "" {
		if shard, err = batch.ParseShard(*shardFlag); err != nil {
			return usageErr(err)
		}
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return usageErr(err)
	}
	rows, bad, err := batch.Parse(f)
	f.Close()
	if err != nil {
		return usageErr(fmt.Errorf("%s: %w", pos[0], err))
	}
	if *logDir != "" {
		if err := os.MkdirAll(*logDir, 0o700); err != nil {
			return usageErr(fmt.Errorf("create --log-dir: %w", err))
		}
	}

	// The batch's own log: text on stderr, JSON lines in --log.
	errw := &lockedWriter{w: stderr}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelError
	}
	handlers := []slog.Handler{slog.NewTextHandler(errw, &slog.HandlerOptions{Level: level})}
	if *logFile != "" {
		lf, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return usageErr(fmt.Errorf("open --log file: %w", err))
		}
		defer lf.Close()
		handlers = append(handlers, slog.NewJSONHandler(&lockedWriter{w: lf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	logger := slog.New(slog.NewMultiHandler(handlers...))
	// The lower layers that log through slog's default logger reach the
	// batch's log (the rows' own loggers are per account).
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(logger)

	rep := &batch.Report{File: pos[0], Shard: shard.String(), Started: time.Now()}
	for _, b := range bad {
		if !shard.HasError(b) {
			continue
		}
		logger.Error("bad row, skipped", "line", b.Line, "err", b.Err.Error())
		rep.Accounts = append(rep.Accounts, batch.Result{Line: b.Line, Source: b.Source, Target: b.Target,
			Status: batch.StatusInvalid, Reason: b.Err.Error(), ExitCode: exitUsage})
	}
	var mine []batch.Row
	for _, r := range rows {
		if shard.Has(r.Source, r.Target) {
			mine = append(mine, r)
		}
	}

	br := &batchRun{logDir: *logDir, stderr: errw, workers: max(1, *workers / *accounts)}
	fs.Visit(func(f *flag.Flag) {
		if batchPassThrough[f.Name] {
			br.base = append(br.base, "--"+f.Name+"="+f.Value.String())
		}
	})
	ctx, stop := signalContext()
	defer stop()
	runner := &batch.Runner{Accounts: *accounts, Run: br.account}
	logger.Info("batch starting", "version", buildVersion(), "file", pos[0], "shard", shard.String(), "accounts", len(mine),
		"at_once", *accounts, "workers_per_account", br.workers, "bad_rows", len(rep.Accounts), slog.Group("options", givenOptions(fs)...))
	prog := startBatchProgress(runner, !*noProgress && !*quiet && isTerminal(stderr), *stats, logger, errw)
	results := runner.RunAll(ctx, mine)
	prog()
	rep.Accounts = append(rep.Accounts, results...)
	sortResults(rep.Accounts)
	rep.Elapsed = time.Since(rep.Started)
	rep.Sum()
	for _, a := range results {
		if a.Status != batch.StatusOK {
			logger.Warn("account not complete", "line", a.Line, "source", a.Source, "target", a.Target, "status", a.Status, "reason", a.Reason)
		}
	}
	rep.Table(stdout)
	code := rep.ExitCode()
	if code == exitInterrupted {
		code = interruptCode()
	}
	rep.Version, rep.Ended, rep.Exit = buildVersion(), time.Now(), code
	rep.Status = map[int]string{exitOK: "ok", exitSomeFailed: "failed"}[code]
	if rep.Status == "" {
		rep.Status = "interrupted"
	}
	if *report != "" {
		if err := writeJSON(*report, rep); err != nil {
			fmt.Fprintf(stderr, "mailferry batch: %v\n", err)
		}
	}
	logger.Info("batch finished", "status", rep.Status, "exit_code", code, "elapsed", rep.Elapsed.Round(time.Millisecond).String(),
		"accounts", rep.Totals.Accounts, "ok", rep.Totals.OK, "failed", rep.Totals.Failed, "invalid", rep.Totals.Invalid,
		"interrupted", rep.Totals.Interrupted, "copied", rep.Totals.Copied, "failed_messages", rep.Totals.FailedMsgs)
	if code == exitInterrupted || code == exitTerminated {
		fmt.Fprintf(stderr, "mailferry batch: %s; run the same command again to resume\n", interruptWord())
	}
	return code
}

func sortResults(r []batch.Result) {
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && r[j].Line < r[j-1].Line; j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
}

// account runs one row as "mailferry migrate" would, in process.
func (br *batchRun) account(ctx context.Context, row batch.Row, st *migrate.Stats) (res batch.Result) {
	res = batch.Result{Line: row.Line, Source: row.Source, Target: row.Target, Started: time.Now()}
	c := newCommon("batch", usageMigrate, io.Discard)
	rf := addRunFlags(c.fs)
	invalid := func(err error) batch.Result {
		res.Status, res.Reason, res.ExitCode = batch.StatusInvalid, c.redact(err.Error()), exitUsage
		return res
	}
	args := append([]string{"--workers=" + fmt.Sprint(br.workers)}, br.base...)
	args = append(append(args, row.Flags...), row.Source, row.Target)
	if err := c.parse(args); err != nil {
		return invalid(err)
	}
	res.Source, res.Target = c.src.String(), c.tgt.String()
	rules, err := c.rules()
	if err != nil {
		return invalid(err)
	}
	if err := br.secrets(ctx, c, row); err != nil {
		return invalid(err)
	}
	if br.logDir != "" && c.logFile == "" {
		c.logFile = filepath.Join(br.logDir, checkpoint.JobID(c.src.String(), c.tgt.String(), rules.ToFolder)+".log")
	}
	res.Log = c.logFile
	if err := c.setupLog(prefixWriter{prefix: fmt.Sprintf("line %d: ", row.Line), w: br.stderr}); err != nil {
		return invalid(err)
	}
	defer c.closeLog()
	co := connOptions{log: c.logger, caFile: c.caFile, timeout: c.timeout, folder: "INBOX", job: tmpTag(c.state, c.src, c.tgt, rules.ToFolder)}
	srcOpen, err := c.src.sourceOpener(co)
	if err != nil {
		return invalid(err)
	}
	tgtOpen, err := c.tgt.targetOpener(co)
	if err != nil {
		return invalid(err)
	}
	if rf.dryRun {
		var cleanup func()
		if tgtOpen, cleanup, err = dryTargetOpener(c.tgt, co); err != nil {
			return invalid(err)
		}
		defer cleanup()
	}
	journal, release, err := openJournal(c.state, rf.dryRun, c.src.String(), c.tgt.String(), rules.ToFolder)
	if err != nil {
		res.Status, res.Reason, res.ExitCode = batch.StatusFailed, c.redact(err.Error()), exitUsage
		return res
	}
	failed := true
	defer func() { release(failed) }()
	o := rf.options(c.workers, rules)
	o.Stats, o.Logger = st, c.logger
	c.logger.Info("account starting", "line", row.Line, "version", buildVersion(), "source", c.src.String(), "target", c.tgt.String(),
		"workers", c.workers, slog.Group("options", givenOptions(c.fs)...))
	sum, err := migrate.Run(ctx, srcOpen, tgtOpen, journal, o)
	failed = err != nil
	if jerr := journal.Close(); jerr != nil && err == nil {
		err = jerr
	}
	res.Summary = sum
	res.Elapsed = time.Since(res.Started)
	logFolders(c.logger, sum)
	switch {
	case err != nil && ctx.Err() != nil:
		res.Status, res.Reason, res.ExitCode = batch.StatusInterrupted, "interrupted; run the batch again to resume", exitInterrupted
	case err != nil:
		res.Status, res.Reason, res.ExitCode = batch.StatusFailed, c.redact(err.Error()), failure.ExitCode(err)
	case sum != nil && sum.Failed > 0:
		reason := fmt.Sprintf("%d message(s) failed", sum.Failed)
		if len(sum.Failures) > 0 {
			reason += ", first: " + sum.Failures[0].Reason
		}
		res.Status, res.Reason, res.ExitCode = batch.StatusFailed, c.redact(reason), exitSomeFailed
	default:
		res.Status, res.ExitCode = batch.StatusOK, exitOK
	}
	if sum != nil && c.report != "" {
		rep := runReport{Version: buildVersion(), Source: c.src.String(), Target: c.tgt.String(), Started: res.Started,
			Ended: time.Now(), Status: res.Status, ExitCode: res.ExitCode, Error: res.Reason, Summary: sum}
		if werr := writeJSON(c.report, rep); werr != nil {
			c.logger.Error("write the report", "err", werr)
		}
	}
	c.logger.Info("account finished", append([]any{"line", row.Line, "status", res.Status, "exit_code", res.ExitCode, "reason", res.Reason},
		summaryAttrs(sum)...)...)
	return res
}

// secrets fills in the row's passwords (or OAuth2 token commands) and
// registers them for redaction.
func (br *batchRun) secrets(ctx context.Context, c *common, row batch.Row) error {
	for _, side := range []struct {
		e        *endpoint
		spec     batch.Secret
		file     string
		tokenCmd string
		name     string
	}{
		{c.src, row.SourcePassword, c.srcPassFile, c.srcTokenCmd, "source"},
		{c.tgt, row.TargetPassword, c.tgtPassFile, c.tgtTokenCmd, "target"},
	} {
		if side.e.local() {
			continue
		}
		switch {
		case side.tokenCmd != "":
			side.e.token = tokenCommand(side.tokenCmd, side.name, c.secrets)
			continue
		case side.file != "":
			b, err := os.ReadFile(side.file)
			if err != nil {
				return fmt.Errorf("read the %s password file: %w", side.name, err)
			}
			side.e.pass = strings.TrimRight(string(b), "\r\n")
		case side.spec.IsZero():
			return fmt.Errorf("no password for the %s %s: fill in the %s_password column (env:NAME, file:PATH or cmd:COMMAND)", side.name, side.e, side.name)
		default:
			p, err := side.spec.Resolve(ctx)
			if err != nil {
				return fmt.Errorf("%s password: %w", side.name, err)
			}
			side.e.pass = p
		}
		if side.e.pass == "" {
			return fmt.Errorf("the %s password is empty", side.name)
		}
		c.secrets.add(side.e.pass)
	}
	return nil
}
