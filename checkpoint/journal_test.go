package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
)

func testRecord(i int) Record {
	return Record{
		Key:    fmt.Sprintf("INBOX\x1f1700000000\x1f%d", i),
		Folder: "Archive/2024", Name: fmt.Sprintf("1700000000.MF%016xP3.mailferry", i),
		Size: int64(1000 + i), SHA256: fmt.Sprintf("%064x", i), MsgID: fmt.Sprintf("<%d.abc@example.com>", i),
	}
}

func open(t testing.TB, path string) *Journal {
	t.Helper()
	j, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return j
}

func TestReplayIntentDoneFlagsForget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "journal")
	ctx := context.Background()
	j := open(t, path)
	for i := 0; i < 5; i++ {
		if err := j.Intent(ctx, testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		r := testRecord(i)
		r.Receipt = fmt.Sprintf("42:%d", i)
		r.Flags = []string{`\Seen`}
		if err := j.Done(r); err != nil {
			t.Fatal(err)
		}
	}
	// A done with only key and receipt is completed from the intent.
	if err := j.Done(Record{Key: testRecord(3).Key, Receipt: "42:3"}); err != nil {
		t.Fatal(err)
	}
	if err := j.SetFlags(testRecord(1).Key, []string{`\Seen`, `\Flagged`, "$Work"}); err != nil {
		t.Fatal(err)
	}
	if err := j.Forget(testRecord(2).Key); err != nil {
		t.Fatal(err)
	}
	if err := j.SetFlags("nope", nil); err == nil {
		t.Error("SetFlags of an unknown key succeeded")
	}
	check := func(j *Journal) {
		t.Helper()
		if j.Len() != 4 {
			t.Errorf("Len = %d, want 4", j.Len())
		}
		tests := []struct {
			i       int
			ok      bool
			done    bool
			receipt string
			flags   []string
		}{
			{0, true, true, "42:0", []string{`\Seen`}},
			{1, true, true, "42:1", []string{`\Seen`, `\Flagged`, "$Work"}},
			{2, false, false, "", nil},
			{3, true, true, "42:3", nil},
			{4, true, false, "", nil},
			{5, false, false, "", nil},
		}
		for _, tt := range tests {
			want := testRecord(tt.i)
			e, ok := j.Get(want.Key)
			if ok != tt.ok {
				t.Errorf("%d: ok = %v, want %v", tt.i, ok, tt.ok)
				continue
			}
			if !ok {
				continue
			}
			if e.Done != tt.done || e.Receipt != tt.receipt || !slices.Equal(e.Flags, tt.flags) {
				t.Errorf("%d: got done=%v receipt=%q flags=%q", tt.i, e.Done, e.Receipt, e.Flags)
			}
			if e.Folder != want.Folder || e.Name != want.Name || e.Size != want.Size || e.SHA256 != want.SHA256 || e.MsgID != want.MsgID {
				t.Errorf("%d: fields %+v, want %+v", tt.i, e, want)
			}
		}
		var keys, keys2 []string
		j.Range(func(k string, e Entry) bool { keys = append(keys, k); return true })
		j.Keys(func(k string, done bool) bool {
			if e, _ := j.idx.get(bytesOf(k)), 0; !e.ok() || done != (e.state() == stateDone) {
				t.Errorf("Keys: %q done=%v", k, done)
			}
			keys2 = append(keys2, k)
			return true
		})
		if !slices.Equal(keys, keys2) {
			t.Errorf("Keys = %q, Range keys = %q", keys2, keys)
		}
		if want := []string{testRecord(0).Key, testRecord(1).Key, testRecord(3).Key, testRecord(4).Key}; !slices.Equal(keys, want) {
			t.Errorf("Range keys = %q, want %q", keys, want)
		}
	}
	check(j) // from memory buffers or the file
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = open(t, path)
	defer j.Close()
	check(j) // replayed
	if j.Truncated() != 0 {
		t.Errorf("Truncated = %d", j.Truncated())
	}
	// Forgetting and re-adding a key.
	if err := j.Intent(ctx, testRecord(2)); err != nil {
		t.Fatal(err)
	}
	if e, ok := j.Get(testRecord(2).Key); !ok || e.Done {
		t.Errorf("re-added key: ok=%v done=%v", ok, e.Done)
	}
}

