package checkpoint

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// millionRecord is a done record shaped like the engine's: an IMAP key
// (folder, UIDVALIDITY, UID), a planned name, the SHA-256 and Message-ID,
// and the target's receipt.
func millionRecord(i int) Record {
	folder := "Folder" + strconv.Itoa(i/100_000)
	uid := i%100_000 + 1
	return Record{
		Key:     folder + "\x1f1700000000\x1f" + strconv.Itoa(uid),
		Folder:  folder,
		Name:    fmt.Sprintf("1700000000.MF%020x.mailferry", i),
		Size:    int64(2000 + i%50_000),
		SHA256:  fmt.Sprintf("%064x", i*7919),
		MsgID:   fmt.Sprintf("<%d.%x@mail.example.com>", i, i*31),
		Receipt: "1700000001:" + strconv.Itoa(uid),
		Mark:    "1700000001:" + strconv.Itoa(uid-uid%128+1),
	}
}

// TestMillionThreeRuns measures, at 1,000,000 entries, the bytes of heap
// per entry of an open journal, the time to open it, and its size on disk
// after three runs: one that copies everything (intents in batches, then
// dones with receipts and flags) and two --sync-flags runs that rewrite
// every message's flags. It takes about a minute and 1.5 GB of disk, so it
// runs only with MAILFERRY_BIG_JOURNAL=1 (the directory in
// MAILFERRY_BIG_JOURNAL_DIR when set).
func TestMillionThreeRuns(t *testing.T) {
	if os.Getenv("MAILFERRY_BIG_JOURNAL") == "" {
		t.Skip("set MAILFERRY_BIG_JOURNAL=1 to run the 1M-entry measurement")
	}
	const n = 1_000_000
	dir := os.Getenv("MAILFERRY_BIG_JOURNAL_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else {
		dir, _ = os.MkdirTemp(dir, "million")
		defer os.RemoveAll(dir)
	}
	path := filepath.Join(dir, "journal")
	ctx := context.Background()
	size := func() int64 {
		var total int64
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if fi, err := e.Info(); err == nil {
				total += fi.Size()
			}
		}
		return total
	}
	openMeasured := func(run int) *Journal {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start, cpu0 := time.Now(), cpuTime()
		j := open(t, path)
		took, cpu := time.Since(start), cpuTime()-cpu0
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		used := int64(after.HeapInuse) - int64(before.HeapInuse)
		t.Logf("before run %d: journal %d MB on disk; Open %v wall, %v CPU; heap in use after GC +%d MB (%.1f B/entry for %d entries)",
			run, size()>>20, took.Round(time.Millisecond), cpu.Round(time.Millisecond), used>>20, float64(used)/float64(max(j.Len(), 1)), j.Len())
		return j
	}

	// Run 1: copy everything.
	j := openMeasured(1)
	const batch = 1024
	for lo := 0; lo < n; lo += batch {
		rs := make([]Record, 0, batch)
		for i := lo; i < lo+batch && i < n; i++ {
			r := millionRecord(i)
			r.Receipt = ""
			rs = append(rs, r)
		}
		if err := j.Intents(ctx, rs); err != nil {
			t.Fatal(err)
		}
		for i := lo; i < lo+batch && i < n; i++ {
			r := millionRecord(i)
			r.Mark, r.Flags = "", []string{`\Seen`}
			if err := j.Done(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	closeMeasured(t, j, 1)
	// Runs 2 and 3: --sync-flags rewrites every message's done record.
	for run, flags := range [][]string{{`\Seen`, `\Flagged`}, {`\Seen`, `\Answered`}} {
		j = openMeasured(run + 2)
		for i := 0; i < n; i++ {
			k := millionRecord(i).Key
			done, _, ok := j.Status(k)
			if !ok || !done {
				t.Fatalf("run %d: %q not done", run+2, k)
			}
			ent, _ := j.Get(k)
			if err := j.Done(Record{Key: k, Folder: ent.Folder, Name: ent.Name, Size: ent.Size, SHA256: ent.SHA256,
				MsgID: ent.MsgID, Receipt: ent.Receipt, Flags: flags}); err != nil {
				t.Fatal(err)
			}
		}
		closeMeasured(t, j, run+2)
	}
	j = openMeasured(4)
	defer j.Close()
	if j.Len() != n {
		t.Fatalf("Len = %d, want %d", j.Len(), n)
	}
	want := millionRecord(n - 1)
	e, ok := j.Get(want.Key)
	if !ok || !e.Done || e.Receipt != want.Receipt || e.SHA256 != want.SHA256 || len(e.Flags) != 2 || e.Flags[1] != `\Answered` {
		t.Errorf("last entry after three runs: %+v", e)
	}
	// A no-op re-run asks Status of every key.
	start := time.Now()
	for i := 0; i < n; i++ {
		if done, _, ok := j.Status(millionRecord(i).Key); !ok || !done {
			t.Fatal("lost", i)
		}
	}
	t.Logf("Status of %d keys (incl. building them): %v; journal after three runs %d MB", n, time.Since(start).Round(time.Millisecond), size()>>20)
	// What the engine does with Keys at start (validities and done counts
	// per folder), and the same from Prefixes.
	start = time.Now()
	perFolder := map[string]int{}
	j.Keys(func(k string, done bool) bool {
		if a := strings.Split(k, "\x1f"); len(a) == 3 && done {
			perFolder[a[0]+"\x1f"+a[1]]++
		}
		return true
	})
	tk := time.Since(start)
	start = time.Now()
	perFolder2 := map[string]int{}
	j.Prefixes(func(p string, done, _ int) bool { perFolder2[p] = done; return true })
	t.Logf("done counts per folder: with Keys %v, with Prefixes %v", tk.Round(time.Millisecond), time.Since(start).Round(time.Microsecond))
	if len(perFolder) != 10 || perFolder2["Folder9\x1f1700000000"] != 100_000 {
		t.Errorf("per folder: %v / %v", perFolder, perFolder2)
	}
}

func closeMeasured(t *testing.T, j *Journal, run int) {
	t.Helper()
	start, cpu0 := time.Now(), cpuTime()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("end of run %d: Close (with compaction when due) %v wall, %v CPU", run, time.Since(start).Round(time.Millisecond), (cpuTime() - cpu0).Round(time.Millisecond))
}
