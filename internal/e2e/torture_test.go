package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/internal/testkit/pop3test"
)

// tortureCase is one message of testdata/torture.
type tortureCase struct {
	name string // file name, or "big" for the generated one
	what string // its X-Torture header
	body []byte
	id   string // Message-ID, "" when it has none
}

// loadTorture reads testdata/torture and adds a generated message of more
// than 30 MB (not committed).
func loadTorture(t *testing.T) []tortureCase {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "torture")
	names, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(names) < 15 {
		t.Fatalf("torture corpus in %s: %d files, %v", dir, len(names), err)
	}
	var cases []tortureCase
	for _, p := range names {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		what := tortureWhat(b)
		if what == "" {
			t.Fatalf("%s: the first header is not X-Torture", p)
		}
		cases = append(cases, tortureCase{name: filepath.Base(p), what: what, body: b, id: corpus.MessageIDOf(b)})
	}
	var big bytes.Buffer
	big.WriteString("X-Torture: a message of more than 30 MB\r\nMessage-ID: <torture-big@mailferry.test>\r\nSubject: big\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	line := []byte(strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQy", 2)[:76] + "\r\n")
	for i := 0; big.Len() < 31<<20; i++ {
		copy(line, fmt.Sprintf("%08d", i))
		big.Write(line)
	}
	cases = append(cases, tortureCase{name: "big", what: "a message of more than 30 MB", body: big.Bytes(), id: "<torture-big@mailferry.test>"})
	return cases
}

// tortureWhat is the value of a leading X-Torture header, "" without one.
func tortureWhat(b []byte) string {
	const h = "X-Torture: "
	if !bytes.HasPrefix(b, []byte(h)) {
		return ""
	}
	line := b[len(h):]
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	return string(line)
}

type reportFailure struct {
	Folder    string `json:"folder"`
	Key       string `json:"key"`
	MessageID string `json:"message_id"`
	Size      int64  `json:"size"`
	Reason    string `json:"reason"`
}

// jsonReport is the part of the --report file the tests read.
type jsonReport struct {
	Copied      int             `json:"copied"`
	Failed      int             `json:"failed"`
	BareLFFixed int             `json:"bare_lf_fixed"`
	NULStripped int             `json:"nul_stripped"`
	Failures    []reportFailure `json:"failures"`
	Folders     []struct {
		Source  string `json:"source"`
		Target  string `json:"target"`
		Renamed string `json:"renamed"`
		Listed  int    `json:"listed"`
	} `json:"folders"`
}

func readReport(t *testing.T, path string) jsonReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the JSON report: %v", err)
	}
	var rep jsonReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("parse the JSON report: %v", err)
	}
	return rep
}

// diffAt quotes a around the first byte where it differs from b.
func diffAt(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from, to := max(i-30, 0), min(i+30, len(a))
	return fmt.Sprintf("at %d: %q", i, a[from:to])
}

