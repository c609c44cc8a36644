package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dump is everything a journal answers: Len, and Range's keys and entries
// in order, with Status of each.
func dump(t *testing.T, j *Journal) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "len %d\n", j.Len())
	j.Range(func(k string, e Entry) bool {
		done, flags, ok := j.Status(k)
		fmt.Fprintf(&b, "%q %+v status %v %q %v\n", k, e, done, flags, ok)
		return true
	})
	return b.String()
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// fillForCompaction writes keys of every kind through every record type:
// intents, dones (some completed from the intent), flags, forgets, a key
// forgotten and recorded again; ids numeric, textual and 8-bit. Each live
// key leaves several superseded records.
func fillForCompaction(t *testing.T, j *Journal, n int) {
	t.Helper()
	ctx := context.Background()
	key := func(i int) string {
		switch i % 4 {
		case 0:
			return "INBOX\x1f1700000000\x1f" + strconv.Itoa(i)
		case 1:
			return "Sent\x1f0\x1fUIDL-" + strconv.Itoa(i)
		case 2:
			return "caf\xe9\x1f7\x1f0" + strconv.Itoa(i) // leading zero: kept as bytes
		}
		return "plain-" + strconv.Itoa(i)
	}
	var rs []Record
	for i := 0; i < n; i++ {
		r := testRecord(i)
		r.Key, r.Mark = key(i), "9:"+strconv.Itoa(i)
		rs = append(rs, r)
	}
	if err := j.Intents(ctx, rs); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		switch i % 5 {
		case 0: // intent only
		case 1:
			if err := j.Done(Record{Key: key(i), Receipt: "1:" + strconv.Itoa(i), Flags: []string{`\Seen`}}); err != nil {
				t.Fatal(err)
			}
		default:
			r := rs[i]
			r.Receipt, r.Mark, r.Flags = "2:"+strconv.Itoa(i), "", []string{`\Seen`, "$Label" + strconv.Itoa(i%3)}
			if err := j.Done(r); err != nil {
				t.Fatal(err)
			}
		}
		switch i % 7 {
		case 0:
			if err := j.SetFlags(key(i), []string{`\Flagged`, `\Answered`}); err != nil {
				t.Fatal(err)
			}
		case 1:
			if err := j.SetFlags(key(i), nil); err != nil {
				t.Fatal(err)
			}
		case 2:
			if err := j.Forget(key(i)); err != nil {
				t.Fatal(err)
			}
		case 3:
			if err := j.Forget(key(i)); err != nil {
				t.Fatal(err)
			}
			r := rs[i]
			r.Name = "again"
			if err := j.Intent(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCompactKeepsState(t *testing.T) {
	defer func(m int64, b int) { compactMin, compactBuf = m, b }(compactMin, compactBuf)
	compactMin, compactBuf = 1, 512
	path := filepath.Join(t.TempDir(), "journal")
	j := open(t, path)
	fillForCompaction(t, j, 500)
	want := dump(t, j)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = open(t, path)
	if got := dump(t, j); got != want {
		t.Fatalf("after compaction:\n%s\nwant:\n%s", got, want)
	}
	if n, live := countLines(t, path), j.Len(); n != live+1 {
		t.Errorf("compacted journal has %d lines for %d keys, want one each and the header", n, live)
	}
	if _, err := os.Stat(path + compactSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
	// The tail grows after the snapshot and a second compaction folds it in.
	fillForCompaction(t, j, 700)
	want = dump(t, j)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = open(t, path)
	defer j.Close()
	if got := dump(t, j); got != want {
		t.Fatalf("after the second compaction:\n%s\nwant:\n%s", got, want)
	}
	if n, live := countLines(t, path), j.Len(); n != live+1 {
		t.Errorf("compacted journal has %d lines for %d keys", n, live)
	}
}

// TestCompactAtOpenThenAppend: a journal that was never closed cleanly with
// much garbage is compacted at Open, and records appended afterwards land
// in the new file.
func TestCompactAtOpenThenAppend(t *testing.T) {
	defer func(m int64) { compactMin = m }(compactMin)
	compactMin = 1 << 62 // prepare without compacting
	path := filepath.Join(t.TempDir(), "journal")
	j := open(t, path)
	fillForCompaction(t, j, 300)
	for i := 0; i < 300; i++ { // one more done per key: garbage >= 2x the keys
		if s, _, ok := j.Status(testRecord(i).Key); ok && s {
			j.Done(testRecord(i))
		}
	}
	want := dump(t, j)
	j.Close()
	compactMin = 1
	before := countLines(t, path)
	j = open(t, path)
	if n := countLines(t, path); n != j.Len()+1 || n >= before {
		t.Errorf("Open did not compact: %d lines (were %d) for %d keys", n, before, j.Len())
	}
	if got := dump(t, j); got != want {
		t.Fatalf("after compaction at Open:\n%s\nwant:\n%s", got, want)
	}
	r := testRecord(100000)
	if err := j.Intent(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if e, ok := j.Get(r.Key); !ok || e.SHA256 != r.SHA256 {
		t.Errorf("Get after an intent on the compacted journal: %+v %v", e, ok)
	}
	want = dump(t, j)
	compactMin = 1 << 62
	j.Close()
	j = open(t, path)
	defer j.Close()
	if got := dump(t, j); got != want {
		t.Fatalf("reopened:\n%s\nwant:\n%s", got, want)
	}
}

// TestCompactKill9 kills a process at each point of a compaction (before
// and after each buffer written, the fsync, the rename, the directory
// fsync) and checks that the journal opens to the same state every time.
func TestCompactKill9(t *testing.T) {
	if p := os.Getenv("MAILFERRY_COMPACT_CHILD"); p != "" {
		compactChild(p, os.Getenv("MAILFERRY_COMPACT_KILL"))
		return
	}
	defer func(m int64) { compactMin = m }(compactMin)
	compactMin = 1 << 62
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig")
	j := open(t, orig)
	fillForCompaction(t, j, 400)
	want := dump(t, j)
	j.Close()
	data, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	points := []string{"create", "synced", "renamed", "dirsynced", "done"}
	for n := 1; n <= 40; n++ {
		points = append(points, "write#"+strconv.Itoa(n))
	}
	killed := 0
	for _, point := range points {
		path := filepath.Join(dir, strings.ReplaceAll(point, "#", "-"), "journal")
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCompactKill9$")
		cmd.Env = append(os.Environ(), "MAILFERRY_COMPACT_CHILD="+path, "MAILFERRY_COMPACT_KILL="+point)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled():
			killed++
		case err != nil:
			t.Fatalf("%s: child: %v\n%s", point, err, out)
		case strings.HasPrefix(point, "write#"):
			// Fewer writes than that: the compaction finished.
		default:
			t.Fatalf("%s: the child was not killed\n%s", point, out)
		}
		compactMin = 1 << 62
		j := open(t, path)
		if got := dump(t, j); got != want {
			t.Fatalf("killed at %s: reopened to\n%s\nwant\n%s", point, got, want)
		}
		if _, err := os.Stat(path + compactSuffix); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("killed at %s: temporary file left after Open: %v", point, err)
		}
		compactMin = 1
		j.Close() // compacts (again)
		j = open(t, path)
		if got := dump(t, j); got != want {
			t.Fatalf("killed at %s, compacted again: reopened to\n%s\nwant\n%s", point, got, want)
		}
		j.Close()
	}
	t.Logf("%d kill points reached", killed)
	if killed < 8 {
		t.Errorf("only %d kill points reached", killed)
	}
}

func compactChild(path, point string) {
	compactMin, compactBuf = 1, 4096
	seen := map[string]int{}
	compactHook = func(p string) {
		seen[p]++
		if p == point || p+"#"+strconv.Itoa(seen[p]) == point {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	j, err := Open(path) // compacts: much more garbage than keys
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := j.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("compaction done; writes:", seen["write"])
	os.Exit(0)
}

// TestOpenReadOnlyBesideRun: a read-only open beside a running job takes no
// lock, sees what the job made durable, refuses to record, and creates
// nothing when there is no journal.
func TestOpenReadOnlyBesideRun(t *testing.T) {
	dir := t.TempDir()
	ro, err := OpenReadOnly(filepath.Join(dir, "none", "journal"))
	if err != nil {
		t.Fatalf("OpenReadOnly of a missing journal: %v", err)
	}
	if ro.Len() != 0 {
		t.Errorf("Len = %d", ro.Len())
	}
	if err := ro.Done(testRecord(1)); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Done on a read-only journal: %v", err)
	}
	ro.Close()
	if _, err := os.Stat(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly created the state directory: %v", err)
	}

	path := filepath.Join(dir, "journal")
	j := open(t, path)
	defer j.Close()
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if err := j.Intent(ctx, testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	r := testRecord(3)
	r.Receipt, r.Flags = "7:3", []string{`\Seen`}
	j.Done(r)
	j.Sync(ctx)
	pid, locked, err := Holder(path)
	if err != nil || !locked || pid != os.Getpid() {
		t.Errorf("Holder = %d, %v, %v; want our pid, locked", pid, locked, err)
	}
	ro, err = OpenReadOnly(path)
	if err != nil {
		t.Fatalf("OpenReadOnly beside a run: %v", err)
	}
	if ro.Len() != 10 {
		t.Errorf("read-only Len = %d, want 10", ro.Len())
	}
	if e, ok := ro.Get(r.Key); !ok || !e.Done || e.Receipt != "7:3" || len(e.Flags) != 1 {
		t.Errorf("read-only Get = %+v, %v", e, ok)
	}
	for name, err := range map[string]error{
		"Intent":   ro.Intent(ctx, testRecord(20)),
		"SetFlags": ro.SetFlags(r.Key, nil),
		"Forget":   ro.Forget(r.Key),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s on a read-only journal: %v", name, err)
		}
	}
	if err := ro.Sync(ctx); err != nil {
		t.Errorf("Sync on a read-only journal: %v", err)
	}
	// The run goes on writing; the reader keeps its view.
	if err := j.Intent(ctx, testRecord(11)); err != nil {
		t.Fatal(err)
	}
	if err := ro.Close(); err != nil {
		t.Error(err)
	}
	j.Close()
	if _, locked, _ := Holder(path); locked {
		t.Error("Holder: still locked after Close")
	}
}

func TestRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j := open(t, path)
	if err := j.Intent(context.Background(), testRecord(1)); err != nil {
		t.Fatal(err)
	}
	err := Remove(path)
	if want := fmt.Sprintf("(pid %d)", os.Getpid()); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Remove of a journal in use: %v, want a refusal naming %s", err, want)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the refused Remove removed the journal: %v", err)
	}
	j.Close()
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".lock"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if err := Remove(path); err != nil {
		t.Errorf("Remove of a missing journal: %v", err)
	}
}

// TestTornTailAfterCompaction: the tail appended to a snapshot is cut at a
// torn line like any journal's.
func TestTornTailAfterCompaction(t *testing.T) {
	defer func(m int64) { compactMin = m }(compactMin)
	compactMin = 1
	path := filepath.Join(t.TempDir(), "journal")
	j := open(t, path)
	fillForCompaction(t, j, 200)
	j.Close() // compacts
	j = open(t, path)
	want := dump(t, j)
	compactMin = 1 << 62
	r := testRecord(5000)
	if err := j.Intent(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	j.Close()
	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()-7); err != nil { // tear the intent's line
		t.Fatal(err)
	}
	j = open(t, path)
	defer j.Close()
	if j.Truncated() == 0 {
		t.Error("no torn tail reported")
	}
	if got := dump(t, j); got != want {
		t.Fatalf("after a torn tail:\n%s\nwant:\n%s", got, want)
	}
}

// TestOpenWaitsOutAListing: "mailferry jobs" looks at a journal's lock (a
// shared lock for an instant); a run that starts at that instant waits
// rather than being refused.
func TestOpenWaitsOutAListing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j := open(t, path)
	j.Close()
	lf, err := os.OpenFile(path+".lock", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := lockShared(lf); err != nil {
		t.Fatal(err)
	}
	if _, locked, err := Holder(path); err != nil || locked {
		t.Errorf("Holder beside another shared lock: locked %v, %v", locked, err)
	}
	go func() {
		time.Sleep(60 * time.Millisecond)
		lf.Close()
	}()
	j, err = Open(path)
	if err != nil {
		t.Fatalf("Open while a listing looks: %v", err)
	}
	j.Close()
}
