package main

import (
	"flag"
	"log/slog"
	"strings"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// A --log file is a complete record of a run: its first line says which
// run it is (logStart), the engine's lines and those of the lower layers
// follow (they reach it through the logger setupLog makes the default for
// the run), then one line per folder and per failed message, and last the
// summary (logEnd).

// secretFlag reports whether a flag's value could hold a secret (a command
// line may embed a password): only that it was given is logged.
func secretFlag(name string) bool {
	return strings.HasSuffix(name, "-command")
}

// givenOptions are the flags given on the command line, secrets left out.
func givenOptions(fs *flag.FlagSet) []any {
	var out []any
	fs.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		if secretFlag(f.Name) {
			v = "(given)"
		}
		out = append(out, slog.String(f.Name, v))
	})
	return out
}

// logStart writes the first record of a run.
func (c *common) logStart(cmd string) time.Time {
	started := time.Now()
	c.logger.Info("run starting", "command", cmd, "version", buildVersion(), "source", c.src.String(), "target", c.tgt.String(),
		slog.Group("options", givenOptions(c.fs)...))
	return started
}

// logFolders writes one record per folder and one per failed or skipped
// message.
func logFolders(log *slog.Logger, sum *migrate.Summary) {
	if sum == nil {
		return
	}
	for _, f := range sum.Folders {
		if f.Skipped != "" {
			log.Info("folder result", "folder", f.Source, "skipped", f.Skipped)
			continue
		}
		log.Info("folder result", "folder", f.Source, "target_folder", f.Target, "listed", f.Listed, "copied", f.Copied,
			"already_there", f.AlreadyThere, "failed", f.Failed, "skipped_messages", f.SkippedMsgs, "bytes", f.Bytes)
	}
	for _, f := range sum.Failures {
		log.Warn("message failed", "folder", f.Folder, "id", f.Key, "message_id", f.MessageID, "size", f.Size, "reason", f.Reason)
	}
	for _, f := range sum.Skips {
		log.Info("message skipped", "folder", f.Folder, "id", f.Key, "message_id", f.MessageID, "size", f.Size, "reason", f.Reason)
	}
	for _, w := range sum.Warnings {
		log.Warn("warning", "text", w)
	}
}

// logEnd writes the last record of a run: how it ended and its summary.
func (c *common) logEnd(cmd, status string, code int, started time.Time, errText string, attrs ...any) {
	args := []any{"command", cmd, "status", status, "exit_code", code, "elapsed", time.Since(started).Round(time.Millisecond).String()}
	if errText != "" {
		args = append(args, "error", c.redact(errText))
	}
	c.logger.Info("run finished", append(args, attrs...)...)
}

// summaryAttrs are a migrate summary's totals as log attributes.
func summaryAttrs(sum *migrate.Summary) []any {
	if sum == nil {
		return nil
	}
	return []any{slog.Group("summary", "copied", sum.Copied, "already_there", sum.AlreadyThere, "failed", sum.Failed,
		"skipped_messages", sum.SkippedMsgs, "flags_synced", sum.FlagsSynced, "bytes", sum.Bytes,
		"deleted_from_source", sum.Deleted, "interrupted", sum.Interrupted)}
}

// statusOf names how a run ended, as reports and the log say it.
func statusOf(err error, someFailed bool) string {
	switch code := exitCodeOf(err, someFailed); {
	case code == exitOK:
		return "ok"
	case code == exitSomeFailed:
		return "failed"
	case code == exitInterrupted || code == exitTerminated:
		return "interrupted"
	}
	return "error"
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
