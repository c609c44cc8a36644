package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rivo/uniseg"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/mailferry/mailferry/cmd/mailferry/internal/batch"
	"github.com/mailferry/mailferry/migrate"
)

type progressOptions struct {
	noBar    bool
	interval time.Duration
	logger   *slog.Logger
	stderr   io.Writer
	verb     string
	// out, when set, is the writer the run's log goes to (a termOut over
	// stderr): on a terminal the bar draws through it, so that log lines
	// go above the bar instead of into it.
	out *termOut
}

type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// termCols is the width of the terminal w, 80 when it cannot be told.
func termCols(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if c, _, err := term.GetSize(int(f.Fd())); err == nil && c > 0 {
			return c
		}
	}
	return 80
}

// snapshot is what a progress display shows at one moment.
type snapshot struct {
	ready             bool  // the totals are known: the listing is done
	done, total       int64 // messages handled / to handle
	bytes, totalBytes int64
	// estTotal and estTotalBytes are what the whole job will come to (the
	// batch counts the accounts not yet started as average ones); the
	// percentage and the ETA use them. Zero: total and totalBytes.
	estTotal, estTotalBytes int64
	folder                  string // the folder being worked on, if any
	label                   string // instead of the folder: the batch's accounts
}

func (s snapshot) est() (msgs, bytes int64) {
	msgs, bytes = s.estTotal, s.estTotalBytes
	if msgs == 0 {
		msgs = s.total
	}
	if bytes == 0 {
		bytes = s.totalBytes
	}
	return max(msgs, s.done), max(bytes, s.bytes)
}

// startProgress shows one bar on a terminal or, off a terminal, logs a
// line at INFO every interval (see progressLogger for where it goes).
// progressbar/v3 cannot tell a terminal from a file (it would redraw into a
// log), hence the choice here.
func startProgress(ctx context.Context, st *migrate.Stats, o progressOptions) *progress {
	p := &progress{done: make(chan struct{})}
	snap := func() snapshot {
		return snapshot{ready: st.Listed.Load(), done: st.DoneMsgs.Load(), total: st.TotalMsgs.Load(),
			bytes: st.DoneBytes.Load(), totalBytes: st.TotalBytes.Load(), folder: st.Folder()}
	}
	tty := !o.noBar && isTerminal(o.stderr)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if tty {
			out := o.out
			if out == nil {
				out = &termOut{w: o.stderr}
			}
			runBar(p.done, snap, newBarDisplay(out, func() int { return termCols(o.stderr) }, o.verb))
			return
		}
		lg := progressLogger(ctx, o)
		if lg == nil || o.interval <= 0 {
			<-p.done
			return
		}
		logProgress(ctx, p.done, o.interval, snap, func(s snapshot, m *rateMeter) {
			attrs := append([]slog.Attr{slog.String("folder", s.folder)}, progressAttrs(s, m)...)
			attrs = append(attrs, slog.Int64("copied", st.Copied.Load()), slog.Int64("failed", st.Failed.Load()))
			lg.LogAttrs(ctx, slog.LevelInfo, "progress", attrs...)
		})
	}()
	return p
}

