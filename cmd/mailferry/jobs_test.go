package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/checkpoint"
)

func jobsMsg(i int) string {
	return fmt.Sprintf("Message-ID: <j%02d@test>\r\n\r\nbody %02d\r\n", i, i)
}

// TestJobsListAndForget: "mailferry jobs" lists each job of the state
// directory with its source, target, counts and whether a run holds it;
// "jobs forget" removes an idle job and refuses a running one, naming its
// PID.
func TestJobsListAndForget(t *testing.T) {
	state := t.TempDir()
	src := maildirWith(t, map[string]string{"a:2,S": jobsMsg(1), "b:2,": jobsMsg(2), "c:2,": jobsMsg(3)})
	tgt := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"migrate", "--no-progress", "-q", "--state", state, "maildir:" + src, "maildir:" + tgt}, &out, &errb); code != exitOK {
		t.Fatalf("migrate: exit %d: %s", code, errb.String())
	}
	idle := checkpoint.JobID("maildir:"+src, "maildir:"+tgt, "")
	// A second job, "running": this process holds its journal.
	tgt2 := t.TempDir()
	j, _, err := openJournal(state, false, "maildir:"+src, "maildir:"+tgt2, "Archive")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Intent(context.Background(), checkpoint.Record{Key: "INBOX\x1f0\x1fa", Folder: "Archive"}); err != nil {
		t.Fatal(err)
	}
	busy := checkpoint.JobID("maildir:"+src, "maildir:"+tgt2, "Archive")
	os.MkdirAll(filepath.Join(state, "not-a-job"), 0o700)

	out.Reset()
	errb.Reset()
	if code := runJobs(context.Background(), []string{"--state", state}, &out, &errb); code != exitOK {
		t.Fatalf("jobs: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{
		"ID", "LAST RUN", idle, busy, "maildir:" + src + " -> maildir:" + tgt + "\n",
		"maildir:" + src + " -> maildir:" + tgt2 + " (into Archive)",
		fmt.Sprintf("running (pid %d)", os.Getpid()), "idle",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("jobs output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "not-a-job") {
		t.Errorf("jobs lists a directory that is no job:\n%s", out.String())
	}

	out.Reset()
	if code := runJobs(context.Background(), []string{"--json", "--state", state}, &out, &errb); code != exitOK {
		t.Fatalf("jobs --json: exit %d: %s", code, errb.String())
	}
	var list []jobInfo
	if err := json.Unmarshal(out.Bytes(), &list); err != nil {
		t.Fatalf("jobs --json: %v\n%s", err, out.String())
	}
	got := map[string]jobInfo{}
	for _, ji := range list {
		got[ji.ID] = ji
	}
	if ji := got[idle]; ji.Done != 3 || ji.Pending != 0 || ji.Running || ji.Source != "maildir:"+src || ji.LastRun.IsZero() {
		t.Errorf("idle job: %+v", ji)
	}
	if ji := got[busy]; ji.Done != 0 || ji.Pending != 1 || !ji.Running || ji.PID != os.Getpid() || ji.ToFolder != "Archive" {
		t.Errorf("running job: %+v", ji)
	}
	if len(list) != 2 {
		t.Errorf("%d jobs listed, want 2", len(list))
	}

	// forget: refused while running, done when idle, bad IDs refused.
	out.Reset()
	errb.Reset()
	code := runJobs(context.Background(), []string{"forget", "--state", state, busy}, &out, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("forget of a running job: exit %d, stderr %q", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(state, busy, "journal")); err != nil {
		t.Errorf("the running job's journal is gone: %v", err)
	}
	out.Reset()
	errb.Reset()
	if code := runJobs(context.Background(), []string{"forget", "--state", state, idle}, &out, &errb); code != exitOK {
		t.Errorf("forget: exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(state, idle)); !os.IsNotExist(err) {
		t.Errorf("forgotten job's directory still there: %v", err)
	}
	for _, bad := range []string{"../" + busy, "nope", idle} {
		errb.Reset()
		if code := runJobs(context.Background(), []string{"forget", "--state", state, bad}, &out, &errb); code != exitUsage {
			t.Errorf("forget %q: exit %d, want %d", bad, code, exitUsage)
		}
	}
	if code := runJobs(context.Background(), []string{"forget", "--state", state}, &out, &errb); code != exitUsage {
		t.Errorf("forget without an ID: exit %d", code)
	}
	// The next run of the forgotten job finds its copies in the target.
	out.Reset()
	if code := run([]string{"migrate", "--no-progress", "-q", "--state", state, "maildir:" + src, "maildir:" + tgt}, &out, &errb); code != exitOK {
		t.Fatalf("migrate after forget: exit %d: %s", code, errb.String())
	}
	n, _ := filepath.Glob(filepath.Join(tgt, "cur", "*"))
	if len(n) != 3 {
		t.Errorf("target holds %d messages after a run without journal, want 3", len(n))
	}
}

// TestSecondRunRefusedWithPID: a run of a job that another run holds is
// refused with that run's PID.
func TestSecondRunRefusedWithPID(t *testing.T) {
	state := t.TempDir()
	src := maildirWith(t, map[string]string{"a:2,S": jobsMsg(1)})
	tgt := t.TempDir()
	j, _, err := openJournal(state, false, "maildir:"+src, "maildir:"+tgt, "")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var out, errb bytes.Buffer
	code := run([]string{"migrate", "--no-progress", "--state", state, "maildir:" + src, "maildir:" + tgt}, &out, &errb)
	if want := fmt.Sprintf("another mailferry run (pid %d) is using", os.Getpid()); code != exitUsage || !strings.Contains(errb.String(), want) {
		t.Errorf("second run: exit %d, stderr %q; want exit %d and %q", code, errb.String(), exitUsage, want)
	}
}

// TestPlanBesideRunningJob: plan reads the journal without its lock, so it
// works while the job runs, and counts what the journal holds.
func TestPlanBesideRunningJob(t *testing.T) {
	state := t.TempDir()
	src := maildirWith(t, map[string]string{"a:2,S": jobsMsg(1), "b:2,": jobsMsg(2)})
	tgt := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"migrate", "--no-progress", "-q", "--state", state, "maildir:" + src, "maildir:" + tgt}, &out, &errb); code != exitOK {
		t.Fatalf("migrate: exit %d: %s", code, errb.String())
	}
	if err := os.WriteFile(filepath.Join(src, "cur", "c:2,"), []byte(jobsMsg(3)), 0o600); err != nil {
		t.Fatal(err)
	}
	j, _, err := openJournal(state, false, "maildir:"+src, "maildir:"+tgt, "")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	out.Reset()
	errb.Reset()
	if code := run([]string{"plan", "--no-progress", "--state", state, "maildir:" + src, "maildir:" + tgt}, &out, &errb); code != exitOK {
		t.Fatalf("plan beside a running job: exit %d: %s", code, errb.String())
	}
	// 3 messages, 2 done (from the journal), 1 to copy.
	if !regexp.MustCompile(`INBOX\s+INBOX\s+3\s+105 B\s+2\s+1\s`).MatchString(out.String()) {
		t.Errorf("plan output does not say 2 done and 1 to copy:\n%s", out.String())
	}
	// A plan of a job that never ran creates no state.
	other := t.TempDir()
	if code := run([]string{"plan", "--no-progress", "--state", state, "maildir:" + src, "maildir:" + other}, &out, &errb); code != exitOK {
		t.Fatalf("plan of a new job: exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(state, checkpoint.JobID("maildir:"+src, "maildir:"+other, ""))); !os.IsNotExist(err) {
		t.Errorf("plan created state for a new job: %v", err)
	}
}
