package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

// TestMultiAppendOverQuota: Dovecot refuses a whole MULTIAPPEND when the
// account's quota cannot take it. None of its messages is stored, so each
// is sent again alone: the messages that fit are stored (exactly once,
// unchanged), the first that does not fit stops the folder, and the rest
// are reported. Without the resend nothing at all would be stored, since
// the first MULTIAPPEND alone is over the quota.
func TestMultiAppendOverQuota(t *testing.T) {
	msgs := inboxOnly(80, 91)
	var first32 int64
	for i, m := range msgs {
		if i < 32 {
			first32 += int64(len(m.Body))
		}
	}
	quota := first32 / 3
	dv := dovecottest.Start(t, dovecottest.Options{Users: []string{"pop", "small"}, QuotaBytes: map[string]int64{"small": quota}})
	dv.Load(t, "pop", msgs)
	report := filepath.Join(t.TempDir(), "report.json")
	r := mf(t, secretEnv, "migrate", "pop3://pop@"+dv.POP3, "imap://small@"+dv.IMAP, "--ca-file", dv.CAFile,
		"--state", t.TempDir(), "--no-progress", "--report", report)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (some messages reported)\n%s", r.code, r)
	}
	var sum struct {
		Copied   int `json:"copied"`
		Failed   int `json:"failed"`
		Failures []struct {
			Reason string `json:"reason"`
		} `json:"failures"`
	}
	readJSON(t, report, &sum)
	if sum.Copied == 0 || sum.Copied+sum.Failed != len(msgs) {
		t.Fatalf("copied %d, failed %d of %d\n%s", sum.Copied, sum.Failed, len(msgs), r)
	}
	full := 0
	for _, f := range sum.Failures {
		if strings.Contains(f.Reason, "full") || strings.Contains(f.Reason, "OVERQUOTA") {
			full++
		}
	}
	if full != sum.Failed {
		t.Errorf("%d of %d failures say the target is full: %+v", full, sum.Failed, sum.Failures)
	}
	// The corpus has byte-identical twins: count copies per fingerprint.
	left := map[string]int{}
	for _, m := range msgs {
		left[corpus.Fingerprint(m.Body)]++
	}
	got := dv.Dump(t, "small")
	var stored int64
	for _, m := range got {
		fp := corpus.Fingerprint(m.Body)
		if left[fp] == 0 {
			t.Errorf("stored message %q is not a source message, or is stored twice", m.MessageID)
		}
		left[fp]--
		stored += int64(len(m.Body))
	}
	t.Logf("quota %d bytes: %d copied (%d bytes), %d reported", quota, sum.Copied, stored, sum.Failed)
	if len(got) != sum.Copied || stored > quota {
		t.Fatalf("target holds %d messages (%d bytes, quota %d); the report says %d copied", len(got), stored, quota, sum.Copied)
	}
}

// TestDovecotConnectionLimit runs IMAP → IMAP with 8 workers against
// Dovecot's default of 10 sessions per user and address, where a main and a
// store session per worker would not fit: everything arrives, once,
// unchanged, and the run ends with exit 0. (That a worker then holds one
// session is TestStoreSessionConnections in target/imap; how many workers
// fell back to storing over the main session is only logged, it depends on
// timing.)
func TestDovecotConnectionLimit(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{Users: []string{"src", "dst"}, MaxUserIPConnections: 10})
	msgs := fullCorpus(600, 93)
	dv.Load(t, "src", msgs)
	r := mf(t, secretEnv, "migrate", "imap://src@"+dv.IMAP, "imap://dst@"+dv.IMAP, "--ca-file", dv.CAFile,
		"--state", t.TempDir(), "--no-progress", "--workers", "8")
	if r.code != 0 {
		t.Fatal(r)
	}
	checkReport(t, "IMAP → IMAP, 8 workers, 10 sessions per user", corpus.Compare(msgs, dv.Dump(t, "dst"), compareAll))
	t.Logf("second-session fallbacks: %d", strings.Count(r.stderr, "no second session"))
}
