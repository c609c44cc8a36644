package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/rivo/uniseg"

	"github.com/mailferry/mailferry/cmd/mailferry/internal/batch"
	"github.com/mailferry/mailferry/migrate"
)

// TestRateMeterSmoothsBursts: stores arrive in bursts (a batch of 100
// every 1.6 s, 62.5 messages/s on average); the ETA from the smoothed
// rates stays within 15 % of the truth from 5 s on and moves little from
// one drawing to the next. progressbar's own ETA (its last ten increments)
// swung from 2m40s to 7s on such a run.
func TestRateMeterSmoothsBursts(t *testing.T) {
	const total, size = 10000, 60000
	m := &rateMeter{tau: progressTau}
	t0 := time.Unix(1e9, 0)
	var done int64
	prev := -1.0
	for ms := int64(0); ms <= 120_000; ms += 200 {
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		if ms > 0 && ms%1600 == 0 {
			done += 100
		}
		m.observe(now, done, done*size)
		eta, ok := m.eta(total-done, (total-done)*size)
		if ms < 5000 {
			continue
		}
		if !ok {
			t.Fatalf("no ETA after %d ms", ms)
		}
		truth := float64(total-done) / 62.5
		if ms >= 5000 && math.Abs(eta.Seconds()-truth) > 0.15*truth+2 {
			t.Errorf("at %d ms: ETA %s, truth %.0fs", ms, eta, truth)
		}
		if prev >= 0 && math.Abs(eta.Seconds()-prev) > 0.02*prev+1 {
			t.Errorf("at %d ms: ETA jumped from %.0fs to %s", ms, prev, eta)
		}
		prev = eta.Seconds()
		mr, br := m.rates()
		if ms >= 30000 && (math.Abs(mr-62.5) > 6 || math.Abs(br/size-62.5) > 6) {
			t.Errorf("at %d ms: rates %.1f msg/s %.1f MB/s, want 62.5 msg/s", ms, mr, br/1e6)
		}
	}
	// A lasting slowdown (a third of the speed) shows within about tau.
	for ms := int64(120_200); ms <= 180_000; ms += 200 {
		if ms%4800 == 0 {
			done += 100
		}
		m.observe(t0.Add(time.Duration(ms)*time.Millisecond), done, done*size)
	}
	if mr, _ := m.rates(); math.Abs(mr-20.8) > 4 {
		t.Errorf("after 60 s at 20.8 msg/s the rate is %.1f", mr)
	}
}

