package checkpoint

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKill9 runs a child process that records intents (and dones) as fast as
// it can and prints each key once Intent returned; the parent SIGKILLs it
// at varying moments and checks that every acknowledged intent survives
// and that the journal reopens and accepts new records.
func TestKill9(t *testing.T) {
	if os.Getenv("MAILFERRY_JOURNAL_CHILD") != "" {
		journalChild()
		return
	}
	path := filepath.Join(t.TempDir(), "journal")
	total := 0
	for round, wait := range []int{1, 7, 23, 60, 150} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
		cmd.Env = append(os.Environ(), "MAILFERRY_JOURNAL_CHILD="+path, fmt.Sprintf("MAILFERRY_JOURNAL_ROUND=%d", round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var acked []string
		sc := bufio.NewScanner(out)
		for len(acked) < wait && sc.Scan() {
			acked = append(acked, sc.Text())
		}
		cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() { // acks printed before the kill landed
			acked = append(acked, sc.Text())
		}
		cmd.Wait()
		if len(acked) < wait {
			t.Fatalf("round %d: child acknowledged only %d intents", round, len(acked))
		}
		j, err := Open(path)
		if err != nil {
			t.Fatalf("round %d: Open after kill -9: %v", round, err)
		}
		for _, k := range acked {
			if _, ok := j.Get(k); !ok {
				t.Errorf("round %d: acknowledged intent %q lost", round, k)
			}
		}
		total += len(acked)
		if j.Len() < total {
			t.Errorf("round %d: Len = %d, want >= %d", round, j.Len(), total)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func journalChild() {
	path := os.Getenv("MAILFERRY_JOURNAL_CHILD")
	round := os.Getenv("MAILFERRY_JOURNAL_ROUND")
	var j *Journal
	var err error
	for i := 0; i < 100; i++ { // the parent's Close may still be releasing the lock
		if j, err = Open(path); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		r := testRecord(i)
		r.Key = "r" + round + "/" + r.Key
		if err := j.Intent(context.Background(), r); err != nil {
			os.Exit(1)
		}
		fmt.Fprintln(w, r.Key)
		w.Flush()
		r.Receipt = strings.Repeat("x", i%300)
		j.Done(r)
	}
}

func TestWriteFailureIsSticky(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "journal"))
	ctx := context.Background()
	if err := j.Intent(ctx, testRecord(1)); err != nil {
		t.Fatal(err)
	}
	j.f.Close() // make the next write fail
	err := j.Intent(ctx, testRecord(2))
	if err == nil {
		t.Fatal("Intent succeeded on a failed file")
	}
	if err := j.Done(testRecord(3)); err == nil {
		t.Error("Done accepted after a write failure")
	}
	if err := j.Sync(ctx); err == nil {
		t.Error("Sync succeeded after a write failure")
	}
	if err := j.Close(); err == nil {
		t.Error("Close reported no error after a write failure")
	}
}

func TestIntentContext(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "journal"))
	defer j.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := j.Intent(ctx, testRecord(1))
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Intent with a cancelled context: %v", err)
	}
	if err := j.Intent(context.Background(), Record{}); err == nil {
		t.Error("Intent without a key succeeded")
	}
	if err := j.Intent(context.Background(), Record{Key: "k", Flags: []string{"a\x00b"}}); err == nil {
		t.Error("flag with NUL accepted")
	}
}