// progressLogger is where the progress lines go off a terminal: to the
// run's logger when it takes INFO records anywhere (-v on stderr, --log),
// else, unless --no-progress or -q, to stderr on their own (migrate's
// stderr shows only warnings by default, and a copy run from cron should
// still say how far it got).
func progressLogger(ctx context.Context, o progressOptions) *slog.Logger {
	if o.logger != nil && o.logger.Enabled(ctx, slog.LevelInfo) {
		return o.logger
	}
	if o.noBar || o.stderr == nil {
		return nil
	}
	return slog.New(slog.NewTextHandler(o.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// progressAttrs are the numbers of a progress log line: messages done and
// total, bytes, the smoothed rates and the ETA in seconds (left out while
// there is too little to go on).
func progressAttrs(s snapshot, m *rateMeter) []slog.Attr {
	mr, br := m.rates()
	attrs := []slog.Attr{slog.Int64("done", s.done), slog.Int64("total", s.total),
		slog.Int64("bytes", s.bytes), slog.Int64("total_bytes", s.totalBytes),
		slog.Float64("msgs_per_s", round1(mr)), slog.Float64("mb_per_s", round1(br/1e6))}
	em, eb := s.est()
	if eta, ok := m.eta(em-s.done, eb-s.bytes); ok {
		attrs = append(attrs, slog.Float64("eta_s", math.Round(eta.Seconds())))
	}
	return attrs
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }

// logProgress feeds the rate meter every second (or every interval, when
// shorter) and calls log every interval once the totals are known.
func logProgress(ctx context.Context, done <-chan struct{}, interval time.Duration, snap func() snapshot, log func(snapshot, *rateMeter)) {
	tick := min(interval, time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	m := &rateMeter{tau: progressTau}
	var last time.Time
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := snap()
			if !s.ready {
				continue
			}
			m.observe(now, s.done, s.bytes)
			if last.IsZero() {
				last = now
			}
			if now.Sub(last) >= interval-tick/2 {
				last = now
				log(s, m)
			}
		}
	}
}

// progressTau is the time constant of the rates a progress display shows:
// a lasting change of speed shows fully in about that long, the bursts of
// a batch of stores or of one big message hardly.
const progressTau = 20 * time.Second

// rateMeter smooths the message and byte rates of a run with an
// exponentially weighted moving average over time (time constant tau).
// Until tau has passed, the rates are the plain averages since the last
// observation before anything was done, which the average then starts
// from, so the first minutes are neither zero nor one lucky burst.
type rateMeter struct {
	tau                    time.Duration
	first, last            time.Time
	firstMsgs, firstBytes  int64
	lastMsgs, lastBytes    int64
	msgsPerSec, bytesPerSe float64
	started                bool
	// the ETA shown (seconds) as of etaAt
	etaSec, etaW float64
	etaAt        time.Time
}

// observe records the counters at now.
func (m *rateMeter) observe(now time.Time, msgs, bytes int64) {
	if !m.started {
		m.started = true
		m.first, m.last = now, now
		m.firstMsgs, m.lastMsgs, m.firstBytes, m.lastBytes = msgs, msgs, bytes, bytes
		return
	}
	dt := now.Sub(m.last).Seconds()
	if dt <= 0 {
		return
	}
	if msgs == m.firstMsgs && bytes == m.firstBytes {
		// Nothing done yet (logging in, the first fetch): the rates start
		// from the last moment before the first message, or the start-up
		// would weigh on them as if it came back.
		m.first, m.last = now, now
		return
	}
	if el := now.Sub(m.first); el < m.tau {
		m.msgsPerSec = max(float64(msgs-m.firstMsgs), 0) / el.Seconds()
		m.bytesPerSe = max(float64(bytes-m.firstBytes), 0) / el.Seconds()
	} else {
		a := 1 - math.Exp(-dt/m.tau.Seconds())
		m.msgsPerSec += a * (max(float64(msgs-m.lastMsgs), 0)/dt - m.msgsPerSec)
		m.bytesPerSe += a * (max(float64(bytes-m.lastBytes), 0)/dt - m.bytesPerSe)
	}
	m.last, m.lastMsgs, m.lastBytes = now, msgs, bytes
}

// rates are the smoothed messages and bytes per second.
func (m *rateMeter) rates() (msgs, bytes float64) { return m.msgsPerSec, m.bytesPerSe }

// etaMinObserved is how long the meter must have watched before it gives
// an ETA.
var etaMinObserved = 3 * time.Second

// etaTau is the time constant with which the ETA shown follows the one
// the rates give: between two observations it counts down with the clock
// and moves only that part of the way to the new value, so the steps of
// the counters (a batch of 32 stores answered at once) do not make it
// jump.
const etaTau = 10 * time.Second

// eta is the time left for remMsgs messages of remBytes bytes: the mean
// of what the message rate and the byte rate say (they differ when the
// messages left are larger or smaller than those done; what a run costs
// lies between a cost per message and a cost per byte), smoothed (etaTau).
// Call it once per observation. ok is false while there is too little to
// go on.
func (m *rateMeter) eta(remMsgs, remBytes int64) (time.Duration, bool) {
	if !m.started || m.last.Sub(m.first) < etaMinObserved {
		return 0, false
	}
	var sum float64
	n := 0
	if m.msgsPerSec > 0 {
		sum += float64(max(remMsgs, 0)) / m.msgsPerSec
		n++
	}
	if m.bytesPerSe > 0 {
		sum += float64(max(remBytes, 0)) / m.bytesPerSe
		n++
	}
	if n == 0 {
		return 0, false
	}
	raw := sum / float64(n)
	if dt := m.last.Sub(m.etaAt).Seconds(); m.etaAt.IsZero() || dt > 0 {
		// A moving average with its start-up bias corrected: the first
		// values count as much as the later ones until etaTau has passed.
		if m.etaAt.IsZero() {
			dt = m.last.Sub(m.first).Seconds() // the first value stands for all the time watched
		}
		b := 1 - math.Exp(-dt/etaTau.Seconds())
		keep := m.etaW * (1 - b)
		m.etaSec = (max(m.etaSec-dt, 0)*keep + raw*b) / (keep + b)
		m.etaW = keep + b
	}
	if remMsgs <= 0 && remBytes <= 0 {
		m.etaSec = 0
	}
	m.etaAt = m.last
	return time.Duration(m.etaSec * float64(time.Second)), true
}

// fmtETA is a duration in at most six characters: 45s, 12m05s, 3h07m.
func fmtETA(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 100*3600:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return ">99h"
}

// termOut shares one terminal between a progress line and log lines: a
// log line clears the progress line, takes its place, and the progress
// line is drawn again below it. Without it a log record written while the
// bar is shown lands in the middle of the bar's line.
type termOut struct {
	mu   sync.Mutex
	w    io.Writer
	line []byte // the progress line as last drawn; nil while none is shown
}

// Write writes log output (whole lines: slog writes one record per call).
func (t *termOut) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.line == nil {
		return t.w.Write(p)
	}
	buf := make([]byte, 0, len(p)+len(t.line)+8)
	buf = append(append(buf, "\r\x1b[2K"...), p...)
	if !bytes.HasSuffix(p, []byte("\n")) {
		buf = append(buf, '\n')
	}
	buf = append(buf, t.line...)
	_, err := t.w.Write(buf)
	return len(p), err
}

// barWriter is what the progress bar draws with: each drawing ("\r…") is
// kept to be drawn again after a log line.
type barWriter struct{ t *termOut }

func (b barWriter) Write(p []byte) (int, error) {
	b.t.mu.Lock()
	defer b.t.mu.Unlock()
	if bytes.HasPrefix(p, []byte("\r")) {
		b.t.line = append(b.t.line[:0], p...)
	}
	return b.t.w.Write(p)
}

// clear erases the progress line; later log lines are written as they are.
func (t *termOut) clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.line != nil {
		t.w.Write([]byte("\r\x1b[2K"))
	}
	t.line = nil
}

