package checkpoint

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func BenchmarkIntentGroupCommit(b *testing.B) {
	j := open(b, filepath.Join(b.TempDir(), "journal"))
	defer j.Close()
	var n atomic.Int64
	const writers = 8
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := n.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := j.Intent(context.Background(), testRecord(int(i))); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkDone(b *testing.B) {
	j := open(b, filepath.Join(b.TempDir(), "journal"))
	defer j.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := testRecord(i)
		r.Receipt = "1700000000:" + strconv.Itoa(i)
		if err := j.Done(r); err != nil {
			b.Fatal(err)
		}
	}
	if err := j.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// TestOpenMillion writes a journal of 1,000,000 intents and dones and
// measures Open (replay) time and memory. It takes ~10 s and 500 MB of
// disk, so it runs only with MAILFERRY_BIG_JOURNAL=1.
func TestOpenMillion(t *testing.T) {
	if os.Getenv("MAILFERRY_BIG_JOURNAL") == "" {
		t.Skip("set MAILFERRY_BIG_JOURNAL=1 to run the 1M-entry start-up measurement")
	}
	const n = 1_000_000
	path := filepath.Join(t.TempDir(), "journal")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var line []byte
	line = appendLine(line[:0], &Record{Op: opHeader})
	w.Write(line)
	flags := []string{`\Seen`}
	for i := 0; i < n; i++ {
		r := testRecord(i)
		r.Op = opIntent
		line = appendLine(line[:0], &r)
		w.Write(line)
		r.Op, r.Receipt, r.Flags = opDone, fmt.Sprintf("1700000000:%d", i), flags
		line = appendLine(line[:0], &r)
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	f.Close()

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM (Linux)
	start, cpu0 := time.Now(), cpuTime()
	j := open(t, path)
	took, cpu := time.Since(start), cpuTime()-cpu0
	runtime.ReadMemStats(&after)
	hwm := procStatus("VmHWM")
	runtime.GC()
	var live runtime.MemStats
	runtime.ReadMemStats(&live)
	defer j.Close()
	t.Logf("file %d MB; Open+replay of %d entries: %v wall, %v CPU; heap in use after GC %d MB (was %d MB); peak RSS %s; allocated during Open %d MB",
		fi.Size()>>20, n, took.Round(time.Millisecond), cpu.Round(time.Millisecond), live.HeapInuse>>20, before.HeapInuse>>20, hwm, (after.TotalAlloc-before.TotalAlloc)>>20)
	if j.Len() != n {
		t.Fatalf("Len = %d", j.Len())
	}
	if e, ok := j.Get(testRecord(n - 1).Key); !ok || !e.Done || e.Receipt != fmt.Sprintf("1700000000:%d", n-1) {
		t.Errorf("last entry: %+v", e)
	}
	// CPU time, not wall time: the machine may be shared.
	if cpu > 2*time.Second {
		t.Errorf("Open used %v of CPU, want < 2 s", cpu)
	}
	if d := (live.HeapInuse - before.HeapInuse) >> 20; d > 32 {
		t.Errorf("index uses %d MB, want < 32 MB", d)
	}
	start = time.Now()
	cnt := 0
	j.Range(func(string, Entry) bool { cnt++; return true })
	t.Logf("Range over %d entries: %v", cnt, time.Since(start))
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func procStatus(field string) string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			return strings.TrimSpace(strings.TrimPrefix(l, field+":"))
		}
	}
	return "?"
}
