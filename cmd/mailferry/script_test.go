package main

import (
	"bytes"
	"crypto/tls"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestScripts runs the CLI scripts in testdata/script: txtar archives
// whose comment is a list of commands and checks (one per line, # starts
// a comment), and whose files are written to $WORK first.
//
//	mailferry ARGS...     run the CLI in process ('quoted words' allowed)
//	exit N                the last run's exit code
//	stdout TEXT           the last run's stdout contains TEXT
//	stderr TEXT           the same for stderr
//	! stdout TEXT         ... does not contain TEXT ("! stderr ." : empty)
//	lines stderr N        the last run's stderr has N lines
//	trimmed stdout        no line of stdout ends in a space
//	exists PATH           PATH exists ("! exists PATH": it does not)
//	mkdir PATH...         make directories (a Maildir's empty tmp/)
//	env NAME=VALUE        set an environment variable for the rest
//	serve KIND NAME       start an in-process imap, imaps, pop3 or pop3s
//	                      server: $NAME is its address, $CAFILE its CA
//
// $WORK in any line is the script's temporary directory.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/script/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			runScript(t, file)
		})
	}
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	t.Setenv("XDG_STATE_HOME", filepath.Join(work, ".state"))
	t.Setenv("HOME", work)
	comment, archive := parseTxtar(data)
	for name, body := range archive {
		p := filepath.Join(work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	code := -1
	vars := map[string]string{"$WORK": work}
	var tlsCfg *tls.Config
	for i, line := range strings.Split(comment, "\n") {
		// longest names first: $POP3S before $POP3
		names := slices.SortedFunc(maps.Keys(vars), func(a, b string) int { return len(b) - len(a) })
		for _, k := range names {
			line = strings.ReplaceAll(line, k, vars[k])
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := file + ":" + strconv.Itoa(i+1)
		neg := false
		if rest, ok := strings.CutPrefix(line, "! "); ok {
			neg, line = true, rest
		}
		verb, arg, _ := strings.Cut(line, " ")
		arg = strings.TrimSpace(arg)
		if verb != "mailferry" && verb != "mkdir" {
			arg = unquote(arg)
		}
		out := func(which string) string {
			if which == "stderr" {
				return stderr.String()
			}
			return stdout.String()
		}
		switch verb {
		case "mailferry":
			stdout.Reset()
			stderr.Reset()
			code = run(splitWords(arg), &stdout, &stderr)
		case "exit":
			if want, _ := strconv.Atoi(arg); code != want {
				t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", where, code, want, stdout.String(), stderr.String())
			}
		case "stdout", "stderr":
			s := out(verb)
			has := strings.Contains(s, arg)
			if neg && arg == "." {
				has = s != ""
			}
			if has == neg {
				t.Errorf("%s: %s %s %q:\n%s", where, verb, map[bool]string{true: "has", false: "lacks"}[has], arg, s)
			}
		case "lines":
			which, n, _ := strings.Cut(arg, " ")
			if got, want := strings.Count(out(which), "\n"), atoi(n); got != want {
				t.Errorf("%s: %s has %d lines, want %d:\n%s", where, which, got, want, out(which))
			}
		case "trimmed":
			for _, l := range strings.Split(out(arg), "\n") {
				if strings.HasSuffix(l, " ") {
					t.Errorf("%s: %s line ends in a space: %q", where, arg, l)
				}
			}
		case "serve":
			// serve KIND NAME: an in-process server; $NAME is its address,
			// $CAFILE the CA file that trusts the TLS ones.
			kind, name, _ := strings.Cut(arg, " ")
			if tlsCfg == nil {
				cert, ca, err := demoCert(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				tlsCfg, vars["$CAFILE"] = &tls.Config{Certificates: []tls.Certificate{cert}}, ca
			}
			var addr string
			switch kind {
			case "imap":
				addr = startIMAP(t, nil)
			case "imaps":
				addr = startIMAP(t, tlsCfg)
			case "pop3":
				addr = startPOP3(t, nil)
			case "pop3s":
				addr = startPOP3(t, tlsCfg)
			default:
				t.Fatalf("%s: serve %q", where, kind)
			}
			vars["$"+name] = addr
		case "env":
			k, v, _ := strings.Cut(arg, "=")
			t.Setenv(k, v)
		case "mkdir":
			for _, d := range splitWords(arg) {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
		case "exists":
			_, err := os.Stat(arg)
			if (err == nil) == neg {
				t.Errorf("%s: exists %s: %v (negated: %v)", where, arg, err, neg)
			}
		default:
			t.Fatalf("%s: unknown script command %q", where, verb)
		}
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// unquote removes one pair of single quotes around a whole argument.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' && !strings.Contains(s[1:len(s)-1], "'") {
		return s[1 : len(s)-1]
	}
	return s
}

// splitWords splits a command line at spaces, keeping 'quoted words' whole.
func splitWords(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			inQuote, have = !inQuote, true
		case r == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// parseTxtar splits a txtar archive into its comment and its files
// ("-- name --" lines start a file), as golang.org/x/tools/txtar does.
func parseTxtar(data []byte) (string, map[string][]byte) {
	files := map[string][]byte{}
	var comment strings.Builder
	var name string
	var body []byte
	inFile := false
	for _, line := range strings.SplitAfter(string(data), "\n") {
		trim := strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(trim, "-- ") && strings.HasSuffix(trim, " --") && len(trim) > 6 {
			if inFile {
				files[name] = body
			}
			name, body, inFile = strings.TrimSpace(trim[3:len(trim)-3]), nil, true
			continue
		}
		if inFile {
			body = append(body, line...)
		} else {
			comment.WriteString(line)
		}
	}
	if inFile {
		files[name] = body
	}
	return comment.String(), files
}