// barDisplay draws a snapshot as one line of a fixed width that fits the
// terminal:
//
//	37% |███████             | 1834/5000 msgs  412 msg/s   24.1 MB/s ETA 7m41s  copying Archive/2019
//
// progressbar/v3 draws the percentage and the bar (of messages); the text
// right of it is ours, each field padded to a fixed width and the folder
// cut or padded to the room left, so the line does not change width from
// one drawing to the next. progressbar's own rate and ETA are off: they
// count one unit (bytes or items) over its last ten increments, which swing
// with the bursts of a batch; rateMeter smooths both messages and bytes.
type barDisplay struct {
	out    *termOut
	cols   func() int
	verb   string
	bar    *progressbar.ProgressBar
	meter  rateMeter
	max    int64
	digits int // of the message counter's numbers, never shrinking (the batch's total grows as accounts start: it starts at 6)
	// the layout for the terminal width layoutCols
	layoutCols, statsW, barW, labelW int
	// labelFirst gives the label (the batch's accounts) the room before
	// the bar gets more than 10 cells.
	labelFirst bool
}

func newBarDisplay(out *termOut, cols func() int, verb string) *barDisplay {
	return &barDisplay{out: out, cols: cols, verb: verb, meter: rateMeter{tau: progressTau}}
}

// barFrame is the width progressbar adds around the bar and the text: the
// percentage ("%4d%% "), the bar's ends, and the spaces around the
// description.
const barFrame = 11

