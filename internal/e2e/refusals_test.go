package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	"github.com/mailferry/mailferry/internal/testkit/pop3test"
)

// An IMAP target that answers NO [THROTTLED] to the first appends and
// NO [OVERQUOTA] once it holds 120 messages; a POP3 source that refuses a
// second session with [IN-USE] and a RETR once with [SYS/TEMP].
func TestServerRefusals(t *testing.T) {
	msgs := inboxOnly(200, 21)
	var raw [][]byte
	for _, m := range msgs {
		raw = append(raw, m.Body)
	}
	pop, err := pop3test.Start(pop3test.Options{User: "u", Password: "secret", Messages: raw, InUseAfter: 1, SysTempOnce: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pop.Close()
	tgt := imaptest.Start(t, imaptest.Options{})
	var mu sync.Mutex
	stored, throttled, quota := 0, 0, 120
	tgt.SetAppendHook(func(string, *imap.AppendOptions) error {
		mu.Lock()
		defer mu.Unlock()
		if throttled < 5 {
			throttled++
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "THROTTLED", Text: "slow down"}
		}
		if stored >= quota {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "quota exceeded"}
		}
		stored++
		return nil
	})
	env := []string{"MAILFERRY_SOURCE_PASSWORD=secret", "MAILFERRY_TARGET_PASSWORD=" + imaptest.Password}
	state := t.TempDir()
	report := filepath.Join(t.TempDir(), "report.json")
	args := []string{"migrate", "pop3://u@" + pop.Addr() + "?tls=none", "imap://" + imaptest.User + "@" + tgt.Addr + "?tls=none",
		"--state", state, "--report", report, "--workers", "3"}

	r := mf(t, env, args...)
	if r.code != 1 {
		t.Fatalf("over quota: want exit 1\n%s", r)
	}
	mustContain(t, r.stdout, "OVERQUOTA", "copied         120 messages")
	mustContain(t, r.stderr, "only one session")
	var rep struct {
		Failures []struct {
			Folder, Reason string
			Size           int64
		}
	}
	b, _ := os.ReadFile(report)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Failures) != 80 {
		t.Fatalf("report lists %d failures, want 80", len(rep.Failures))
	}
	for _, f := range rep.Failures {
		if f.Folder != "INBOX" || f.Size == 0 || !strings.Contains(f.Reason, "OVERQUOTA") {
			t.Fatalf("failure entry %+v", f)
		}
	}

	// Space is freed: the same command finishes the job.
	mu.Lock()
	quota = 1000
	mu.Unlock()
	r = mf(t, env, args...)
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, r.stdout, "copied         80 messages", "already there  120")
	if n := countMailbox(t, tgt, "INBOX"); n != 200 {
		t.Fatalf("target holds %d, want 200", n)
	}
	if len(pop.Deleted()) != 0 {
		t.Fatal("the source was changed")
	}
}

func countMailbox(t *testing.T, s *imaptest.Server, name string) int {
	t.Helper()
	st, err := s.User.Status(name, &imap.StatusOptions{NumMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	return int(*st.NumMessages)
}
