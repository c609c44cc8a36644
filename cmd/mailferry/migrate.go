package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailferry/mailferry/checkpoint"
	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/migrate"
)

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
  # leave out big messages and Spam, password from a password manager
  mailferry migrate --max-size 25M --exclude '^Spam$' \
    --source-password-command 'pass show mail/old' \
    imaps://bob@imap.old.example imaps://bob@imap.new.example
`

// newMigrateFlags defines migrate's flags: the shared ones and the run flags.
func newMigrateFlags(out io.Writer) (*common, *runFlags) {
	c := newCommon("migrate", usageMigrate, out)
	return c, addRunFlags(c.fs)
}

func cmdMigrate(args []string, stdout, stderr io.Writer) int {
	c, rf := newMigrateFlags(stdout)
	if err := c.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "mailferry migrate: %v\n", err)
		return exitUsage
	}
	if rf.memory > 0 {
		setMemoryLimit(rf.memory)
	}
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
	tw := &termOut{w: stderr} // log lines and the progress line share the terminal
	if err := c.setupLog(tw); err != nil {
		fmt.Fprintf(stderr, "mailferry migrate: %v\n", err)
		return exitUsage
	}
	defer c.closeLog()
	if err := c.passwords(stderr); err != nil {
		fmt.Fprintf(stderr, "mailferry migrate: %v\n", err)
		return exitUsage
	}
	if err := c.checkPrompted(context.Background(), stderr, connOptions{log: c.logger, caFile: c.caFile, timeout: c.timeout, folder: "INBOX"}); err != nil {
		return finish(stderr, "migrate", err, false, c)
	}
	co := connOptions{log: c.logger, caFile: c.caFile, timeout: c.timeout, folder: "INBOX", job: tmpTag(c.state, c.src, c.tgt, rules.ToFolder)}
	srcOpen, err := c.src.sourceOpener(co)
	if err == nil {
		_, err = c.tgt.targetOpener(co)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mailferry migrate: %v\n", c.redact(err.Error()))
		return exitUsage
	}
	tgtOpen, _ := c.tgt.targetOpener(co)
	if rf.dryRun {
		var cleanup func()
		if tgtOpen, cleanup, err = dryTargetOpener(c.tgt, co); err != nil {
			fmt.Fprintf(stderr, "mailferry migrate: %v\n", err)
			return exitUsage
		}
		defer cleanup()
	}

	journal, release, err := openJournal(c.state, rf.dryRun, c.src.String(), c.tgt.String(), rules.ToFolder)
	if err != nil {
		fmt.Fprintf(stderr, "mailferry migrate: %v\n", err)
		return exitUsage
	}
	failed := true
	defer func() { release(failed) }()

	ctx, stop := signalContext()
	defer stop()
	stats := new(migrate.Stats)
	if testHookStats != nil {
		testHookStats(stats)
	}
	prog := startProgress(ctx, stats, progressOptions{noBar: c.noProgress || c.quiet, interval: c.stats, logger: c.logger, stderr: stderr, out: tw, verb: "copying"})
	started := c.logStart("migrate")
	o := rf.options(c.workers, rules)
	o.Stats, o.Logger = stats, c.logger
	sum, err := migrate.Run(ctx, srcOpen, tgtOpen, journal, o)
	failed = err != nil
	prog.stop()
	if jerr := journal.Close(); jerr != nil && err == nil {
		err = jerr
	}
	someFailed := sum != nil && sum.Failed > 0
	code, status := exitCodeOf(err, someFailed), statusOf(err, someFailed)
	var reportErr error
	if sum != nil {
		if rf.dryRun {
			printPlanFull(stdout, sum, gatherPlan(ctx, sum, srcOpen, tgtOpen, planLimits{workers: c.workers, maxRate: rf.maxRate, maxBandwidth: rf.maxBW, listing: sum.Elapsed}), c.src, c.tgt)
		} else {
			printSummary(stdout, sum, c.src, c.tgt, err)
		}
		logFolders(c.logger, sum)
		if c.report != "" {
			rep := runReport{Version: buildVersion(), Source: c.src.String(), Target: c.tgt.String(), Started: started,
				Ended: time.Now(), Status: status, ExitCode: code, Summary: sum}
			if err != nil {
				rep.Error = c.redact(err.Error())
			}
			if reportErr = writeJSON(c.report, rep); reportErr != nil {
				fmt.Fprintf(stderr, "mailferry migrate: write the report: %v\n", reportErr)
				if err == nil {
					// The copy is done, but what was asked for is not.
					code, status = exitSomeFailed, "failed"
				}
			}
		}
	}
	errText := ""
	if err != nil {
		errText = err.Error()
	} else if reportErr != nil {
		errText = "write the report: " + reportErr.Error()
	}
	c.logEnd("migrate", status, code, started, errText, summaryAttrs(sum)...)
	if reportErr != nil && err == nil {
		return code
	}
	return finish(stderr, "migrate", err, someFailed, c)
}

// runReport is migrate --report: which run it was, how it ended, and the
// summary's fields beside them.
type runReport struct {
	Version  string    `json:"version"`
	Source   string    `json:"source"`
	Target   string    `json:"target"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"`
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
		return interruptCode()
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
		fmt.Fprintf(stderr, "mailferry %s: %s; run the same command again to resume\n", cmd, interruptWord())
		return interruptCode()
	}
	msg := c.redact(err.Error())
	code := failure.ExitCode(err)
	fmt.Fprintf(stderr, "mailferry %s: %s\n", cmd, msg)
	return code
}

// openJournal opens the job's checkpoint journal in its state directory.
// It returns a release function to call once the run is over: it closes
// the journal and removes the directories this call created when nothing
// is worth keeping: a dry run (plan, --dry-run: the journal is then a
// temporary one unless the job already has a state directory), or a run
// that failed before it recorded anything.
func openJournal(stateDir string, dry bool, parts ...string) (*checkpoint.Journal, func(failed bool), error) {
	if stateDir == "" {
		stateDir = checkpoint.DefaultDir()
	}
	id := checkpoint.JobID(parts...)
	dir := filepath.Join(stateDir, id)
	var made []string // created here, outermost first
	if _, err := os.Stat(dir); err != nil && dry {
		tmp, err := os.MkdirTemp("", "mailferry-dry-*")
		if err != nil {
			return nil, nil, fmt.Errorf("create a temporary journal: %w", err)
		}
		dir, made = filepath.Join(tmp, id), []string{tmp}
	} else if err != nil {
		made = missingDirs(dir)
	}
	undo := func() {
		for i := len(made) - 1; i >= 0; i-- {
			if i == 0 || made[i] == dir {
				os.RemoveAll(made[i])
			} else {
				os.Remove(made[i]) // only if empty
			}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		undo()
		return nil, nil, fmt.Errorf("create the state directory: %w", err)
	}
	j, err := checkpoint.Open(filepath.Join(dir, "journal"))
	if err != nil {
		undo()
		return nil, nil, err
	}
	// A note for humans browsing the state directory (no secrets).
	_ = os.WriteFile(filepath.Join(dir, "job"), []byte(strings.Join(parts, "\n")+"\n"), 0o600)
	release := func(failed bool) {
		empty := j.Len() == 0
		j.Close()
		if dry || (failed && empty) {
			undo()
		}
	}
	return j, release, nil
}

// missingDirs lists dir and its ancestors that do not exist yet,
// outermost first.
func missingDirs(dir string) []string {
	var out []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		out = append([]string{d}, out...)
	}
	return out
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
