package main

import (
	"bufio"
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
		bw := bufio.NewWriter(f)
		handlers = append(handlers, slog.NewJSONHandler(&redactWriter{w: bw, secrets: c.secrets}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.closeLog = func() { bw.Flush(); f.Close() }
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
