package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// reportHead says which run a report is about, so that a report file
// stands alone: the version, both sides, when it started and ended, how it
// ended and its exit code.
type reportHead struct {
	Version  string    `json:"version"`
	Source   string    `json:"source"`
	Target   string    `json:"target"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"`
	Status   string    `json:"status"` // ok, failed, interrupted, error
	ExitCode int       `json:"exit_code"`
	Error    string    `json:"error,omitempty"`
}

// around writes the head's fields first in the JSON object write writes
// (which must start with "{").
func (h reportHead) around(write func(io.Writer) error) func(io.Writer) error {
	return func(w io.Writer) error {
		b, err := json.MarshalIndent(h, "", "  ")
		if err != nil {
			return err
		}
		// {"version": ... "exit_code": 0} without its closing brace,
		// then the rest of the other object after its opening one.
		b = bytes.TrimSuffix(bytes.TrimRight(b, "\n"), []byte("}"))
		b = append(bytes.TrimRight(b, "\n "), ',')
		if _, err := w.Write(b); err != nil {
			return err
		}
		return write(&skipFirst{w: w, b: '{'})
	}
}

// skipFirst drops the first byte written if it is b.
type skipFirst struct {
	w    io.Writer
	b    byte
	done bool
}

func (s *skipFirst) Write(p []byte) (int, error) {
	if s.done || len(p) == 0 {
		return s.w.Write(p)
	}
	s.done = true
	if p[0] != s.b {
		return s.w.Write(p)
	}
	n, err := s.w.Write(p[1:])
	return n + 1, err
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