// stats is the fixed-width text of the counters, rates and ETA.
func (d *barDisplay) stats(s snapshot) string {
	mr, br := d.meter.rates()
	em, eb := s.est()
	eta := "--"
	if e, ok := d.meter.eta(em-s.done, eb-s.bytes); ok {
		eta = fmtETA(e)
	}
	return fmt.Sprintf("%*s msgs %5.0f msg/s %6.1f MB/s ETA %6s",
		2*d.digits+1, fmt.Sprintf("%d/%d", s.done, s.total), min(mr, 99999), min(br/1e6, 9999.9), eta)
}

// layout splits the terminal's width between the bar and the folder.
func (d *barDisplay) layout(cols, statsW int) {
	d.layoutCols, d.statsW = cols, statsW
	rest := cols - 1 - barFrame - statsW // for the bar, a space and the folder
	d.labelW = min(max((rest-1)/2, 0), 40)
	if d.labelFirst {
		d.labelW = min(max(rest-1-10, 0), 40)
	}
	d.barW = min(max(rest-1-d.labelW, 3), 40)
	if d.labelW < 4 {
		d.labelW = 0
		d.barW = min(max(rest, 3), 40)
	}
}

// label is the folder (or the batch's accounts) cut or padded to labelW.
func (d *barDisplay) label(s snapshot) string {
	if d.labelW == 0 {
		return ""
	}
	if s.label != "" {
		return " " + fitRight(s.label, d.labelW)
	}
	l := s.folder
	if d.verb != "" && d.labelW >= 24 {
		return " " + d.verb + " " + fitLeft(l, d.labelW-len(d.verb)-1)
	}
	return " " + fitLeft(l, d.labelW)
}

// update draws the snapshot taken at now.
func (d *barDisplay) update(now time.Time, s snapshot) {
	if !s.ready {
		return
	}
	d.meter.observe(now, s.done, s.bytes)
	d.digits = max(d.digits, len(fmt.Sprint(s.total)))
	em, _ := s.est()
	st := d.stats(s)
	if c, sw := d.cols(), uniseg.StringWidth(st); c != d.layoutCols || sw != d.statsW || d.bar == nil {
		d.layout(c, sw)
		if d.bar != nil {
			progressbar.OptionSetWidth(d.barW)(d.bar)
		}
	}
	if d.bar == nil {
		d.max = max(em, 1)
		d.bar = progressbar.NewOptions64(d.max,
			progressbar.OptionSetWriter(barWriter{d.out}),
			progressbar.OptionSetWidth(d.barW),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(false),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionUseANSICodes(true),
			progressbar.OptionSetRenderBlankState(false),
		)
	}
	if em = max(em, 1); em != d.max {
		d.max = em
		d.bar.ChangeMax64(em)
	}
	// Set64 draws with the old text, Describe again with the new.
	d.bar.Set64(min(s.done, d.max-1))
	d.bar.Describe(st + d.label(s))
}

// finish erases the bar.
func (d *barDisplay) finish() {
	if d.bar != nil {
		d.out.clear()
	}
}

// runBar updates the display every 200 ms until done.
func runBar(done <-chan struct{}, snap func() snapshot, d *barDisplay) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			d.finish()
			return
		case now := <-t.C:
			d.update(now, snap())
		}
	}
}

// fitLeft cuts s to width w from the left ("…ive/2019"), or pads it with
// spaces on the right: the end of a folder name says most.
func fitLeft(s string, w int) string {
	if sw := uniseg.StringWidth(s); sw <= w {
		return s + strings.Repeat(" ", w-sw)
	}
	r := []rune(s)
	for len(r) > 0 && uniseg.StringWidth(string(r))+1 > w {
		r = r[1:]
	}
	out := "…" + string(r)
	return out + strings.Repeat(" ", max(w-uniseg.StringWidth(out), 0))
}

