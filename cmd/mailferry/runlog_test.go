package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogIsACompleteRecord: --log holds the start (version, source,
// target, options without secrets), the lower layers' lines (the Maildir
// source's warning goes through slog's default logger), one line per
// folder, each skipped message, and the end with the summary.
func TestLogIsACompleteRecord(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(filepath.Join(src, p), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cur/1.a", "Message-ID: <a@b>\r\n\r\nhi\r\n")
	write("new/1.a", "Message-ID: <a@b>\r\n\r\nhi\r\n") // the same message twice: the source warns
	write("cur/2.b", "Message-ID: <big@b>\r\n\r\n"+strings.Repeat("x", 3000)+"\r\n")
	logf := filepath.Join(dir, "run.log")
	var out, errb bytes.Buffer
	code := run([]string{"migrate", "maildir:" + src, "maildir:" + filepath.Join(dir, "out"), "--state", filepath.Join(dir, "st"),
		"--log", logf, "--max-size", "1K", "--no-progress", "--target-password-command", "echo sekrit-77"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	b, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "sekrit-77") {
		t.Fatalf("the password command is in the log:\n%s", b)
	}
	var msgs []string
	var first, last map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		if first == nil {
			first = rec
		}
		last = rec
		msgs = append(msgs, rec["msg"].(string))
	}
	if first["msg"] != "run starting" || first["version"] == "" || first["source"] != "maildir:"+src || first["options"] == nil {
		t.Errorf("first record: %v", first)
	}
	if opts, _ := first["options"].(map[string]any); opts["max-size"] != "1024" || opts["target-password-command"] != "(given)" {
		t.Errorf("options: %v", first["options"])
	}
	if last["msg"] != "run finished" || last["status"] != "ok" || last["exit_code"] != 0.0 || last["summary"] == nil {
		t.Errorf("last record: %v", last)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"Maildir message present twice", "folder result", "message skipped"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in the log:\n%s", want, all)
		}
	}
}

// TestReportsStandAlone: the reports of plan and verify name their run.
func TestReportsStandAlone(t *testing.T) {
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
	for _, cmd := range []string{"plan", "verify"} {
		rep := filepath.Join(dir, cmd+".json")
		var out, errb bytes.Buffer
		code := run([]string{cmd, "maildir:" + src, "maildir:" + src + "2", "--state", filepath.Join(dir, "st"), "--report", rep, "--no-progress"}, &out, &errb)
		if cmd == "verify" {
			os.MkdirAll(src+"2", 0o700)
			code = run([]string{cmd, "maildir:" + src, "maildir:" + src, "--report", rep, "--no-progress"}, &out, &errb)
		}
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s%s", cmd, code, out.String(), errb.String())
		}
		b, err := os.ReadFile(rep)
		if err != nil {
			t.Fatal(err)
		}
		var r map[string]any
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, b)
		}
		for _, k := range []string{"version", "source", "target", "started", "ended", "status", "exit_code"} {
			if _, ok := r[k]; !ok {
				t.Errorf("%s report: no %q:\n%s", cmd, k, b)
			}
		}
		if r["status"] != "ok" {
			t.Errorf("%s report: status %v", cmd, r["status"])
		}
		if cmd == "verify" && r["folders"] == nil {
			t.Errorf("verify report lost its folders:\n%s", b)
		}
	}
}

// TestLogIsOnDiskAsItHappens: a --log record is in the file when it is
// logged, before the run ends (a run killed with SIGKILL keeps its log;
// it was buffered and lost up to 4 KB, minutes of a long run).
func TestLogIsOnDiskAsItHappens(t *testing.T) {
	logf := filepath.Join(t.TempDir(), "run.log")
	c := &common{fs: flag.NewFlagSet("verify", flag.ContinueOnError), logFile: logf, secrets: &secretList{}}
	if err := c.setupLog(io.Discard); err != nil {
		t.Fatal(err)
	}
	defer c.closeLog()
	c.logger.Info("run starting", "command", "verify")
	b, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"msg":"run starting"`) {
		t.Fatalf("the record is not in the file before the log is closed: %q", b)
	}
}
