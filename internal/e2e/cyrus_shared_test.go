package e2e

// The shared integration tests (round trip, kill -9 resume, torture corpus,
// hostile folder names, fault proxy) with Cyrus as the IMAP server, so that
// each feature is checked on Dovecot and on Cyrus (issue 11).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/cyrustest"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/internal/testkit/faultproxy"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
)

// cyrusModes are Cyrus' two namespace setups: Debian's ("INBOX." prefix,
// "." separator) and altnamespace with "/".
var cyrusModes = []cyrustest.Options{
	{},
	{AltNamespace: true, UnixHierarchySep: true},
}

func cyrusMode(o cyrustest.Options) string {
	if o.AltNamespace {
		return "altnamespace"
	}
	return "INBOX.prefix"
}

// TestCyrusRoundTrip is TestIMAPRoundTrip on Cyrus: Dovecot → Cyrus →
// Maildir → Cyrus (another user), each hop compared, then verify --deep.
func TestCyrusRoundTrip(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{})
	msgs := cyrustest.Unchanged(fullCorpus(300, 5))
	dv.Load(t, "src", msgs)
	src := "imap://src@" + dv.IMAP + "?tls=none"
	for _, opt := range cyrusModes {
		t.Run(cyrusMode(opt), func(t *testing.T) {
			opt.Users = []string{"dst", "u1"}
			cy := cyrustest.Start(t, opt)
			state := t.TempDir()
			dst, u1 := "imap://dst@"+cy.IMAP+"?tls=none", "imap://u1@"+cy.IMAP+"?tls=none"
			backup := filepath.Join(t.TempDir(), "Backup")

			if r := mf(t, secretEnv, "migrate", src, dst, "--state", state, "--no-progress"); r.code != 0 {
				t.Fatal(r)
			}
			checkReport(t, "Dovecot → Cyrus", corpus.Compare(msgs, cy.Dump(t, "dst"), compareAll))

			if r := mf(t, secretEnv, "migrate", dst, "maildir:"+backup, "--state", state, "--no-progress"); r.code != 0 {
				t.Fatal(r)
			}
			checkReport(t, "Cyrus → Maildir", corpus.Compare(msgs, dovecottest.DumpMaildir(t, backup), compareAll))

			if r := mf(t, secretEnv, "migrate", "maildir:"+backup, u1, "--state", state, "--no-progress"); r.code != 0 {
				t.Fatal(r)
			}
			checkReport(t, "Maildir → Cyrus", corpus.Compare(msgs, cy.Dump(t, "u1"), compareAll))

			for _, pair := range [][2]string{{src, dst}, {dst, "maildir:" + backup}, {src, u1}} {
				if r := mf(t, secretEnv, "verify", "--deep", pair[0], pair[1]); r.code != 0 {
					t.Fatalf("verify --deep %s %s: %s", pair[0], pair[1], r)
				}
			}
		})
	}
}