// fitRight cuts s to width w on the right, or pads it.
func fitRight(s string, w int) string {
	if sw := uniseg.StringWidth(s); sw <= w {
		return s + strings.Repeat(" ", w-sw)
	}
	r := []rune(s)
	for len(r) > 0 && uniseg.StringWidth(string(r))+1 > w {
		r = r[:len(r)-1]
	}
	out := string(r) + "…"
	return out + strings.Repeat(" ", max(w-uniseg.StringWidth(out), 0))
}

// startBatchProgress shows one bar on a terminal, else logs a line at INFO
// every interval. It returns the function that stops it. On a terminal the
// log lines written through w (the batch's and every account's) are put
// above the bar, not into it.
func startBatchProgress(r *batch.Runner, tty bool, interval time.Duration, logger *slog.Logger, w io.Writer) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	snap := func() snapshot {
		p := r.Progress()
		started := p.Done + p.Running
		s := snapshot{ready: p.Done > 0 || p.Listing < p.Running,
			done: p.Msgs, total: p.TotalMsgs, bytes: p.Bytes, totalBytes: p.TotalBytes,
			label: fmt.Sprintf("accounts %d/%d, %d running, %d failed", p.Done, p.Accounts, p.Running, p.Failed)}
		s.estTotal, s.estTotalBytes = p.TotalMsgs, p.TotalBytes
		if rest := p.Accounts - started; rest > 0 && started > 0 {
			s.estTotal += p.TotalMsgs * int64(rest) / int64(started)
			s.estTotalBytes += p.TotalBytes * int64(rest) / int64(started)
		}
		return s
	}
	wg.Add(1)
	if tty {
		out := &termOut{w: w}
		restore := func() {}
		if lw, ok := w.(*lockedWriter); ok {
			lw.mu.Lock()
			out.w, lw.w = lw.w, out
			lw.mu.Unlock()
			restore = func() {
				lw.mu.Lock()
				lw.w = out.w
				lw.mu.Unlock()
			}
		}
		cols := func() int { return termCols(out.w) }
		go func() {
			defer wg.Done()
			d := newBarDisplay(out, cols, "")
			d.digits, d.labelFirst = 6, true
			runBar(done, snap, d)
			restore()
		}()
	} else {
		go func() {
			defer wg.Done()
			if interval <= 0 || logger == nil {
				<-done
				return
			}
			ctx := context.Background()
			logProgress(ctx, done, interval, snap, func(s snapshot, m *rateMeter) {
				p := r.Progress()
				attrs := []slog.Attr{slog.Int("accounts", p.Accounts), slog.Int("accounts_done", p.Done),
					slog.Int("running", p.Running), slog.Int("failed", p.Failed)}
				logger.LogAttrs(ctx, slog.LevelInfo, "batch progress", append(attrs, progressAttrs(s, m)...)...)
			})
		}()
	}
	return func() { close(done); wg.Wait() }
}

func humanBytes(n int64) string { return batch.HumanBytes(n) }