func crlfToLF(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// checkTorture: every case is delivered exactly once with its bytes (CRLF
// normalised for IMAP targets), or listed as refused in the report with a
// reason; nothing else arrives.
func checkTorture(t *testing.T, want []tortureCase, got []corpus.Message, failures []reportFailure, normalize bool) {
	t.Helper()
	byWhat := map[string][]corpus.Message{}
	for _, m := range got {
		w := tortureWhat(m.Body)
		if w == "" {
			t.Errorf("a delivered message has lost its X-Torture header: %.80q", m.Body)
			continue
		}
		byWhat[w] = append(byWhat[w], m)
	}
	var lines []string
	for _, c := range want {
		ms := byWhat[c.what]
		delete(byWhat, c.what)
		switch {
		case len(ms) > 1:
			t.Errorf("%s: delivered %d times", c.name, len(ms))
		case len(ms) == 1:
			a, b := c.body, ms[0].Body
			if normalize {
				// IMAP targets: CRLF line ends; NUL removed (--strip-nul);
				// Dovecot's APPEND drops a lone CR at the very end.
				a = bytes.TrimSuffix(bytes.ReplaceAll(a, []byte{0}, nil), []byte("\r"))
				a, b = crlfToLF(a), crlfToLF(b)
			}
			if !bytes.Equal(a, b) {
				t.Errorf("%s (%s): delivered with other bytes:\nsent %d bytes %s\ngot  %d bytes %s", c.name, c.what, len(c.body), diffAt(c.body, ms[0].Body), len(ms[0].Body), diffAt(ms[0].Body, c.body))
			}
			lines = append(lines, fmt.Sprintf("  %-26s delivered", c.name))
		default:
			var reason string
			for _, f := range failures {
				if f.MessageID == c.id && f.Reason != "" {
					reason = f.Reason
				}
			}
			if reason == "" {
				t.Errorf("%s (%s): neither delivered nor reported as refused (failures: %+v)", c.name, c.what, failures)
			}
			lines = append(lines, fmt.Sprintf("  %-26s refused: %s", c.name, reason))
		}
	}
	for w := range byWhat {
		t.Errorf("an unexpected message arrived: %q", w)
	}
	sort.Strings(lines)
	t.Logf("torture results:\n%s", strings.Join(lines, "\n"))
}

// runTorture runs one migration and checks it never crashes.
func runTorture(t *testing.T, env []string, src, dst string, extra ...string) ([]reportFailure, jsonReport) {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.json")
	args := append([]string{"migrate", src, dst, "--state", t.TempDir(), "--report", report, "--no-progress", "--timeout", "30s"}, extra...)
	r := mf(t, env, args...)
	if r.code != 0 && r.code != 1 {
		t.Fatalf("exit %d, want 0 or 1:\n%s", r.code, tail(r.String(), 40))
	}
	if strings.Contains(r.stdout+r.stderr, "panic") || strings.Contains(r.stdout+r.stderr, "goroutine ") {
		t.Fatalf("crash:\n%s", tail(r.String(), 40))
	}
	rep := readReport(t, report)
	if (r.code == 1) != (len(rep.Failures) > 0) {
		t.Fatalf("exit %d with %d failures in the report:\n%s", r.code, len(rep.Failures), tail(r.String(), 40))
	}
	return rep.Failures, rep
}

func TestTortureCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cases := loadTorture(t)
	dv := dovecottest.Start(t, dovecottest.Options{})

	t.Run("POP3 to IMAP", func(t *testing.T) {
		var bodies [][]byte
		for _, c := range cases {
			bodies = append(bodies, c.body)
		}
		srv, err := pop3test.Start(pop3test.Options{User: "u", Password: "secret", Messages: bodies})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		failures, sum := runTorture(t, secretEnv, "pop3://u@"+srv.Addr()+"?tls=none", "imap://dst@"+dv.IMAP+"?tls=none", "--strip-nul")
		// On the POP3 wire a message ends with a line end before the
		// terminating dot: the server adds one when the message lacks it.
		wire := make([]tortureCase, len(cases))
		nuls := 0
		for i, c := range cases {
			wire[i] = c
			if bytes.HasSuffix(c.body, []byte("\r")) {
				wire[i].body = append(bytes.Clone(c.body), '\n')
			} else if !bytes.HasSuffix(c.body, []byte("\n")) {
				wire[i].body = append(bytes.Clone(c.body), "\r\n"...)
			}
			if bytes.IndexByte(c.body, 0) >= 0 {
				nuls++
			}
		}
		checkTorture(t, wire, dv.Dump(t, "dst"), failures, true)
		if sum.NULStripped != nuls {
			t.Errorf("the report counts %d messages with NUL stripped, want %d", sum.NULStripped, nuls)
		}
		if sum.BareLFFixed == 0 {
			t.Errorf("the report counts no bare LF fixed")
		}
	})

	// The IMAP source is Dovecot serving the corpus; what it serves is
	// what the target must hold.
	var msgs []corpus.Message
	for _, c := range cases {
		msgs = append(msgs, corpus.Message{Folder: "INBOX", Body: c.body, MessageID: c.id})
	}
	dv.Load(t, "src", msgs)
	served := dv.Dump(t, "src")
	if len(served) != len(cases) {
		t.Fatalf("Dovecot serves %d of the %d torture messages", len(served), len(cases))
	}
	fromIMAP := servedByIMAP(cases, served)

	t.Run("IMAP to IMAP", func(t *testing.T) {
		failures, _ := runTorture(t, secretEnv, "imap://src@"+dv.IMAP+"?tls=none", "imap://u1@"+dv.IMAP+"?tls=none", "--strip-nul")
		checkTorture(t, fromIMAP, dv.Dump(t, "u1"), failures, true)
	})
	t.Run("IMAP to Maildir", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "Maildir")
		failures, _ := runTorture(t, secretEnv, "imap://src@"+dv.IMAP+"?tls=none", "maildir:"+root)
		checkTorture(t, fromIMAP, dovecottest.DumpMaildir(t, root), failures, false)
	})
}

// servedByIMAP is what an IMAP source delivers of the torture cases Dovecot
// serves: its BODY[] bytes, except that a stored NUL, which Dovecot serves
// as 0x80, is restored by the source from BINARY.PEEK[].
func servedByIMAP(cases []tortureCase, served []corpus.Message) []tortureCase {
	var out []tortureCase
	for _, m := range served {
		body := m.Body
		for _, c := range cases {
			if c.what == tortureWhat(m.Body) && bytes.IndexByte(c.body, 0) >= 0 {
				body = bytes.ReplaceAll(body, []byte{0x80}, []byte{0})
			}
		}
		out = append(out, tortureCase{name: tortureWhat(body), what: tortureWhat(body), body: body, id: corpus.MessageIDOf(body)})
	}
	return out
}