// TestCyrusCrashResume is TestIMAPCrashResume into Cyrus: a migration
// SIGKILLed a few times while it copies (each kill once the target has
// grown by a sixth of the corpus), then finished, leaves each message
// exactly once.
func TestCyrusCrashResume(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{})
	msgs := cyrustest.Unchanged(fullCorpus(900, 6))
	dv.Load(t, "src", msgs)
	cy := cyrustest.Start(t, cyrustest.Options{Users: []string{"dst"}, AltNamespace: true, UnixHierarchySep: true})
	args := []string{"migrate", "imap://src@" + dv.IMAP + "?tls=none", "imap://dst@" + cy.IMAP + "?tls=none",
		"--state", t.TempDir(), "--no-progress"}
	step, stored, killed := len(msgs)/6, 0, 0
	for range 4 {
		kill, done := startKill(t, secretEnv, args...)
		want := stored + step
		deadline := time.Now().Add(60 * time.Second)
		for !done() && time.Now().Before(deadline) {
			if stored = cyrusCount(t, cy, "dst"); stored >= want {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		finished := done()
		kill()
		if finished {
			break
		}
		killed++
		t.Logf("SIGKILL %d with %d of %d messages stored", killed, stored, len(msgs))
	}
	if killed < 3 {
		t.Errorf("only %d kills landed while copying", killed)
	}
	if r := mf(t, secretEnv, args...); r.code != 0 {
		t.Fatal(r)
	}
	checkReport(t, "Dovecot → Cyrus after kill -9", corpus.Compare(msgs, cy.Dump(t, "dst"), compareAll))
}

// cyrusCount is the number of messages user holds, over all folders.
func cyrusCount(t *testing.T, cy *cyrustest.Server, user string) int {
	t.Helper()
	c, err := cy.Login(user)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	list, err := c.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range list {
		if l.Status != nil && l.Status.NumMessages != nil {
			n += int(*l.Status.NumMessages)
		}
	}
	return n
}

// cyrusHeaderX is what Cyrus stores for body: every 8-bit byte of the
// header replaced by X.
func cyrusHeaderX(body []byte) []byte {
	out := bytes.Clone(body)
	end := bytes.Index(out, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(out)
	}
	for i := range out[:end] {
		if out[i] >= 0x80 {
			out[i] = 'X'
		}
	}
	return out
}

// TestCyrusTortureCorpus is TestTortureCorpus's IMAP → IMAP path into Cyrus:
// every torture message is stored once or listed as refused with a reason,
// never lost silently, and the run does not crash. With Reject8Bit Cyrus
// refuses 8-bit headers and what it stores must be the bytes sent; without
// it, the stored copies differ from the sent ones only by the X that Cyrus
// puts for 8-bit header bytes.
func TestCyrusTortureCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cases := loadTorture(t)
	dv := dovecottest.Start(t, dovecottest.Options{})
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
	src := "imap://src@" + dv.IMAP + "?tls=none"

	t.Run("Reject8Bit", func(t *testing.T) {
		cy := cyrustest.Start(t, cyrustest.Options{Users: []string{"dst"}, Reject8Bit: true})
		failures, _ := runTorture(t, secretEnv, src, "imap://dst@"+cy.IMAP+"?tls=none", "--strip-nul")
		checkTorture(t, cyrusWant(fromIMAP, false), cy.Dump(t, "dst"), failures, false)
		onlyRefused(t, fromIMAP, failures, "no empty line between header and body", "raw 8-bit UTF-8 and Latin-1 in headers")
	})
	t.Run("8-bit header to X", func(t *testing.T) {
		cy := cyrustest.Start(t, cyrustest.Options{Users: []string{"dst"}, AltNamespace: true, UnixHierarchySep: true})
		failures, _ := runTorture(t, secretEnv, src, "imap://dst@"+cy.IMAP+"?tls=none", "--strip-nul")
		checkTorture(t, cyrusWant(fromIMAP, true), cy.Dump(t, "dst"), failures, false)
		onlyRefused(t, fromIMAP, failures, "no empty line between header and body")
	})
}

// onlyRefused fails the test when a case other than those named (by
// X-Torture) was refused: Cyrus stores the others.
func onlyRefused(t *testing.T, cases []tortureCase, failures []reportFailure, may ...string) {
	t.Helper()
	for _, f := range failures {
		for _, c := range cases {
			if c.id != "" && c.id == f.MessageID && !slices.Contains(may, c.what) {
				t.Errorf("%s: refused (%s), but Cyrus stores it", c.what, f.Reason)
			}
		}
	}
}

// cyrusWant is what Cyrus must store of each case: the bytes mailferry
// sends (NUL removed by --strip-nul, bare LF turned into CRLF), with the
// header's 8-bit bytes as X when x. Unlike Dovecot, Cyrus keeps a lone CR
// at the very end.
func cyrusWant(cases []tortureCase, x bool) []tortureCase {
	out := make([]tortureCase, len(cases))
	for i, c := range cases {
		var b []byte
		for _, ch := range bytes.ReplaceAll(c.body, []byte{0}, nil) {
			if ch == '\n' && (len(b) == 0 || b[len(b)-1] != '\r') {
				b = append(b, '\r')
			}
			b = append(b, ch)
		}
		out[i] = c
		out[i].body = b
		if x {
			out[i].body = cyrusHeaderX(b)
		}
	}
	return out
}

// cyrusNamesReport is the part of the --report file the names test reads.
type cyrusNamesReport struct {
	Failures []reportFailure `json:"failures"`
	Folders  []struct {
		Source  string `json:"source"`
		Target  string `json:"target"`
		Skipped string `json:"skipped"`
		Renamed string `json:"renamed"`
		Failed  int    `json:"failed"`
	} `json:"folders"`
}

// TestCyrusFolderNames is names_test's and hostile_test's folder names into
// Cyrus, directly from IMAP and through a Maildir: each message lands once,
// in a folder of its source name or of the name the report gives with the
// reason it differs, or is listed as failed with a reason; nothing is
// dropped silently.
func TestCyrusFolderNames(t *testing.T) {
	names := append(append([]string{}, trickyNames...), "../../etc", "a/../../b", ".", "..", "~", "Star*", strings.Repeat("n", 300))
	runCyrusNames(t, names, len(trickyNames))
}

// cyrusRefusedNames are folder names Cyrus answers "NO Invalid mailbox
// name" to at CREATE.
var cyrusRefusedNames = []string{"Quote\"d", "Back\\slash", "Percent%", "ctl\x01\x07\x1b[31mred\x7f"}

