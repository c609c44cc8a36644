package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

// runSummary is the part of migrate --report the tests read.
type runSummary struct {
	Copied       int `json:"copied"`
	AlreadyThere int `json:"already_there"`
	Failed       int `json:"failed"`
}

func migrateReport(t *testing.T, args ...string) (result, runSummary) {
	t.Helper()
	rep := filepath.Join(t.TempDir(), "report.json")
	r := mf(t, secretEnv, append(append([]string{"migrate"}, args...), "--report", rep, "--no-progress")...)
	var s runSummary
	if b, err := os.ReadFile(rep); err == nil {
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("report: %v", err)
		}
	}
	return r, s
}

// TestTargetIsTheTruth (issue 10 item 4): the journal is a cache. A new
// state directory, or the same server spelled another way, copies nothing
// into a target that holds everything; a target folder emptied or
// re-created after a run gets everything again; source == target is
// refused.
func TestTargetIsTheTruth(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{})
	msgs := fullCorpus(300, 61)
	dv.Load(t, "src", msgs)
	port := dv.IMAP[strings.LastIndex(dv.IMAP, ":")+1:]
	src := "imap://src@" + dv.IMAP
	srcOther := "imap://src@localhost:" + port // another job id, the same server
	imapDst := "imap://dst@" + dv.IMAP
	root := filepath.Join(t.TempDir(), "Maildir")
	state := t.TempDir()
	common := []string{"--ca-file", dv.CAFile}

	for _, tgt := range []struct{ name, url string }{{"IMAP", imapDst}, {"Maildir", "maildir:" + root}} {
		dump := func() []corpus.Message {
			if tgt.name == "IMAP" {
				return dv.Dump(t, "dst")
			}
			return dovecottest.DumpMaildir(t, root)
		}
		r, s := migrateReport(t, append([]string{src, tgt.url, "--state", state}, common...)...)
		if r.code != 0 || s.Copied != len(msgs) {
			t.Fatalf("%s first run: copied %d\n%s", tgt.name, s.Copied, r)
		}
		for _, again := range []struct{ what, src, state string }{
			{"a new state directory", src, t.TempDir()},
			{"the source spelled another way", srcOther, state},
		} {
			r, s = migrateReport(t, append([]string{again.src, tgt.url, "--state", again.state}, common...)...)
			if r.code != 0 || s.Copied != 0 || s.AlreadyThere != len(msgs) {
				t.Fatalf("%s, %s: copied %d, already there %d; want 0, %d\n%s", tgt.name, again.what, s.Copied, s.AlreadyThere, len(msgs), r)
			}
			checkReport(t, tgt.name+", "+again.what, corpus.Compare(msgs, dump(), compareAll))
		}

		// Emptied behind the journal's back.
		if tgt.name == "IMAP" {
			dv.Doveadm(t, "expunge", "-u", "dst", "mailbox", "*", "all")
		} else {
			matches, _ := filepath.Glob(filepath.Join(root, "*", "cur", "*"))
			inbox, _ := filepath.Glob(filepath.Join(root, "cur", "*"))
			for _, m := range append(matches, inbox...) {
				os.Remove(m)
			}
		}
		r, s = migrateReport(t, append([]string{src, tgt.url, "--state", state}, common...)...)
		if r.code != 0 || s.Copied != len(msgs) {
			t.Fatalf("%s emptied: copied %d, want %d\n%s", tgt.name, s.Copied, len(msgs), r)
		}
		checkReport(t, tgt.name+" after emptying", corpus.Compare(msgs, dump(), compareAll))
	}

	// Re-created: every folder deleted and created again (new UIDVALIDITY).
	dv.Reset(t, "dst")
	r, s := migrateReport(t, append([]string{src, imapDst, "--state", state}, common...)...)
	if r.code != 0 || s.Copied != len(msgs) {
		t.Fatalf("re-created: copied %d, want %d\n%s", s.Copied, len(msgs), r)
	}
	checkReport(t, "IMAP after re-creating", corpus.Compare(msgs, dv.Dump(t, "dst"), compareAll))

	// Source and target the same account, however spelled.
	for _, tgt := range []string{src, srcOther, "imap://SRC@localhost:" + port + "?tls=none"} {
		r := mf(t, secretEnv, "migrate", src, tgt, "--ca-file", dv.CAFile, "--state", t.TempDir())
		if r.code != 2 || !strings.Contains(r.stderr, "same account") {
			t.Errorf("migrate %s %s: want exit 2 'same account'\n%s", src, tgt, r)
		}
	}
}
