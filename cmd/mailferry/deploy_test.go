package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDeployCommandLines parses the mailferry command lines of the
// examples in deploy/ (the systemd units' ExecStart, the Kubernetes Job's
// script) with the real flag definitions: an unknown or malformed flag, or
// a wrong number of arguments, fails here rather than at 3 a.m.
func TestDeployCommandLines(t *testing.T) {
	units, _ := filepath.Glob("../../deploy/systemd/*.service")
	jobs, _ := filepath.Glob("../../deploy/k8s/*.yaml")
	if len(units) == 0 || len(jobs) == 0 {
		t.Fatalf("no deploy examples found (%d units, %d jobs)", len(units), len(jobs))
	}
	n := 0
	for _, f := range units {
		for _, line := range systemdExecStarts(t, f) {
			checkCommandLine(t, f, line)
			n++
		}
	}
	for _, f := range jobs {
		for _, line := range k8sCommandLines(t, f) {
			checkCommandLine(t, f, line)
			n++
		}
	}
	if n < 2 {
		t.Fatalf("found %d mailferry command lines in deploy/", n)
	}
}

// checkCommandLine parses "mailferry CMD ARGS..." (words already split).
func checkCommandLine(t *testing.T, file string, words []string) {
	t.Helper()
	if len(words) < 2 || filepath.Base(words[0]) != "mailferry" {
		t.Errorf("%s: not a mailferry command line: %q", file, words)
		return
	}
	c := findCommand(words[1])
	if c == nil || c.flags == nil {
		t.Errorf("%s: unknown command %q", file, words[1])
		return
	}
	fs, _ := c.flags()
	fs.SetOutput(nil)
	pos, err := parseArgs(fs, words[2:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			err = errors.New("asks for help")
		}
		t.Errorf("%s: mailferry %s: %v", file, words[1], err)
		return
	}
	want := map[string]int{"migrate": 2, "verify": 2, "plan": 2, "batch": 1}[words[1]]
	if len(pos) != want {
		t.Errorf("%s: mailferry %s: %d arguments %q, want %d", file, words[1], len(pos), pos, want)
	}
	if want == 2 {
		for _, p := range pos {
			if _, err := parseEndpoint(p); err != nil {
				t.Errorf("%s: %v", file, err)
			}
		}
	}
}

// systemdExecStarts returns the ExecStart lines of a unit, continuation
// lines joined and ${NAME} replaced from its Environment= lines.
func systemdExecStarts(t *testing.T, file string) [][]string {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	var out [][]string
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if kv, ok := strings.CutPrefix(l, "Environment="); ok {
			k, v, _ := strings.Cut(strings.Trim(kv, `"`), "=")
			env[k] = v
		}
		cmd, ok := strings.CutPrefix(l, "ExecStart=")
		if !ok {
			continue
		}
		for strings.HasSuffix(cmd, `\`) && i+1 < len(lines) {
			i++
			cmd = strings.TrimSuffix(cmd, `\`) + " " + strings.TrimSpace(lines[i])
		}
		cmd = regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllStringFunc(cmd, func(m string) string { return env[m[2:len(m)-1]] })
		out = append(out, strings.Fields(cmd))
	}
	return out
}

// k8sCommandLines returns the "mailferry ..." lines of the shell scripts
// in a manifest, with $((...)) taken as 1 and $NAME from its env values.
func k8sCommandLines(t *testing.T, file string) [][]string {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	env := map[string]string{}
	for i, l := range lines {
		if name, ok := strings.CutPrefix(strings.TrimSpace(l), "- name: "); ok && i+1 < len(lines) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(lines[i+1]), "value: "); ok {
				env[strings.Fields(name)[0]] = strings.Trim(v, `"`)
			}
		}
	}
	var out [][]string
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		l = strings.TrimPrefix(l, "exec ")
		if !strings.HasPrefix(l, "mailferry ") {
			continue
		}
		for strings.HasSuffix(l, `\`) && i+1 < len(lines) {
			i++
			l = strings.TrimSuffix(l, `\`) + " " + strings.TrimSpace(lines[i])
		}
		l = regexp.MustCompile(`\$\(\([^)]*\)\)`).ReplaceAllString(l, "1")
		l = regexp.MustCompile(`\$\{?(\w+)\}?`).ReplaceAllStringFunc(l, func(m string) string {
			return env[strings.Trim(m, "${}")]
		})
		out = append(out, strings.Fields(strings.ReplaceAll(l, `"`, "")))
	}
	return out
}
