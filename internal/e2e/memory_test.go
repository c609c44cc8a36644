package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

// TestScaleMemory measures peak RSS, the largest heap the GC saw, the
// number of GC cycles and the copy rate of a first IMAP → Maildir run, for
// each size in MAILFERRY_SCALE_MEM (comma-separated message counts; skipped
// when unset). MAILFERRY_SCALE_BIN adds another binary (a build of an older
// commit, say) measured on the same loaded account, for before/after
// figures (MAILFERRY_SCALE_BIN_FIRST=1 runs it first). MAILFERRY_SCALE_ARGS adds flags to every run (e.g. "--memory
// 64M"). With MAILFERRY_SCALE_MAXRSS=MB, a run of this tree's binary whose
// peak RSS exceeds MB fails the test.
func TestScaleMemory(t *testing.T) {
	spec := os.Getenv("MAILFERRY_SCALE_MEM")
	if spec == "" {
		t.Skip("set MAILFERRY_SCALE_MEM=5000,50000 to measure memory at those sizes")
	}
	bins := []struct{ name, path string }{{"this tree", binary}}
	if b := os.Getenv("MAILFERRY_SCALE_BIN"); b != "" {
		bins = append(bins, struct{ name, path string }{"MAILFERRY_SCALE_BIN", b})
		if os.Getenv("MAILFERRY_SCALE_BIN_FIRST") != "" {
			// The first run after a load also warms the server's caches.
			bins[0], bins[1] = bins[1], bins[0]
		}
	}
	extra := strings.Fields(os.Getenv("MAILFERRY_SCALE_ARGS"))
	maxRSS, _ := strconv.Atoi(os.Getenv("MAILFERRY_SCALE_MAXRSS"))
	dv := dovecottest.Start(t, dovecottest.Options{})
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			t.Fatalf("MAILFERRY_SCALE_MEM: bad size %q", f)
		}
		start := time.Now()
		dv.Load(t, "src", smallCorpus(n))
		t.Logf("%d messages loaded in %v", n, time.Since(start).Round(time.Millisecond))
		for _, b := range bins {
			m := measureRun(t, b.path, append([]string{"migrate", "imap://src@" + dv.IMAP, "maildir:" + filepath.Join(t.TempDir(), "Maildir"),
				"--ca-file", dv.CAFile, "--state", t.TempDir()}, extra...))
			if m.copied != n {
				t.Fatalf("%s, %d messages: copied %d\n%s", b.name, n, m.copied, m.stderrTail)
			}
			t.Logf("%s, IMAP→Maildir, %d messages: peak RSS %.1f MB, peak heap %d MB, %d GCs, %.1f s CPU, %v, %.0f msgs/s",
				b.name, n, m.rssMB, m.heapMB, m.gcs, m.cpu.Seconds(), m.elapsed.Round(10*time.Millisecond), float64(n)/m.elapsed.Seconds())
			if maxRSS > 0 && b.path == binary && m.rssMB > float64(maxRSS) {
				t.Errorf("%d messages: peak RSS %.1f MB, more than MAILFERRY_SCALE_MAXRSS=%d", n, m.rssMB, maxRSS)
			}
		}
	}
}

type runMeasure struct {
	copied     int
	rssMB      float64
	heapMB     int // the largest heap at the start of a GC cycle (gctrace)
	gcs        int
	cpu        time.Duration
	elapsed    time.Duration
	stderrTail string
}

var gcLine = regexp.MustCompile(`(?m)^gc \d+ .* (\d+)->\d+->\d+ MB`)

// measureRun runs bin with GODEBUG=gctrace=1 and reads its peak RSS.
func measureRun(t *testing.T, bin string, args []string) runMeasure {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	rep := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.CommandContext(ctx, bin, append(args, "--report", rep, "--no-progress")...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GODEBUG=gctrace=1"}, secretEnv...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	// The peak RSS is the kernel's high-water mark of the process's own
	// memory (VmHWM), read until it exits. (The rusage of a child counts
	// this test process's memory too: Go starts children with vfork, and
	// exec records the shared memory's high-water mark.)
	var hwm atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		path := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for {
			b, err := os.ReadFile(path)
			if err != nil {
				return
			}
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					if kb > hwm.Load() {
						hwm.Store(kb)
					}
				}
			}
			if !strings.Contains(string(b), "VmHWM:") {
				return // a zombie: its memory is gone
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	err := cmd.Wait()
	el := time.Since(start)
	<-done
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run %s: %v", bin, err)
	}
	var m runMeasure
	m.elapsed = el
	m.rssMB = float64(hwm.Load()) / 1024
	m.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	for _, g := range gcLine.FindAllStringSubmatch(errb.String(), -1) {
		m.gcs++
		if h, _ := strconv.Atoi(g[1]); h > m.heapMB {
			m.heapMB = h
		}
	}
	var s runSummary
	if b, err := os.ReadFile(rep); err == nil {
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("report: %v", err)
		}
	}
	m.copied = s.Copied
	tail := errb.String()
	if i := len(tail) - 4000; i > 0 {
		tail = tail[i:]
	}
	m.stderrTail = tail
	return m
}