// TestCyrusRefusedFolderNames: folders whose names Cyrus refuses at CREATE
// fail alone, reported with the reason (exit 1); the other folders are
// copied.
func TestCyrusRefusedFolderNames(t *testing.T) {
	runCyrusNames(t, append([]string{"Before", "Zafter"}, cyrusRefusedNames...), 3)
}

// runCyrusNames migrates one message per folder of names (and INBOX) from
// an in-process IMAP server into Cyrus, directly and through a Maildir, in
// both namespace setups, and checks the outcome per message: at least
// minStored must be stored.
func runCyrusNames(t *testing.T, names []string, minStored int) {
	t.Helper()
	srv := imaptest.Start(t, imaptest.Options{})
	all := append([]string{"INBOX"}, names...)
	ids := map[string]string{} // Message-ID → source folder
	var order []string
	for i, name := range all {
		if name != "INBOX" {
			if err := srv.User.Create(name, nil); err != nil {
				t.Logf("the test server refuses folder %.40q: %v", name, err)
				continue
			}
		}
		id := fmt.Sprintf("<cyrus-name-%d@mailferry.test>", i)
		body := fmt.Sprintf("Message-ID: %s\r\nSubject: folder %d\r\n\r\nin folder %.60q\r\n", id, i, name)
		if _, err := srv.User.Append(name, imaptestLiteral(body), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}}); err != nil {
			t.Fatalf("append to %.40q: %v", name, err)
		}
		ids[id] = name
		order = append(order, id)
	}
	env := []string{"MAILFERRY_SOURCE_PASSWORD=" + imaptest.Password, "MAILFERRY_TARGET_PASSWORD=" + cyrustest.Password}
	imapSrc := "imap://" + imaptest.User + "@" + srv.Addr + "?tls=none"
	root := filepath.Join(t.TempDir(), "Maildir")
	if r := mf(t, env, "migrate", imapSrc, "maildir:"+root, "--state", t.TempDir(), "--no-progress", "--timeout", "5s"); r.code != 0 && r.code != 1 {
		t.Fatalf("IMAP → Maildir: %s", r)
	}
	for _, opt := range cyrusModes {
		t.Run(cyrusMode(opt), func(t *testing.T) {
			opt.Users = []string{"dst", "u1"}
			cy := cyrustest.Start(t, opt)
			for _, path := range []struct{ name, src, user string }{
				{"from IMAP", imapSrc, "dst"},
				{"from Maildir", "maildir:" + root, "u1"},
			} {
				t.Run(path.name, func(t *testing.T) {
					report := filepath.Join(t.TempDir(), "report.json")
					r := mf(t, env, "migrate", path.src, "imap://"+path.user+"@"+cy.IMAP+"?tls=none",
						"--state", t.TempDir(), "--report", report, "--no-progress", "--timeout", "5s")
					if r.code != 0 && r.code != 1 {
						t.Fatalf("exit %d, want 0 or 1:\n%s", r.code, tail(r.String(), 40))
					}
					if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
						t.Fatalf("crash:\n%s", tail(r.stderr, 30))
					}
					b, err := os.ReadFile(report)
					if err != nil {
						t.Fatal(err)
					}
					var rep cyrusNamesReport
					if err := json.Unmarshal(b, &rep); err != nil {
						t.Fatal(err)
					}
					if (r.code == 1) != (len(rep.Failures) > 0) {
						t.Fatalf("exit %d with %d failures in the report:\n%s", r.code, len(rep.Failures), tail(r.String(), 40))
					}
					checkCyrusNames(t, ids, order, cy.Dump(t, path.user), rep, path.src != imapSrc, minStored)
				})
			}
		})
	}
}