// printSummary prints what a run did: counts, bytes, time, rate, each
// failure with its reason.
//
// A run that stopped on an error (runErr, not an interruption) says so and
// claims nothing; one that stopped before it listed anything prints nothing
// (the error on stderr is the whole story).
func printSummary(w io.Writer, s *migrate.Summary, src, tgt fmt.Stringer, runErr error) {
	stopped := runErr != nil && !s.Interrupted
	if stopped && s.Copied+s.AlreadyThere+s.Failed == 0 {
		return
	}
	switch {
	case s.Interrupted:
		fmt.Fprintf(w, "Interrupted: %s → %s\n", src, tgt)
	case stopped:
		fmt.Fprintf(w, "Stopped by an error: %s → %s (what was done so far)\n", src, tgt)
	default:
		fmt.Fprintf(w, "Done: %s → %s\n", src, tgt)
	}
	if s.Copied == 0 && s.Failed == 0 && s.SkippedMsgs == 0 && !s.Interrupted && !stopped {
		fmt.Fprintf(w, "  nothing to copy: all %d messages are already in the target\n", s.AlreadyThere)
	}
	fmt.Fprintf(w, "  copied         %d messages, %s\n", s.Copied, humanBytes(s.Bytes))
	fmt.Fprintf(w, "  already there  %d\n", s.AlreadyThere)
	if s.FlagsSynced > 0 {
		fmt.Fprintf(w, "  flags updated  %d\n", s.FlagsSynced)
	}
	fmt.Fprintf(w, "  failed         %d\n", s.Failed)
	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "  warning        %s\n", warn)
	}
	if s.SkippedMsgs > 0 {
		fmt.Fprintf(w, "  skipped        %d larger than --max-size (not a failure; listed in --report)\n", s.SkippedMsgs)
	}
	if s.Workers > 0 {
		fmt.Fprintf(w, "  time           %s (%.0f messages/s, %.1f MB/s, %s)\n",
			s.Elapsed.Round(time.Millisecond), s.MessagesPerSecond(), float64(s.Bytes)/1e6/max(s.Elapsed.Seconds(), 1e-9), plural(s.Workers, "worker", "workers"))
	} else {
		fmt.Fprintf(w, "  time           %s\n", s.Elapsed.Round(time.Millisecond))
	}
	if s.NULStripped > 0 {
		fmt.Fprintf(w, "  repaired       %d message(s) had NUL bytes, removed (--strip-nul)\n", s.NULStripped)
	}
	if s.Deleted > 0 || s.NotDeleted > 0 {
		fmt.Fprintf(w, "  deleted        %d from the source (%d could not be deleted; a later run tries again)\n", s.Deleted, s.NotDeleted)
	}
	if s.BareLFFixed > 0 {
		fmt.Fprintf(w, "  repaired       %d message(s) had bare LF line ends, stored with CRLF\n", s.BareLFFixed)
	}
	if len(s.Folders) > 1 {
		t := &table{right: []bool{false, false, false, true, true, true, true}}
		t.row("", "FOLDER", "TARGET", "LISTED", "COPIED", "THERE", "FAILED")
		for _, f := range s.Folders {
			if f.Skipped != "" {
				t.row("", f.Source, "(skipped: "+f.Skipped+")") // a note row: does not widen the columns
				continue
			}
			t.row("", f.Source, f.Target, fmt.Sprint(f.Listed), fmt.Sprint(f.Copied), fmt.Sprint(f.AlreadyThere), fmt.Sprint(f.Failed))
		}
		t.write(w)
	}
	for _, f := range s.Folders {
		if f.Renamed != "" {
			fmt.Fprintf(w, "  folder %q: %s\n", f.Source, f.Renamed)
		}
	}
	if len(s.Failures) > 0 {
		fmt.Fprintln(w, "Failed messages (run again to retry them):")
		fails := append([]migrate.Failure(nil), s.Failures...)
		sort.SliceStable(fails, func(i, j int) bool { return fails[i].Folder < fails[j].Folder })
		for i, f := range fails {
			if i == 50 {
				fmt.Fprintf(w, "  … and %d more (see --report)\n", len(fails)-50)
				break
			}
			id := f.Key
			if f.MessageID != "" {
				id += " " + f.MessageID
			}
			fmt.Fprintf(w, "  %s %s (%d bytes): %s\n", f.Folder, strings.TrimSpace(id), f.Size, f.Reason)
		}
	}
	if s.Interrupted {
		fmt.Fprintln(w, "  run the same command again to resume")
	}
}

// verifyListCap is how many problems of each kind verify prints; the
// report holds them all.
const verifyListCap = 20

