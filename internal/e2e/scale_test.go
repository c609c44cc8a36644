package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

// smallCorpus is n messages of about 1.3 KB over 6 folders, the largest
// holding 40 % (the shape of issue 15's measurements).
func smallCorpus(n int) []corpus.Message {
	folders := []string{"INBOX", "INBOX", "Archive", "Sent", "Lists/go", "Lists/dovecot", "Archive", "Sent", "INBOX", "INBOX"}
	msgs := make([]corpus.Message, n)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	filler := make([]byte, 1100)
	for i := range filler {
		filler[i] = 'a' + byte(i%26)
		if i%76 == 75 {
			filler[i] = '\n'
		}
	}
	for i := range msgs {
		id := fmt.Sprintf("<scale%d@example.com>", i)
		date := base.Add(time.Duration(i) * time.Minute)
		body := fmt.Sprintf("From: a%d@example.com\r\nTo: b@example.com\r\nSubject: message %d\r\nDate: %s\r\nMessage-ID: %s\r\n\r\n%s\r\n",
			i%97, i, date.Format(time.RFC1123Z), id, filler)
		var flags []string
		if i%3 == 0 {
			flags = []string{`\Seen`}
		}
		msgs[i] = corpus.Message{Folder: folders[i%len(folders)], Body: []byte(body), Flags: flags, Date: date, MessageID: id}
	}
	return msgs
}

// TestScaleReconcile measures, with MAILFERRY_SCALE=N messages (skipped
// otherwise), a first run, a no-op re-run and a run with a new state
// directory (a full reconcile against the target) for an IMAP and a Maildir
// target, and checks that the last two copy nothing. BENCHMARKS.md quotes it.
func TestScaleReconcile(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MAILFERRY_SCALE"))
	if n <= 0 {
		t.Skip("set MAILFERRY_SCALE=N to measure reconciliation at N messages")
	}
	dv := dovecottest.Start(t, dovecottest.Options{})
	msgs := smallCorpus(n)
	start := time.Now()
	dv.Load(t, "src", msgs)
	t.Logf("loaded %d messages in %v", n, time.Since(start).Round(time.Millisecond))
	src := "imap://src@" + dv.IMAP
	root := filepath.Join(t.TempDir(), "Maildir")
	for _, tgt := range []struct{ name, url string }{{"IMAP→Maildir", "maildir:" + root}, {"IMAP→IMAP", "imap://dst@" + dv.IMAP}} {
		state, fresh := t.TempDir(), t.TempDir()
		for _, step := range []struct {
			what   string
			state  string
			copied int
		}{
			{"first run", state, n},
			{"no-op re-run", state, 0},
			{"new state directory (reconcile)", fresh, 0},
			{"no-op re-run of the reconciled state", fresh, 0},
		} {
			st := step.state
			start := time.Now()
			r, s := migrateReport(t, src, tgt.url, "--ca-file", dv.CAFile, "--state", st)
			el := time.Since(start)
			if r.code != 0 || s.Copied != step.copied || s.Copied+s.AlreadyThere != n {
				t.Fatalf("%s, %s: copied %d, already %d; want %d copied\n%s", tgt.name, step.what, s.Copied, s.AlreadyThere, step.copied, r)
			}
			t.Logf("%s, %d messages, %s: %v", tgt.name, n, step.what, el.Round(10*time.Millisecond))
		}
	}
}
