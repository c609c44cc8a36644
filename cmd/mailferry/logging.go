package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
)

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
		// Unbuffered: each record is one write, on disk as it happens, so
		// that a run killed with SIGKILL (or the machine going down)
		// leaves its record up to that moment, and `tail -f` follows a
		// long run. (A 4 KB buffer kept the first minutes of a
		// 1,000,000-message resume out of the file.) Records are few: no
		// per-message line except a failure.
		handlers = append(handlers, slog.NewJSONHandler(&redactWriter{w: f, secrets: c.secrets}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.closeLog = func() { f.Close() }
	}
	c.logger = slog.New(slog.NewMultiHandler(handlers...))
	// The lower layers that log through slog's default logger (the
	// journal, the Maildir and IMAP packages) reach the same handlers for
	// the length of the run.
	// (Not for a batch's rows: they run side by side.)
	if c.fs.Name() != "batch" {
		prev := slog.Default()
		slog.SetDefault(c.logger)
		closeFile := c.closeLog
		c.closeLog = func() {
			slog.SetDefault(prev)
			closeFile()
		}
	}
	return nil
}
