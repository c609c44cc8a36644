package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// TestHelpOfHelp: "help help" and friends print the overview instead of
// asking themselves for help until the stack overflows.
func TestHelpOfHelp(t *testing.T) {
	for _, args := range [][]string{{"help", "help"}, {"help", "--help"}, {"help", "-h"}, {"--help", "help"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitOK || !strings.Contains(out.String(), "mailferry migrate") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out.String(), errb.String())
		}
	}
}

// TestSummaryNeverClaimsSuccessOnError: a run stopped by an error before it
// did anything prints no summary; one stopped later says it stopped.
func TestSummaryNeverClaimsSuccessOnError(t *testing.T) {
	fatal := errors.New("login: authentication failed")
	var out bytes.Buffer
	printSummary(&out, &migrate.Summary{}, stringer("src"), stringer("dst"), fatal)
	if out.Len() != 0 {
		t.Errorf("fatal error before any work printed:\n%s", out.String())
	}
	out.Reset()
	printSummary(&out, &migrate.Summary{Copied: 3}, stringer("src"), stringer("dst"), fatal)
	if s := out.String(); strings.Contains(s, "Done") || !strings.Contains(s, "Stopped by an error") {
		t.Errorf("stopped run:\n%s", s)
	}
	out.Reset()
	printSummary(&out, &migrate.Summary{AlreadyThere: 5}, stringer("src"), stringer("dst"), nil)
	if s := out.String(); !strings.Contains(s, "Done") || !strings.Contains(s, "nothing to copy") {
		t.Errorf("no-op run:\n%s", s)
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

// TestUnwritableReportIsRefusedFirst: an unwritable --report is a usage
// error before anything is copied.
func TestUnwritableReportIsRefusedFirst(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"migrate", "maildir:" + t.TempDir() + "/a", "maildir:" + t.TempDir() + "/b", "--report", "/nonexistent-dir/r.json", "--state", t.TempDir()}, &out, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), "--report") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
}

// TestVersion: -V and --version answer, from the build info when no
// release version was stamped.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-V"} {
		var out, errb bytes.Buffer
		if code := run([]string{arg}, &out, &errb); code != exitOK || !strings.HasPrefix(out.String(), "mailferry ") || len(strings.TrimSpace(out.String())) <= len("mailferry") {
			t.Errorf("%s: exit %d, %q", arg, code, out.String())
		}
	}
}

// TestFlagErrors: one line with a hint, not the flag package's error and
// 72 lines of usage.
func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "--worker", "3", "maildir:/a", "maildir:/b"}, "mailferry migrate: unknown flag --worker (did you mean --workers?)"},
		{[]string{"migrate", "--max-size", "10X", "maildir:/a", "maildir:/b"}, `mailferry migrate: --max-size "10X": want a size such as 512K, 10M or 1G`},
		{[]string{"migrate", "--timeout", "30", "maildir:/a", "maildir:/b"}, `mailferry migrate: --timeout "30": want a duration`},
		{[]string{"verify", "--dep", "maildir:/a", "maildir:/b"}, "did you mean --deep?"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) || strings.Count(errb.String(), "\n") > 1 {
			t.Errorf("%v: exit %d\n%s", tc.args, code, errb.String())
		}
	}
}

// TestReportSaysWhichRun: migrate --report names the run (version, source,
// target, start, status, exit code) beside the summary's counts.
func TestReportSaysWhichRun(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "cur", "1.a"), []byte("Message-ID: <a@b>\r\n\r\nhi\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := filepath.Join(dir, "r.json")
	var out, errb bytes.Buffer
	if code := run([]string{"migrate", "maildir:" + src, "maildir:" + filepath.Join(dir, "out"), "--state", filepath.Join(dir, "st"), "--report", rep, "--no-progress"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	b, err := os.ReadFile(rep)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Version, Source, Target, Status string
		Started                         time.Time
		ExitCode                        int `json:"exit_code"`
		Copied                          int
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Version == "" || r.Source != "maildir:"+src || !strings.HasPrefix(r.Target, "maildir:") || r.Status != "ok" || r.ExitCode != 0 || r.Started.IsZero() || r.Copied != 1 {
		t.Fatalf("report: %+v\n%s", r, b)
	}
}
