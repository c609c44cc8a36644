package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

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
--include, --exclude, --map and --to-folder name the folders as migrate
did; give verify the same ones.

Examples:
  # after a migration, with the same SOURCE, TARGET and folder flags
  mailferry verify pop3s://bob@pop.old.example imaps://bob@imap.new.example
  # compare every body too, and keep the full list of problems
  mailferry verify --deep --report verify.json imaps://bob@imap.example maildir:~/Backup/Mail
`

// verifyFlags are verify's own flags.
type verifyFlags struct {
	deep, ignoreFlags, ignoreKeywords, ignoreDates bool
}

// newVerifyFlags defines verify's flags. It reads both sides as they are:
// --state and --workers (accepted, so that migrate's command line works)
// are not listed.
func newVerifyFlags(out io.Writer) (*common, *verifyFlags) {
	c := newCommon("verify", usageVerify, out)
	v := new(verifyFlags)
	c.fs.BoolVar(&v.deep, "deep", false, "compare the SHA-256 of every message body")
	c.fs.BoolVar(&v.ignoreFlags, "ignore-flags", false, "do not compare flags")
	c.fs.BoolVar(&v.ignoreKeywords, "ignore-keywords", false, "compare the system flags only (a target that refuses keywords)")
	c.fs.BoolVar(&v.ignoreDates, "ignore-dates", false, "do not compare internal dates")
	c.hidden["state"], c.hidden["workers"] = true, true
	return c, v
}

func cmdVerify(args []string, stdout, stderr io.Writer) int {
	c, v := newVerifyFlags(stdout)
	deep, ignoreFlags, ignoreKeywords, ignoreDates := &v.deep, &v.ignoreFlags, &v.ignoreKeywords, &v.ignoreDates
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
	co := connOptions{log: c.logger, caFile: c.caFile, timeout: c.timeout, folder: "INBOX"}
	if err := c.checkPrompted(context.Background(), stderr, co); err != nil {
		return finish(stderr, "verify", err, false, c)
	}
	srcOpen, err := c.src.sourceOpener(co)
	var tgtRead = srcOpen
	if err == nil {
		tgtRead, err = c.tgt.sourceOpener(co)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mailferry verify: %v\n", c.redact(err.Error()))
		return exitUsage
	}
	ctx, stop := signalContext()
	defer stop()
	started := c.logStart("verify")
	stats := new(migrate.Stats)
	prog := startProgress(ctx, stats, progressOptions{noBar: c.noProgress || c.quiet, interval: c.stats, logger: c.logger, stderr: stderr, verb: "verifying"})
	rep, err := migrate.Verify(ctx, srcOpen, tgtRead, migrate.VerifyOptions{
		Folders: rules, Deep: *deep, CRLF: c.tgt.scheme == "imap" || c.tgt.scheme == "imaps", Logger: c.logger, Stats: stats,
		IgnoreFlags: *ignoreFlags, IgnoreKeywords: *ignoreKeywords, IgnoreDates: *ignoreDates,
	})
	prog.stop()
	notOK := rep != nil && !rep.OK()
	code, status := exitCodeOf(err, notOK), statusOf(err, notOK)
	if rep != nil {
		printVerify(stdout, rep, c.src, c.tgt)
		for _, f := range rep.Folders {
			c.logger.Info("folder result", "folder", f.Source, "target_folder", f.Target, "source_count", f.SourceCount,
				"target_count", f.TargetCount, "missing", f.Missing, "duplicated", f.Duplicated, "extra", f.Extra,
				"flag_mismatches", f.FlagMismatches, "date_mismatches", f.DateMismatches)
		}
		if c.report != "" {
			head := reportHead{Version: buildVersion(), Source: c.src.String(), Target: c.tgt.String(), Started: started,
				Ended: time.Now(), Status: status, ExitCode: code}
			if err != nil {
				head.Error = c.redact(err.Error())
			}
			if werr := writeReport(c.report, head.around(rep.WriteJSON)); werr != nil {
				fmt.Fprintf(stderr, "mailferry verify: %v\n", werr)
			}
		}
	}
	errText := ""
	if err != nil {
		errText = err.Error()
	}
	var attrs []any
	if rep != nil {
		attrs = []any{slog.Group("summary", "missing", rep.Missing, "duplicated", rep.Duplicated, "flag_mismatches", rep.FlagMismatches,
			"date_mismatches", rep.DateMismatches, "extra", rep.Extra)}
	}
	c.logEnd("verify", status, code, started, errText, attrs...)
	return finish(stderr, "verify", err, notOK, c)
}
