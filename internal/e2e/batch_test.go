package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

// batchReport is the part of the batch JSON report the tests read.
type batchReport struct {
	Accounts []struct {
		Line     int    `json:"line"`
		Source   string `json:"source"`
		Status   string `json:"status"`
		Reason   string `json:"reason"`
		ExitCode int    `json:"exit_code"`
		Summary  *struct {
			Copied       int `json:"copied"`
			AlreadyThere int `json:"already_there"`
		} `json:"summary"`
	} `json:"accounts"`
	Totals struct {
		Accounts, OK, Failed, Invalid, Copied int
	} `json:"totals"`
}

func readBatchReport(t *testing.T, path string) batchReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r batchReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	return r
}

// TestBatchTwentyAccounts: 18 good accounts (POP3 → IMAP and IMAP → IMAP),
// one with a wrong password, one with an unreachable host. The batch is
// killed mid-way, re-run (18 OK, 2 failed with reasons, exit 1, every
// mailbox complete) and run a third time (nothing copied).
func TestBatchTwentyAccounts(t *testing.T) {
	var users []string
	for i := 1; i <= 20; i++ {
		users = append(users, fmt.Sprintf("s%02d", i), fmt.Sprintf("d%02d", i))
	}
	dv := dovecottest.Start(t, dovecottest.Options{Users: users})
	const wrong = "wr0ng-Pa55word-for-d19"
	want := map[string][]corpus.Message{}
	opts := map[string]corpus.CompareOptions{}
	var csv strings.Builder
	csv.WriteString("source,target,source_password,target_password,flags\n")
	for i := 1; i <= 18; i++ {
		src, dst := fmt.Sprintf("s%02d", i), fmt.Sprintf("d%02d", i)
		if i%2 == 1 {
			msgs := inboxOnly(25+i, int64(100+i))
			dv.Load(t, src, msgs)
			want[dst] = pop3Expect(msgs, "INBOX")
			opts[dst] = corpus.CompareOptions{NormalizeCRLF: true, Dates: true}
			fmt.Fprintf(&csv, "pop3://%s@%s,imap://%s@%s,env:PW,file:%s,\n", src, dv.POP3, dst, dv.IMAP, "PWFILE")
		} else {
			msgs := corpus.Generate(corpus.Options{Messages: 25 + i, Seed: int64(200 + i)})
			dv.Load(t, src, msgs)
			want[dst] = msgs
			opts[dst] = compareAll
			fmt.Fprintf(&csv, "imaps://%s@%s,imap://%s@%s,cmd:echo $PW,env:PW,--workers 1\n", src, dv.IMAPS, dst, dv.IMAP)
		}
	}
	dv.Load(t, "s19", inboxOnly(5, 19))
	fmt.Fprintf(&csv, "imap://s19@%s,imap://d19@%s,env:PW,env:WRONG,\n", dv.IMAP, dv.IMAP)
	fmt.Fprintf(&csv, "imaps://s20@127.0.0.1:1,imap://d20@%s,env:PW,env:PW,\n", dv.IMAP)

	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("secret\n"), 0o600)
	file := filepath.Join(dir, "accounts.csv")
	os.WriteFile(file, []byte(strings.ReplaceAll(csv.String(), "PWFILE", pwFile)), 0o600)
	state, logs, rep := filepath.Join(dir, "state"), filepath.Join(dir, "logs"), filepath.Join(dir, "report.json")
	env := []string{"PW=secret", "WRONG=" + wrong}
	args := []string{"batch", file, "--accounts", "6", "--workers", "12", "--state", state, "--log-dir", logs,
		"--ca-file", dv.CAFile, "--report", rep, "--stats", "200ms", "--timeout", "10s"}

	// Run 1: SIGKILL once some accounts are under way.
	kill, done := startKill(t, env, args...)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && !done() {
		if ents, _ := os.ReadDir(logs); len(ents) >= 8 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond)
	if done() {
		t.Log("the batch finished before the kill")
	}
	kill()

	// Run 2: resumes, finishes 18, reports 2.
	r := mf(t, env, args...)
	if r.code != 1 {
		t.Fatalf("second run: want exit 1\n%s", r)
	}
	br := readBatchReport(t, rep)
	if br.Totals.Accounts != 20 || br.Totals.OK != 18 || br.Totals.Failed != 2 {
		t.Fatalf("totals %+v, want 20 accounts, 18 OK, 2 failed\n%s", br.Totals, r)
	}
	for _, a := range br.Accounts {
		switch a.Line {
		case 20:
			if a.Status != "failed" || a.ExitCode != 3 || !strings.Contains(strings.ToLower(a.Reason), "auth") {
				t.Errorf("wrong password row: %+v", a)
			}
		case 21:
			if a.Status != "failed" || a.ExitCode != 3 || !strings.Contains(a.Reason, "127.0.0.1:1") {
				t.Errorf("unreachable row: %+v", a)
			}
		default:
			if a.Status != "ok" {
				t.Errorf("row %d: %+v", a.Line, a)
			}
		}
	}
	mustContain(t, r.stdout, "20 account(s): 18 OK, 2 failed")
	for dst, msgs := range want {
		checkReport(t, "batch "+dst, corpus.Compare(msgs, dv.Dump(t, dst), opts[dst]))
	}
	if ents, _ := os.ReadDir(logs); len(ents) != 20 {
		t.Errorf("--log-dir holds %d files, want one per account (20)", len(ents))
	}

	// Run 3: nothing to copy.
	r = mf(t, env, args...)
	if r.code != 1 {
		t.Fatalf("third run: want exit 1\n%s", r)
	}
	br = readBatchReport(t, rep)
	if br.Totals.Copied != 0 || br.Totals.OK != 18 {
		t.Fatalf("third run copied %d (OK %d), want 0 (18)\n%s", br.Totals.Copied, br.Totals.OK, r)
	}
	// The wrong password appears nowhere.
	for _, s := range []string{r.stdout, r.stderr} {
		if strings.Contains(s, wrong) {
			t.Errorf("output shows the password:\n%s", s)
		}
	}
	grepTree(t, dir, wrong)
}
