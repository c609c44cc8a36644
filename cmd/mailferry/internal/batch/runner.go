package batch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// Status of an account after a run.
const (
	StatusOK          = "ok"          // every message is in the target
	StatusFailed      = "failed"      // the run stopped or some messages failed
	StatusInvalid     = "invalid"     // the row could not be run (bad URL, no password)
	StatusInterrupted = "interrupted" // the batch was stopped; re-run to resume
)

// Result is what happened to one account. Reason never holds a secret:
// the account runner redacts it.
type Result struct {
	Line     int              `json:"line"`
	Source   string           `json:"source"`
	Target   string           `json:"target"`
	Status   string           `json:"status"`
	Reason   string           `json:"reason,omitempty"`
	ExitCode int              `json:"exit_code"`
	Log      string           `json:"log,omitempty"`
	Started  time.Time        `json:"started"`
	Elapsed  time.Duration    `json:"elapsed_ns"`
	Summary  *migrate.Summary `json:"summary,omitempty"`
}

// AccountFunc runs one account, feeding st while it works.
type AccountFunc func(ctx context.Context, row Row, st *migrate.Stats) Result

// Runner runs the rows of a batch, Accounts at a time.
type Runner struct {
	Accounts int
	Run      AccountFunc

	total                 int
	running, done, failed atomic.Int64
	mu                    sync.Mutex
	live                  map[int]*migrate.Stats // by row line
	doneMsgs, doneBytes   int64                  // of finished accounts
	finMsgs, finBytes     int64                  // totals of finished accounts
	copied                int64
}

// Progress is a snapshot of a batch for a progress display.
type Progress struct {
	Accounts, Done, Running, Failed int
	Msgs, TotalMsgs                 int64 // handled / known so far
	Bytes, TotalBytes               int64
	Copied                          int64
	Listing                         int // running accounts still listing (totals incomplete)
}

// Progress returns the aggregate state of the batch.
func (r *Runner) Progress() Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := Progress{Accounts: r.total, Done: int(r.done.Load()), Running: int(r.running.Load()), Failed: int(r.failed.Load()),
		Msgs: r.doneMsgs, TotalMsgs: r.finMsgs, Bytes: r.doneBytes, TotalBytes: r.finBytes, Copied: r.copied}
	for _, st := range r.live {
		if !st.Listed.Load() {
			p.Listing++
		}
		p.Msgs += st.DoneMsgs.Load()
		p.TotalMsgs += st.TotalMsgs.Load()
		p.Bytes += st.DoneBytes.Load()
		p.TotalBytes += st.TotalBytes.Load()
		p.Copied += st.Copied.Load()
	}
	return p
}

// ETA estimates the time left from the byte rate so far; ok is false
// while there is too little to go on. Accounts not yet started count as
// average ones.
func (p Progress) ETA(elapsed time.Duration) (time.Duration, bool) {
	started := p.Done + p.Running
	if p.Bytes == 0 || elapsed <= 0 || started == 0 || p.Listing > 0 && p.Listing == p.Running && p.Done == 0 {
		return 0, false
	}
	rate := float64(p.Bytes) / elapsed.Seconds()
	total := float64(p.TotalBytes)
	if rest := p.Accounts - started; rest > 0 {
		total += float64(p.TotalBytes) / float64(started) * float64(rest)
	}
	left := max(total-float64(p.Bytes), 0)
	return time.Duration(left / rate * float64(time.Second)), true
}

// Line is the progress as one line of text.
func (p Progress) Line(elapsed time.Duration) string {
	s := fmt.Sprintf("accounts %d/%d done, %d running, %d failed; messages %d/%d, %s/%s",
		p.Done, p.Accounts, p.Running, p.Failed, p.Msgs, p.TotalMsgs, HumanBytes(p.Bytes), HumanBytes(p.TotalBytes))
	if el := elapsed.Seconds(); el > 0 {
		s += fmt.Sprintf(", %s/s", HumanBytes(int64(float64(p.Bytes)/el)))
	}
	if eta, ok := p.ETA(elapsed); ok {
		s += ", ETA " + eta.Round(time.Second).String()
	}
	return s
}

// HumanBytes formats a byte count in SI units ("12.3 MB").
func HumanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// RunAll runs every row, Accounts at a time, and returns their results in
// row order. A cancelled ctx stops starting new accounts; those not
// started are reported interrupted.
func (r *Runner) RunAll(ctx context.Context, rows []Row) []Result {
	k := max(r.Accounts, 1)
	r.mu.Lock()
	r.total += len(rows)
	if r.live == nil {
		r.live = map[int]*migrate.Stats{}
	}
	r.mu.Unlock()
	results := make([]Result, len(rows))
	sem := make(chan struct{}, k)
	var wg sync.WaitGroup
	for i, row := range rows {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			results[i] = Result{Line: row.Line, Source: row.Source, Target: row.Target, Status: StatusInterrupted,
				Reason: "not started: the batch was interrupted", ExitCode: 130}
			continue
		}
		st := new(migrate.Stats)
		r.mu.Lock()
		r.live[i] = st
		r.mu.Unlock()
		r.running.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			start := time.Now()
			res := r.Run(ctx, row, st)
			if res.Started.IsZero() {
				res.Started = start
			}
			if res.Elapsed == 0 {
				res.Elapsed = time.Since(start)
			}
			results[i] = res
			r.mu.Lock()
			delete(r.live, i)
			r.doneMsgs += st.DoneMsgs.Load()
			r.finMsgs += st.TotalMsgs.Load()
			r.doneBytes += st.DoneBytes.Load()
			r.finBytes += st.TotalBytes.Load()
			r.copied += st.Copied.Load()
			r.mu.Unlock()
			r.running.Add(-1)
			if res.Status != StatusOK {
				r.failed.Add(1)
			}
			r.done.Add(1)
		}()
	}
	wg.Wait()
	return results
}