func TestFmtETA(t *testing.T) {
	for d, want := range map[time.Duration]string{
		7 * time.Second: "7s", 160 * time.Second: "2m40s", 3*time.Hour + 7*time.Minute: "3h07m", 200 * time.Hour: ">99h",
	} {
		if got := fmtETA(d); got != want {
			t.Errorf("fmtETA(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestFit(t *testing.T) {
	for _, c := range []struct {
		in          string
		w           int
		left, right string
	}{
		{"INBOX", 10, "INBOX     ", "INBOX     "},
		{"Archive/2019/Receipts", 9, "…Receipts", "Archive/…"},
		{"日本語のフォルダ名", 10, "…ォルダ名 ", "日本語の… "}, // double width: padded to an even cut
	} {
		if got := fitLeft(c.in, c.w); got != c.left {
			t.Errorf("fitLeft(%q, %d) = %q, want %q", c.in, c.w, got, c.left)
		}
		if got := fitRight(c.in, c.w); got != c.right {
			t.Errorf("fitRight(%q, %d) = %q, want %q", c.in, c.w, got, c.right)
		}
		for _, got := range []string{fitLeft(c.in, c.w), fitRight(c.in, c.w)} {
			if uniseg.StringWidth(got) != c.w {
				t.Errorf("%q: width %d, want %d", got, uniseg.StringWidth(got), c.w)
			}
		}
	}
}

// screen is a small terminal emulator: enough of one (carriage return,
// line feed, autowrap at the last column, erase in line) to see what a
// person would see.
type screen struct {
	cols     int
	rows     [][]rune
	row, col int
}

func (s *screen) put(r rune) {
	for len(s.rows) <= s.row {
		s.rows = append(s.rows, []rune{})
	}
	line := s.rows[s.row]
	for len(line) < s.col {
		line = append(line, ' ')
	}
	if s.col < len(line) {
		line[s.col] = r
	} else {
		line = append(line, r)
	}
	s.rows[s.row] = line
	s.col++
	if s.col >= s.cols { // autowrap: a line too long for the terminal tears
		s.row, s.col = s.row+1, 0
	}
}

func (s *screen) feed(b string) {
	csi := regexp.MustCompile(`^\x1b\[([0-9;]*)([A-Za-z])`)
	rs := []rune(b)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '\r':
			s.col = 0
		case '\n':
			s.row++
			s.col = 0
		case 0x1b:
			m := csi.FindStringSubmatch(string(rs[i:]))
			if m == nil {
				continue
			}
			i += len([]rune(m[0])) - 1
			if m[2] == "K" && s.row < len(s.rows) {
				if m[1] == "2" {
					s.rows[s.row] = []rune{}
				} else if s.col < len(s.rows[s.row]) {
					s.rows[s.row] = s.rows[s.row][:s.col]
				}
			}
		default:
			s.put(r)
		}
	}
}

func (s *screen) lines() []string {
	var out []string
	for _, r := range s.rows {
		out = append(out, strings.TrimRight(string(r), " "))
	}
	return out
}

// ptyRun runs fn with the slave side of a pseudo-terminal cols wide and
// returns everything written to it.
func ptyRun(t *testing.T, cols int, fn func(tty *os.File)) string {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: uint16(cols)}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	got := make(chan struct{})
	go func() { io.Copy(&buf, ptmx); close(got) }()
	fn(tty)
	tty.Close()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("pty reader did not stop")
	}
	// The line discipline turns "\n" into "\r\n"; drawings are "\r…".
	return strings.ReplaceAll(buf.String(), "\r\n", "\n")
}

var ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

// drawings are the bar's drawings, as shown (no escape sequences).
func drawings(out string) []string {
	var d []string
	for _, seg := range strings.FieldsFunc(out, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if seg = ansiRE.ReplaceAllString(seg, ""); strings.Contains(seg, "msgs") {
			d = append(d, seg)
		}
	}
	return d
}

var barRE = regexp.MustCompile(`^ *(\d+)% \|[█ ]+\| +(\d+)/(\d+) +msgs +(\d+) msg/s +([\d.]+) MB/s ETA +(--|\S+)`)

// TestBarOnTerminal runs the display of a migrate run against a
// pseudo-terminal while the folder changes between names of very
// different lengths: every drawing has the message counter, both rates
// and a labelled ETA, the same width, and fits the terminal (narrower
// than the terminal by a column, so it never wraps).
func TestBarOnTerminal(t *testing.T) {
	defer func(d time.Duration) { etaMinObserved = d }(etaMinObserved)
	etaMinObserved = 500 * time.Millisecond
	folders := []string{"INBOX", "Archive/2019/Receipts from the very long-named shop/Q3", "S", "日本語のフォルダ名", "Sent"}
	for _, cols := range []int{80, 120, 200} {
		t.Run(fmt.Sprint(cols), func(t *testing.T) {
			out := ptyRun(t, cols, func(tty *os.File) {
				var done, bytes atomic.Int64
				var folder atomic.Value
				folder.Store(folders[0])
				snap := func() snapshot {
					return snapshot{ready: true, done: done.Load(), total: 5000, bytes: bytes.Load(), totalBytes: 5000 * 60000, folder: folder.Load().(string)}
				}
				stop := make(chan struct{})
				ended := make(chan struct{})
				go func() {
					runBar(stop, snap, newBarDisplay(&termOut{w: tty}, func() int { return termCols(tty) }, "copying"))
					close(ended)
				}()
				for i := 0; i < 50; i++ {
					done.Add(20)
					bytes.Add(20 * 60000)
					folder.Store(folders[i/10%len(folders)])
					time.Sleep(30 * time.Millisecond)
				}
				close(stop)
				<-ended
			})
			d := drawings(out)
			if len(d) < 5 {
				t.Fatalf("%d drawings:\n%q", len(d), out)
			}
			w0 := uniseg.StringWidth(d[0])
			var lastETA string
			for _, l := range d {
				if w := uniseg.StringWidth(l); w != w0 || w > cols-1 {
					t.Errorf("drawing %q is %d wide (first %d, terminal %d)", l, w, w0, cols)
				}
				m := barRE.FindStringSubmatch(l)
				if m == nil {
					t.Errorf("drawing %q: no percentage, bar, counter, rates and ETA", l)
					continue
				}
				lastETA = m[6]
			}
			if lastETA == "--" || lastETA == "" {
				t.Errorf("no ETA by the end: %q", d[len(d)-1])
			}
			if cols >= 120 && !strings.Contains(out, "shop/Q3") {
				t.Errorf("the folder is not shown:\n%s", strings.Join(d, "\n"))
			}
			sc := &screen{cols: cols}
			sc.feed(out)
			for _, l := range sc.lines() {
				if strings.TrimSpace(l) != "" {
					t.Errorf("the bar was not erased at the end: %q", l)
				}
			}
			t.Logf("last drawing at %d columns: %q", cols, d[len(d)-1])
		})
	}
}