func printVerify(w io.Writer, r *migrate.VerifyReport, src, tgt *endpoint) {
	t := &table{right: []bool{false, false, false, true, true, true, true, true, true, true}}
	t.row("", "FOLDER", "TARGET", "SOURCE", "IN TARGET", "MISSING", "DUPLICATED", "FLAGS", "DATES", "EXTRA")
	for _, f := range r.Folders {
		t.row("", f.Source, f.Target, fmt.Sprint(f.SourceCount), fmt.Sprint(f.TargetCount), fmt.Sprint(f.Missing),
			fmt.Sprint(f.Duplicated), checked(r.FlagsChecked, f.FlagMismatches), checked(r.DatesChecked, f.DateMismatches), fmt.Sprint(f.Extra))
	}
	t.write(w)
	sid, tid := idLabel(src), idLabel(tgt)
	kinds := []struct{ kind, title string }{
		{migrate.ProblemMissing, "Missing from the target"},
		{migrate.ProblemDuplicated, "Duplicated in the target"},
		{migrate.ProblemFlags, "Flags differ (changed on the source since the copy? migrate --sync-flags brings them over)"},
		{migrate.ProblemDate, "Internal dates differ"},
		{migrate.ProblemExtra, "Extra in the target (not in the source; not a failure)"},
	}
	for _, k := range kinds {
		n := 0
		for _, f := range r.Folders {
			for _, p := range f.Problems {
				if p.Kind == k.kind {
					n++
				}
			}
		}
		if n == 0 {
			continue
		}
		fmt.Fprintf(w, "%s: %d\n", k.title, n)
		shown := 0
		for _, f := range r.Folders {
			for _, p := range f.Problems {
				if p.Kind != k.kind || shown == verifyListCap {
					continue
				}
				shown++
				fmt.Fprintf(w, "  %s\n", problemLine(p, sid, tid))
			}
		}
		if n > shown {
			fmt.Fprintf(w, "  … and %d more; see --report\n", n-shown)
		}
	}
	if r.OK() {
		fmt.Fprintf(w, "Verify: OK — every source message is in the target exactly once%s (%d extra in the target).\n", withWhat(r), r.Extra)
	} else {
		fmt.Fprintf(w, "Verify: FAILED — %d missing, %d duplicated, %d with other flags, %d with another date, %d extra.\n",
			r.Missing, r.Duplicated, r.FlagMismatches, r.DateMismatches, r.Extra)
	}
}

func checked(on bool, n int) string {
	if !on {
		return "-"
	}
	return fmt.Sprint(n)
}

func withWhat(r *migrate.VerifyReport) string {
	switch {
	case r.FlagsChecked && r.DatesChecked:
		return ", with its flags and date"
	case r.FlagsChecked:
		return ", with its flags"
	case r.DatesChecked:
		return ", with its date"
	}
	return ""
}

// idLabel names what a side's message IDs are.
func idLabel(e *endpoint) string {
	switch e.scheme {
	case "imap", "imaps":
		return "UID"
	case "pop3", "pop3s":
		return "UIDL"
	case "maildir":
		return "file"
	}
	return "ID"
}

// problemLine is one problem on one line: folder, IDs, Message-ID, size,
// and what differs.
func problemLine(p migrate.Problem, sid, tid string) string {
	var b strings.Builder
	b.WriteString(p.Folder)
	if p.TargetFolder != p.Folder {
		b.WriteString(" → " + p.TargetFolder)
	}
	b.WriteString(": ")
	if p.Kind == migrate.ProblemExtra {
		fmt.Fprintf(&b, "target %s %s", tid, p.TargetID)
	} else {
		fmt.Fprintf(&b, "%s %s", sid, p.SourceID)
	}
	msgID := p.MessageID
	if msgID == "" {
		msgID = "(no Message-ID)"
	}
	fmt.Fprintf(&b, " %s %d bytes", msgID, p.Size)
	d := p.ProblemDetail
	switch p.Kind {
	case migrate.ProblemDuplicated:
		if len(d.SourceIDs) > 1 {
			fmt.Fprintf(&b, ": %d source messages (%s %s)", len(d.SourceIDs), sid, strings.Join(d.SourceIDs, ", "))
		}
		fmt.Fprintf(&b, ": %d copies in the target (%s %s)", d.Copies, tid, strings.Join(d.TargetIDs, ", "))
	case migrate.ProblemFlags:
		fmt.Fprintf(&b, ": source (%s), target %s %s (%s)", strings.Join(d.SourceFlags, " "), tid, p.TargetID, strings.Join(d.TargetFlags, " "))
	case migrate.ProblemDate:
		fmt.Fprintf(&b, ": source %s, target %s %s %s", d.SourceDate.Format(time.RFC1123Z), tid, p.TargetID, d.TargetDate.Format(time.RFC1123Z))
	}
	return b.String()
}
