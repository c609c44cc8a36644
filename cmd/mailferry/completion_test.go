package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCompletion: the scripts name every command and the flags of each,
// from the flag definitions; bash's is valid bash.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		var out, errb bytes.Buffer
		if code := run([]string{"completion", sh}, &out, &errb); code != exitOK {
			t.Fatalf("%s: exit %d: %s", sh, code, errb.String())
		}
		s := out.String()
		for _, want := range []string{"migrate", "verify", "plan", "batch", "demo", "completion", "max-size", "shard", "deep", "source-password-command"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s completion lacks %q", sh, want)
			}
		}
		if sh == "bash" {
			if _, err := exec.LookPath("bash"); err == nil {
				cmd := exec.Command("bash", "-n")
				cmd.Stdin = strings.NewReader(s)
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("bash -n: %v\n%s", err, b)
				}
			}
		}
	}
	// every flag of migrate is offered after "mailferry migrate"
	var out bytes.Buffer
	run([]string{"completion", "bash"}, &out, &out)
	fs, _ := findCommand("migrate").flags()
	for _, n := range allFlagNames(fs) {
		if !strings.Contains(out.String(), "--"+n+" ") && !strings.Contains(out.String(), "--"+n+`"`) {
			t.Errorf("bash completion lacks --%s", n)
		}
	}
}

// TestManPage: the man page is roff with every command and its flags.
func TestManPage(t *testing.T) {
	var out bytes.Buffer
	writeMan(&out, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
	s := out.String()
	for _, want := range []string{".TH MAILFERRY 1 \"2026-01-02\"", ".SS mailferry migrate SOURCE TARGET [flags]", ".SS mailferry batch", `\-\-workers N`, `\-\-max\-size SIZE`, "143"} {
		if !strings.Contains(s, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(s)
		if b, err := cmd.CombinedOutput(); err != nil || len(b) > 0 {
			t.Errorf("groff: %v\n%s", err, b)
		}
	}
}