// checkCyrusNames: each message of ids is stored once, in its source
// folder or in a folder the report names as that folder's renamed target,
// or reported as failed with a reason. fromMaildir: the source names are
// those the Maildir gave (themselves possibly renamed on the way in), so
// only the landing-once-or-failed part is checked.
func checkCyrusNames(t *testing.T, ids map[string]string, order []string, got []corpus.Message, rep cyrusNamesReport, fromMaildir bool, minStored int) {
	t.Helper()
	at := map[string][]string{}
	for _, m := range got {
		at[m.MessageID] = append(at[m.MessageID], m.Folder)
	}
	renamedTo := map[string]string{} // target → source, for folders the report says were renamed
	for _, f := range rep.Folders {
		if f.Renamed != "" || f.Source != f.Target {
			renamedTo[f.Target] = f.Source
		}
	}
	failed := map[string]string{}
	for _, f := range rep.Failures {
		if f.MessageID != "" {
			failed[f.MessageID] = f.Reason
		}
		// A folder that could not be created fails without message IDs.
		if f.MessageID == "" {
			failed["folder:"+f.Folder] = f.Reason
		}
	}
	var lines []string
	stored := 0
	for _, id := range order {
		src := ids[id]
		folders := at[id]
		delete(at, id)
		switch {
		case len(folders) > 1:
			t.Errorf("%.40q: stored %d times, in %q", src, len(folders), folders)
		case len(folders) == 1:
			stored++
			if folders[0] == src {
				lines = append(lines, fmt.Sprintf("  %-44.44q kept", src))
				break
			}
			lines = append(lines, fmt.Sprintf("  %-44.44q → %.50q (%s)", src, folders[0], reasonFor(rep, folders[0])))
			if _, ok := renamedTo[folders[0]]; !ok && !fromMaildir {
				t.Errorf("%.40q landed in %.50q, a name the report does not give for it", src, folders[0])
			}
		default:
			reason, ok := failed[id]
			if !ok {
				reason, ok = failed["folder:"+src]
			}
			if !ok || reason == "" {
				t.Errorf("%.40q (%s): neither stored nor reported as failed", src, id)
			}
			lines = append(lines, fmt.Sprintf("  %-44.44q refused: %s", src, reason))
		}
	}
	for id, f := range at {
		t.Errorf("an unexpected message %s arrived in %q", id, f)
	}
	sort.Strings(lines)
	t.Logf("%d of %d stored:\n%s", stored, len(order), strings.Join(lines, "\n"))
	if stored < minStored {
		t.Errorf("only %d of %d messages stored", stored, len(order))
	}
}

func reasonFor(rep cyrusNamesReport, target string) string {
	for _, f := range rep.Folders {
		if f.Target == target {
			return f.Renamed
		}
	}
	return "not in the report"
}

// TestCyrusFaultKinds is TestFaultKindsPerPath's IMAP-target path with
// Cyrus behind the proxy: resets, closes, cuts, stalls and trickles, at
// least 30, in both directions; one run must end with exit 0 and every
// message stored once, byte for byte. Half-closes have their own test.
func TestCyrusFaultKinds(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	o := kindsOptions(14, 96<<10, 1500, 36)
	var kinds []faultproxy.Kind
	for _, k := range o.Kinds {
		if k != faultproxy.HalfClose {
			kinds = append(kinds, k)
		}
	}
	o.Kinds = kinds
	runCyrusFaults(t, o, 30)
}

// TestCyrusHalfCloseFaults: the proxy half-closes connections to Cyrus in
// either direction, mid-APPEND among others; the run must still end with
// exit 0 and every message stored once.
func TestCyrusHalfCloseFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	o := kindsOptions(15, 96<<10, 1500, 20)
	o.Kinds = []faultproxy.Kind{faultproxy.HalfClose}
	runCyrusFaults(t, o, 10)
}

// runCyrusFaults migrates a corpus from Dovecot to Cyrus through a fault
// proxy in front of Cyrus; at least minFaults must strike.
func runCyrusFaults(t *testing.T, o faultproxy.Options, minFaults int) {
	t.Helper()
	dv := dovecottest.Start(t, dovecottest.Options{})
	msgs := cyrustest.Unchanged(fullCorpus(320, 71))
	dv.Load(t, "src", msgs)
	cy := cyrustest.Start(t, cyrustest.Options{Users: []string{"dst"}})
	p := proxy(t, cy.IMAP, o)
	start := time.Now()
	r := mf(t, secretEnv, "migrate", "imap://src@"+dv.IMAP+"?tls=none", "imap://dst@"+p.Addr()+"?tls=none",
		"--state", t.TempDir(), "--no-progress", "--timeout", "2s", "--workers", "4", "--retries", "20")
	log := p.Log()
	t.Logf("%d messages, %d KiB, %v, exit %d; %d faults over %d connections: %s",
		len(msgs), totalBytes(msgs)>>10, time.Since(start).Round(time.Millisecond), r.code, len(log), p.Conns(), faultSummary(log))
	got := cy.Dump(t, "dst")
	rep := corpus.Compare(msgs, got, compareAll)
	if r.code != 0 || !rep.OK() || rep.Found != rep.Expected {
		for _, f := range log {
			t.Log("  ", f)
		}
		for _, b := range blame(msgs, got, log) {
			t.Log(b)
		}
	}
	if r.code != 0 {
		t.Errorf("exit %d after %d faults, want 0:\nstdout:\n%s\nstderr:\n%s", r.code, len(log), tail(r.stdout, 15), tail(r.stderr, 30))
	}
	if len(log) < minFaults {
		t.Errorf("only %d faults injected, want >= %d", len(log), minFaults)
	}
	checkReport(t, "Dovecot → fault proxy → Cyrus", rep)
}
