package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestScaleBigMaildir measures, with MAILFERRY_SCALE_DIR=N (skipped
// otherwise), a Maildir → Maildir copy of one folder of N files and of one
// of N/10, against cp -r of the same trees: the copy's time per message
// should grow with the folder's size no more than cp's does. (N/10, not
// smaller: at 4,000 files the final sync and the start-up were most of
// both times, and the ratio said nothing about the directory.)
// MAILFERRY_SCALE_BIN adds another binary, measured on the same trees.
func TestScaleBigMaildir(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MAILFERRY_SCALE_DIR"))
	if n <= 0 {
		t.Skip("set MAILFERRY_SCALE_DIR=N to measure a Maildir folder of N files")
	}
	type result struct{ cp, mf time.Duration }
	res := map[int]result{}
	for _, size := range []int{n / 10, n} {
		base := t.TempDir()
		src := filepath.Join(base, "src")
		start := time.Now()
		writeBigMaildir(t, src, size)
		t.Logf("%d files written in %v", size, time.Since(start).Round(time.Millisecond))
		exec.Command("sync").Run()
		start = time.Now()
		if out, err := exec.Command("cp", "-r", src, filepath.Join(base, "cp")).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		exec.Command("sync").Run()
		cpTime := time.Since(start)
		m := measureRun(t, binary, []string{"migrate", "maildir:" + src, "maildir:" + filepath.Join(base, "dst"), "--state", t.TempDir()})
		if m.copied != size {
			t.Fatalf("%d files: copied %d\n%s", size, m.copied, m.stderrTail)
		}
		res[size] = result{cpTime, m.elapsed}
		if other := os.Getenv("MAILFERRY_SCALE_BIN"); other != "" {
			o := measureRun(t, other, []string{"migrate", "maildir:" + src, "maildir:" + filepath.Join(base, "dst2"), "--state", t.TempDir()})
			t.Logf("%d files: MAILFERRY_SCALE_BIN %v (%.0f µs/file, peak RSS %.1f MB, %.1f s CPU, copied %d)", size,
				o.elapsed.Round(time.Millisecond), float64(o.elapsed.Microseconds())/float64(size), o.rssMB, o.cpu.Seconds(), o.copied)
		}
		t.Logf("%d files: cp -r %v (%.0f µs/file), mailferry %v (%.0f µs/file, peak RSS %.1f MB, %.1f s CPU)", size,
			cpTime.Round(time.Millisecond), float64(cpTime.Microseconds())/float64(size),
			m.elapsed.Round(time.Millisecond), float64(m.elapsed.Microseconds())/float64(size), m.rssMB, m.cpu.Seconds())
		os.RemoveAll(base)
	}
	small, big := res[n/10], res[n]
	cpGrowth := (float64(big.cp) / float64(n)) / (float64(small.cp) / float64(n/10))
	mfGrowth := (float64(big.mf) / float64(n)) / (float64(small.mf) / float64(n/10))
	t.Logf("time per file, %d files against %d: cp ×%.2f, mailferry ×%.2f", n, n/10, cpGrowth, mfGrowth)
}

// writeBigMaildir writes a Maildir with n messages of about 1.3 KB in its
// INBOX's cur/, names carrying S=, mtimes one minute apart.
func writeBigMaildir(t *testing.T, root string, n int) {
	t.Helper()
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	filler := make([]byte, 1100)
	for i := range filler {
		filler[i] = 'a' + byte(i%26)
		if i%76 == 75 {
			filler[i] = '\n'
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				date := base.Add(time.Duration(i) * time.Minute)
				body := fmt.Sprintf("From: a%d@example.com\nTo: b@example.com\nSubject: message %d\nDate: %s\nMessage-ID: <big%d@example.com>\n\n%s\n",
					i%97, i, date.Format(time.RFC1123Z), i, filler)
				p := filepath.Join(root, "cur", fmt.Sprintf("%d.M%dP1.bigdir,S=%d:2,S", date.Unix(), i, len(body)))
				err := os.WriteFile(p, []byte(body), 0o600)
				if err == nil {
					err = os.Chtimes(p, date, date)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}