// TestBatchBarWithLogLines: batch on a terminal. The accounts log while
// the bar is shown; on the screen every log line is whole, on a line of
// its own, and the bar (with one ETA and a bar of some width) is below
// them. Before, the bar was zero cells wide, had two ETAs, and log lines
// were written into it.
func TestBatchBarWithLogLines(t *testing.T) {
	defer func(d time.Duration) { etaMinObserved = d }(etaMinObserved)
	etaMinObserved = 300 * time.Millisecond
	const cols = 100
	var shown []string
	out := ptyRun(t, cols, func(tty *os.File) {
		errw := &lockedWriter{w: tty}
		logger := slog.New(slog.NewTextHandler(errw, nil))
		r := &batch.Runner{Accounts: 2, Run: func(ctx context.Context, row batch.Row, st *migrate.Stats) batch.Result {
			st.TotalMsgs.Store(300)
			st.TotalBytes.Store(300 * 50000)
			st.Listed.Store(true)
			for i := 0; i < 30; i++ {
				st.DoneMsgs.Add(10)
				st.DoneBytes.Add(10 * 50000)
				if i%7 == 3 {
					logger.Warn("retrying a store", "line", row.Line, "attempt", i)
				}
				time.Sleep(25 * time.Millisecond)
			}
			return batch.Result{Line: row.Line, Status: batch.StatusOK}
		}}
		stop := startBatchProgress(r, true, time.Second, logger, errw)
		r.RunAll(context.Background(), []batch.Row{{Line: 2}, {Line: 3}, {Line: 4}, {Line: 5}})
		stop()
		logger.Info("after the bar")
	})
	sc := &screen{cols: cols}
	sc.feed(out)
	shown = sc.lines()
	if os.Getenv("DBG") != "" {
		t.Logf("%q", out)
	}
	logs := 0
	for _, l := range shown {
		if strings.Contains(l, "retrying a store") || strings.Contains(l, "after the bar") {
			logs++
			if !strings.HasPrefix(l, "time=") || strings.Contains(l, "msgs") || strings.Contains(l, "%") {
				t.Errorf("torn log line on the screen: %q", l)
			}
		}
	}
	if logs < 8 {
		t.Errorf("%d log lines on the screen, want 9:\n%s", logs, strings.Join(shown, "\n"))
	}
	d := drawings(out)
	if len(d) == 0 {
		t.Fatalf("no bar drawn:\n%q", out)
	}
	for _, l := range d {
		if strings.Count(l, "ETA") != 1 || strings.Count(l, ":") > 0 {
			t.Errorf("drawing %q: want one ETA (and no [elapsed:left])", l)
		}
		if m := regexp.MustCompile(`\|([█ ]*)\|`).FindStringSubmatch(l); m == nil || len([]rune(m[1])) < 3 {
			t.Errorf("drawing %q: no bar", l)
		}
		if !strings.Contains(l, "accounts") || uniseg.StringWidth(l) > cols-1 {
			t.Errorf("drawing %q: no accounts, or wider than %d", l, cols-1)
		}
	}
	t.Logf("screen:\n%s\nlast drawing: %q", strings.Join(shown, "\n"), d[len(d)-1])
}