// writeJournal writes n intents (and dones for the even ones) and returns
// the file's bytes.
func writeJournal(t *testing.T, path string, n int) []byte {
	t.Helper()
	j := open(t, path)
	for i := 0; i < n; i++ {
		if err := j.Intent(context.Background(), testRecord(i)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			r := testRecord(i)
			r.Receipt = "r"
			if err := j.Done(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTornLastLineAtEveryOffset(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal")
	full := writeJournal(t, path, 3) // last line: intent of 2? no: done of 2
	last := bytes.LastIndexByte(full[:len(full)-1], '\n') + 1
	lastKey := testRecord(2).Key
	for cut := last; cut < len(full); cut++ {
		if err := os.WriteFile(path, full[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		j, err := Open(path)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if got, want := j.Truncated(), int64(cut-last); got != want {
			t.Errorf("cut at %d: Truncated = %d, want %d", cut, got, want)
		}
		// The last line was the done of key 2: its intent survives.
		if e, ok := j.Get(lastKey); !ok || e.Done {
			t.Errorf("cut at %d: entry ok=%v done=%v, want the intent only", cut, ok, e.Done)
		}
		if fi, _ := os.Stat(path); fi.Size() != int64(last) {
			t.Errorf("cut at %d: size %d after Open, want %d", cut, fi.Size(), last)
		}
		r := testRecord(2)
		r.Receipt = "again"
		if err := j.Done(r); err != nil {
			t.Fatal(err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		j = open(t, path)
		if e, ok := j.Get(lastKey); !ok || !e.Done || e.Receipt != "again" {
			t.Errorf("cut at %d: after re-append: %+v %v", cut, e, ok)
		}
		j.Close()
	}
}

func TestTornHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	if err := os.WriteFile(path, []byte(`{"op":"v1","k`), 0o600); err != nil {
		t.Fatal(err)
	}
	j := open(t, path)
	if err := j.Intent(context.Background(), testRecord(1)); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = open(t, path)
	defer j.Close()
	if _, ok := j.Get(testRecord(1).Key); !ok || j.Len() != 1 {
		t.Errorf("entry lost after a torn header")
	}
}

func TestDamage(t *testing.T) {
	dir := t.TempDir()
	base := writeJournal(t, filepath.Join(dir, "base"), 4)
	lines := bytes.SplitAfter(base, []byte("\n"))
	lines = lines[:len(lines)-1] // empty after the final \n
	flip := func(l []byte) []byte {
		l = bytes.Clone(l)
		l[5] ^= 0x20
		return l
	}
	n := len(lines)
	tests := []struct {
		name      string
		data      [][]byte
		wantErr   string // "" = opens
		truncated bool
		wantLen   int
	}{
		{"bad checksum on last line", append(slices.Clone(lines[:n-1]), flip(lines[n-1])), "", true, 3},
		{"zeros after the last line", append(slices.Clone(lines), make([]byte, 300)), "", true, 4},
		{"garbage then partial", append(slices.Clone(lines), []byte("xx\n"), []byte(`{"op":"in`)), "", true, 4},
		{"corruption in the middle", append(append(slices.Clone(lines[:2]), flip(lines[2])), lines[3:]...), "line 3", false, 0},
		{"not a journal", [][]byte{lines[1]}, "not a mailferry journal", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			data := bytes.Join(tt.data, nil)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			j, err := Open(path)
			if tt.wantErr != "" {
				if err == nil {
					j.Close()
					t.Fatalf("Open succeeded, want an error with %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not mention %q", err, tt.wantErr)
				}
				after, _ := os.ReadFile(path)
				if !bytes.Equal(after, data) {
					t.Error("a refused journal was modified")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if (j.Truncated() > 0) != tt.truncated {
				t.Errorf("Truncated = %d", j.Truncated())
			}
			if j.Len() != tt.wantLen {
				t.Errorf("Len = %d, want %d", j.Len(), tt.wantLen)
			}
		})
	}
}

func TestLockAndMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "job")
	path := filepath.Join(dir, "journal")
	j := open(t, path)
	_, err := Open(path)
	if err == nil {
		t.Fatal("second Open of the same journal succeeded")
	}
	// The message names the process that holds the journal (issue 13).
	if want := fmt.Sprintf("another mailferry run (pid %d) is using %s", os.Getpid(), path); !strings.Contains(err.Error(), want) || !failure.Is(err, failure.Config) {
		t.Errorf("second Open: %v (kind %v)", err, failure.KindOf(err))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode %v, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(dir)
	if di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", di.Mode().Perm())
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Intent(context.Background(), testRecord(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Intent after Close: %v", err)
	}
	j2, err := Open(path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	j2.Close()
}

func TestConcurrentIntents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j := open(t, path)
	ctx := context.Background()
	const workers, per = 16, 50
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				r := testRecord(w*per + i)
				if err := j.Intent(ctx, r); err != nil {
					t.Error(err)
					return
				}
				// Durable: the bytes are in the file now.
				if e, ok := j.Get(r.Key); !ok || e.SHA256 != r.SHA256 {
					t.Errorf("Get after Intent: %+v %v", e, ok)
				}
				r.Receipt = "x"
				if err := j.Done(r); err != nil {
					t.Error(err)
				}
				if i%10 == 0 {
					j.Range(func(string, Entry) bool { return false })
					_ = j.Len()
				}
			}
		}()
	}
	wg.Wait()
	if err := j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	syncs := j.syncs
	j.mu.Unlock()
	t.Logf("%d intents from %d goroutines in %d fsyncs", workers*per, workers, syncs)
	if syncs >= workers*per {
		t.Errorf("no group commit: %d fsyncs for %d intents", syncs, workers*per)
	}
	j.Close()
	j = open(t, path)
	defer j.Close()
	if j.Len() != workers*per {
		t.Fatalf("Len = %d, want %d", j.Len(), workers*per)
	}
	n := 0
	j.Range(func(k string, e Entry) bool {
		if !e.Done || e.Receipt != "x" {
			t.Errorf("%q: %+v", k, e)
		}
		n++
		return true
	})
	if n != workers*per {
		t.Errorf("Range saw %d", n)
	}
}

func TestIntentIsDurableBeforeReturn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j := open(t, path)
	defer j.Close()
	r := testRecord(7)
	if err := j.Intent(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !bytes.Contains(b, []byte(r.SHA256)) {
		t.Error("intent not in the file when Intent returned")
	}
	// A queued done reaches the file within the commit interval.
	r.Receipt = "queued-receipt"
	if err := j.Done(r); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte("queued-receipt")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("queued done never written")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLossless8BitKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j := open(t, path)
	keys := []string{"Entw\xfcrfe\x1f1\x1f7", "INBOX\x1f1\x1f\xff\xfe", "Ä/é\x1f2\x1f\"q\\", "x\x00y", "\xed\xb3\x80"}
	for _, k := range keys {
		if err := j.Intent(context.Background(), Record{Key: k, MsgID: "<\xe9@x>", Flags: []string{"\xe4"}}); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	j = open(t, path)
	defer j.Close()
	for _, k := range keys {
		e, ok := j.Get(k)
		if !ok || e.MsgID != "<\xe9@x>" || !slices.Equal(e.Flags, []string{"\xe4"}) {
			t.Errorf("%q: %+v %v", k, e, ok)
		}
	}
}

func TestJobIDAndDefaultDir(t *testing.T) {
	a, b := JobID("pop3://u@h", "maildir:/x"), JobID("pop3://u@h", "maildir:/y")
	if a == b || len(a) != 16 || a != JobID("pop3://u@h", "maildir:/x") || JobID("ab", "c") == JobID("a", "bc") {
		t.Errorf("JobID: %q %q", a, b)
	}
	t.Setenv("XDG_STATE_HOME", "/xdg")
	if d := DefaultDir(); d != "/xdg/mailferry" {
		t.Errorf("DefaultDir = %q", d)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d := DefaultDir(); d != "/home/u/.local/state/mailferry" {
		t.Errorf("DefaultDir = %q", d)
	}
}
