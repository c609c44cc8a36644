// Package batch runs many migrations from one CSV file: it parses the rows
// (with line numbers for error messages), resolves where each password
// comes from, picks a stable shard of the rows, runs K accounts at a time,
// aggregates their progress and builds the JSON report.
//
// The CSV has a header row naming its columns (any order):
//
//	source,target,source_password,target_password,flags
//
// source and target are endpoints as on the command line. A password column
// says where the password comes from, never the password itself:
// env:NAME (an environment variable), file:PATH (the first line of a file)
// or cmd:COMMAND (run with sh -c; the first line it prints). It is empty
// for a maildir: endpoint. flags (optional) holds extra migrate flags for
// the row, split like a shell would: --to-folder "Old mail". Empty lines
// and lines starting with # are ignored.
package batch

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Row is one account of the batch.
type Row struct {
	Line           int      `json:"line"` // 1-based line in the CSV file
	Source         string   `json:"source"`
	Target         string   `json:"target"`
	SourcePassword Secret   `json:"-"`
	TargetPassword Secret   `json:"-"`
	Flags          []string `json:"flags,omitempty"`
}

// RowError is a row that cannot run.
type RowError struct {
	Line           int
	Source, Target string // when known
	Err            error
}

func (e *RowError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *RowError) Unwrap() error { return e.Err }

var columns = []string{"source", "target", "source_password", "target_password", "flags"}

// Parse reads a batch CSV. Rows that cannot be parsed are returned in bad
// with their line numbers; the others in rows. err is for the file as a
// whole (no header, unknown column).
func Parse(r io.Reader) (rows []Row, bad []*RowError, err error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.LazyQuotes = true // --to-folder "Old mail" in an unquoted field
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, errors.New("the batch file is empty: want a header row " + strings.Join(columns, ","))
		}
		return nil, nil, fmt.Errorf("read the header row: %w", err)
	}
	idx := map[string]int{}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, c := range columns {
			known = known || c == h
		}
		if !known {
			return nil, nil, fmt.Errorf("header: unknown column %q (known: %s)", h, strings.Join(columns, ","))
		}
		if _, dup := idx[h]; dup {
			return nil, nil, fmt.Errorf("header: column %q twice", h)
		}
		idx[h] = i
	}
	for _, c := range columns[:2] {
		if _, ok := idx[c]; !ok {
			return nil, nil, fmt.Errorf("header: the column %q is missing (want %s)", c, strings.Join(columns, ","))
		}
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad = append(bad, &RowError{Line: pe.StartLine, Err: pe.Err})
				continue
			}
			return rows, bad, fmt.Errorf("read the batch file: %w", err)
		}
		line, _ := cr.FieldPos(0)
		get := func(name string) string {
			i, ok := idx[name]
			if !ok || i >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		row := Row{Line: line, Source: get("source"), Target: get("target")}
		if err := row.fill(get("source_password"), get("target_password"), get("flags")); err != nil {
			bad = append(bad, &RowError{Line: line, Source: row.Source, Target: row.Target, Err: err})
			continue
		}
		rows = append(rows, row)
	}
	return rows, bad, nil
}

func (row *Row) fill(srcPass, tgtPass, flags string) error {
	if row.Source == "" || row.Target == "" {
		return errors.New("source and target are both required")
	}
	var err error
	if row.SourcePassword, err = ParseSecret(srcPass); err != nil {
		return fmt.Errorf("source_password: %w", err)
	}
	if row.TargetPassword, err = ParseSecret(tgtPass); err != nil {
		return fmt.Errorf("target_password: %w", err)
	}
	if row.Flags, err = SplitFlags(flags); err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	return nil
}

// Secret says where a password comes from. Its String never holds the
// password (only the kind and the variable, file or command).
type Secret struct {
	Kind string // "", "env", "file" or "cmd"
	Arg  string
}

// ParseSecret parses env:NAME, file:PATH, cmd:COMMAND or "".
func ParseSecret(s string) (Secret, error) {
	if s == "" {
		return Secret{}, nil
	}
	kind, arg, ok := strings.Cut(s, ":")
	arg = strings.TrimSpace(arg)
	switch {
	case !ok:
		return Secret{}, errors.New("want env:NAME, file:PATH or cmd:COMMAND (never the password itself)")
	case kind != "env" && kind != "file" && kind != "cmd":
		return Secret{}, fmt.Errorf("unknown source %q: want env:NAME, file:PATH or cmd:COMMAND", kind)
	case arg == "":
		return Secret{}, fmt.Errorf("%s: with nothing after the colon", kind)
	}
	return Secret{Kind: kind, Arg: arg}, nil
}

func (s Secret) String() string {
	if s.Kind == "" {
		return "(none)"
	}
	return s.Kind + ":" + s.Arg
}

// IsZero reports whether no password source was given.
func (s Secret) IsZero() bool { return s.Kind == "" }

// Resolve returns the password. A command gets at most a minute.
func (s Secret) Resolve(ctx context.Context) (string, error) {
	var v string
	switch s.Kind {
	case "":
		return "", errors.New("no password given")
	case "env":
		v = os.Getenv(s.Arg)
		if v == "" {
			return "", fmt.Errorf("the environment variable %s is not set", s.Arg)
		}
		return v, nil
	case "file":
		b, err := os.ReadFile(s.Arg)
		if err != nil {
			return "", fmt.Errorf("read the password file: %w", err)
		}
		v, _, _ = strings.Cut(string(b), "\n")
	case "cmd":
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", s.Arg)
		cmd.Stderr = nil
		out, err := cmd.Output()
		if err != nil {
			// Only the error, never the output (it may hold the password).
			return "", fmt.Errorf("password command %q failed: %v", s.Arg, err)
		}
		v, _, _ = strings.Cut(string(out), "\n")
	}
	v = strings.TrimRight(v, "\r")
	if v == "" {
		return "", fmt.Errorf("%s gave an empty password", s)
	}
	return v, nil
}

// SplitFlags splits s into words like a POSIX shell: spaces separate,
// '…' quotes literally, "…" quotes with \" and \\ escapes, \ escapes one
// character. No expansion of any kind.
func SplitFlags(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New(`unterminated " quote`)
			}
			inWord = true
		case ch == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("a trailing backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}