// TestProgressLogOffTerminal: off a terminal the progress lines are INFO
// records with numbers, not strings, at the --stats interval, with an ETA
// once there is enough to go on.
func TestProgressLogOffTerminal(t *testing.T) {
	defer func(d time.Duration) { etaMinObserved = d }(etaMinObserved)
	etaMinObserved = 300 * time.Millisecond
	var buf lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st := new(migrate.Stats)
	st.TotalMsgs.Store(1000)
	st.TotalBytes.Store(1000 * 10000)
	st.Listed.Store(true)
	p := startProgress(context.Background(), st, progressOptions{interval: 200 * time.Millisecond, logger: logger, stderr: io.Discard, verb: "copying"})
	start := time.Now()
	for time.Since(start) < 1300*time.Millisecond {
		st.DoneMsgs.Add(5)
		st.DoneBytes.Add(5 * 10000)
		time.Sleep(10 * time.Millisecond)
	}
	p.stop()
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, m)
	}
	if len(recs) < 2 || len(recs) > 8 {
		t.Fatalf("%d records in 1.3 s at a 200 ms interval:\n%s", len(recs), buf.String())
	}
	last := recs[len(recs)-1]
	for _, m := range recs {
		if m["level"] != "INFO" || m["msg"] != "progress" {
			t.Errorf("record %v: want level INFO, msg progress", m)
		}
		for _, k := range []string{"done", "total", "bytes", "total_bytes", "msgs_per_s", "mb_per_s"} {
			if _, ok := m[k].(float64); !ok {
				t.Errorf("record %v: %s is %T, want a number", m, k, m[k])
			}
		}
	}
	if eta, ok := last["eta_s"].(float64); !ok || eta <= 0 {
		t.Errorf("last record %v: no eta_s", last)
	}
	// Every message is 10 kB: the two rates agree.
	if mr, br := last["msgs_per_s"].(float64), last["mb_per_s"].(float64); mr <= 0 || math.Abs(br-mr*0.01) > 0.2*mr*0.01+0.1 {
		t.Errorf("msgs_per_s %v and mb_per_s %v, for messages of 10 kB", mr, br)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMigrateBarWithLogLines: a migrate run whose log writes through the
// bar's termOut (progressOptions.out): its warnings are whole lines on the
// screen above the bar.
func TestMigrateBarWithLogLines(t *testing.T) {
	const cols = 100
	out := ptyRun(t, cols, func(tty *os.File) {
		tw := &termOut{w: tty}
		logger := slog.New(slog.NewTextHandler(tw, nil))
		st := new(migrate.Stats)
		st.TotalMsgs.Store(1000)
		st.TotalBytes.Store(1000 * 20000)
		st.Listed.Store(true)
		p := startProgress(context.Background(), st, progressOptions{interval: time.Second, logger: logger, stderr: tty, out: tw, verb: "copying"})
		for i := 0; i < 40; i++ {
			st.DoneMsgs.Add(10)
			st.DoneBytes.Add(10 * 20000)
			if i%8 == 4 {
				logger.Warn("reconnecting to the target", "attempt", i)
			}
			time.Sleep(25 * time.Millisecond)
		}
		p.stop()
	})
	sc := &screen{cols: cols}
	sc.feed(out)
	n := 0
	for _, l := range sc.lines() {
		if strings.Contains(l, "reconnecting") {
			n++
			if !strings.HasPrefix(l, "time=") || strings.Contains(l, "msgs") {
				t.Errorf("torn log line: %q", l)
			}
		} else if strings.TrimSpace(l) != "" {
			t.Errorf("left on the screen: %q", l)
		}
	}
	if n != 5 || len(drawings(out)) == 0 {
		t.Errorf("%d log lines (want 5), %d drawings:\n%s", n, len(drawings(out)), strings.Join(sc.lines(), "\n"))
	}
}
