package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

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

// startProgress shows one bar on a terminal (bytes, with n/N messages and
// the folder in the description) or, off a terminal, logs a line every
// interval. progressbar/v3 cannot tell a terminal from a file (it would
// redraw into a log), hence the choice here.
func startProgress(ctx context.Context, st *migrate.Stats, o progressOptions) *progress {
	p := &progress{done: make(chan struct{})}
	p.wg.Add(1)
	tty := !o.noBar && isTerminal(o.stderr)
	go func() {
		defer p.wg.Done()
		if tty {
			runBar(ctx, p.done, st, o)
			return
		}
		if o.interval <= 0 || o.noBar && o.logger == nil {
			<-p.done
			return
		}
		t := time.NewTicker(o.interval)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				el := time.Since(start).Seconds()
				o.logger.Warn("progress", "folder", st.Folder(),
					"messages", fmt.Sprintf("%d/%d", st.DoneMsgs.Load(), st.TotalMsgs.Load()),
					"bytes", fmt.Sprintf("%s/%s", humanBytes(st.DoneBytes.Load()), humanBytes(st.TotalBytes.Load())),
					"copied", st.Copied.Load(), "failed", st.Failed.Load(),
					"msgs_per_s", fmt.Sprintf("%.0f", float64(st.DoneMsgs.Load())/el))
			}
		}
	}()
	return p
}

func runBar(ctx context.Context, done chan struct{}, st *migrate.Stats, o progressOptions) {
	var bar *progressbar.ProgressBar
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	update := func() {
		if bar == nil {
			if !st.Listed.Load() {
				return
			}
			bar = progressbar.NewOptions64(max(st.TotalBytes.Load(), 1),
				progressbar.OptionSetWriter(o.stderr),
				progressbar.OptionShowBytes(true),
				progressbar.OptionSetWidth(24),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionShowElapsedTimeOnFinish(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionFullWidth(),
				progressbar.OptionClearOnFinish(),
			)
		}
		folder := st.Folder()
		if r := []rune(folder); len(r) > 24 {
			folder = "…" + string(r[len(r)-23:])
		}
		bar.Describe(fmt.Sprintf("%s %d/%d messages %s", o.verb, st.DoneMsgs.Load(), st.TotalMsgs.Load(), folder))
		bar.ChangeMax64(max(st.TotalBytes.Load(), 1))
		bar.Set64(st.DoneBytes.Load())
	}
	for {
		select {
		case <-done:
			if bar != nil {
				update()
				bar.Finish()
				bar.Clear()
				fmt.Fprint(o.stderr, "\r\033[K")
			}
			return
		case <-t.C:
			update()
		}
	}
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
		fmt.Fprintf(w, "  time           %s (%.0f messages/s, %.1f MB/s, %d workers)\n",
			s.Elapsed.Round(time.Millisecond), s.MessagesPerSecond(), float64(s.Bytes)/1e6/max(s.Elapsed.Seconds(), 1e-9), s.Workers)
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
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  FOLDER\tTARGET\tLISTED\tCOPIED\tTHERE\tFAILED\t")
		for _, f := range s.Folders {
			if f.Skipped != "" {
				fmt.Fprintf(tw, "  %s\t(skipped: %s)\t\t\t\t\t\n", f.Source, f.Skipped)
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\t\n", f.Source, f.Target, f.Listed, f.Copied, f.AlreadyThere, f.Failed)
		}
		tw.Flush()
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
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  FOLDER\tTARGET\tSOURCE\tIN TARGET\tMISSING\tDUPLICATED\tFLAGS\tDATES\tEXTRA\t")
	for _, f := range r.Folders {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t\n", f.Source, f.Target, f.SourceCount, f.TargetCount,
			f.Missing, f.Duplicated, checked(r.FlagsChecked, f.FlagMismatches), checked(r.DatesChecked, f.DateMismatches), f.Extra)
	}
	tw.Flush()
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
