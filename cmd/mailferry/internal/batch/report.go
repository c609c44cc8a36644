package batch

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the JSON report of a batch (--report FILE.json).
type Report struct {
	Version  string        `json:"version"`
	File     string        `json:"file"`
	Shard    string        `json:"shard"`
	Started  time.Time     `json:"started"`
	Ended    time.Time     `json:"ended"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	Status   string        `json:"status"`    // ok, failed (some account), interrupted
	Exit     int           `json:"exit_code"` // ExitCode, once the batch is over
	Accounts []Result      `json:"accounts"`
	Totals   Totals        `json:"totals"`
}

// Totals sum the accounts of a report.
type Totals struct {
	Accounts     int   `json:"accounts"`
	OK           int   `json:"ok"`
	Failed       int   `json:"failed"`
	Invalid      int   `json:"invalid"`
	Interrupted  int   `json:"interrupted"`
	Copied       int   `json:"copied"`
	AlreadyThere int   `json:"already_there"`
	FailedMsgs   int   `json:"failed_messages"`
	Bytes        int64 `json:"bytes"`
}

// Sum fills r.Totals from r.Accounts.
func (r *Report) Sum() {
	t := Totals{Accounts: len(r.Accounts)}
	for _, a := range r.Accounts {
		switch a.Status {
		case StatusOK:
			t.OK++
		case StatusInvalid:
			t.Invalid++
		case StatusInterrupted:
			t.Interrupted++
		default:
			t.Failed++
		}
		if s := a.Summary; s != nil {
			t.Copied += s.Copied
			t.AlreadyThere += s.AlreadyThere
			t.FailedMsgs += s.Failed
			t.Bytes += s.Bytes
		}
	}
	r.Totals = t
}

// ExitCode is 0 when every account is OK, 130 when the batch was
// interrupted, else 1.
func (r *Report) ExitCode() int {
	switch {
	case r.Totals.Interrupted > 0:
		return 130
	case r.Totals.OK == r.Totals.Accounts:
		return 0
	}
	return 1
}

// Table prints one line per account and the totals.
func (r *Report) Table(w io.Writer) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tSOURCE\tTARGET\tSTATUS\tCOPIED\tTHERE\tFAILED\tBYTES\tTIME\tREASON")
	for _, a := range r.Accounts {
		var copied, there, failed string
		var size string
		if s := a.Summary; s != nil {
			copied, there, failed, size = fmt.Sprint(s.Copied), fmt.Sprint(s.AlreadyThere), fmt.Sprint(s.Failed), HumanBytes(s.Bytes)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Line, a.Source, a.Target, a.Status,
			copied, there, failed, size, a.Elapsed.Round(time.Millisecond), a.Reason)
	}
	tw.Flush()
	// No trailing spaces (an account without a reason ends in padding).
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line != "" {
			fmt.Fprintln(w, strings.TrimRight(strings.TrimSuffix(line, "\n"), " "))
		}
	}
	t := r.Totals
	fmt.Fprintf(w, "Batch: %d account(s): %d OK, %d failed, %d invalid, %d interrupted; %d messages copied (%s), %d already there, %d failed; %s\n",
		t.Accounts, t.OK, t.Failed, t.Invalid, t.Interrupted, t.Copied, HumanBytes(t.Bytes), t.AlreadyThere, t.FailedMsgs, r.Elapsed.Round(time.Millisecond))
}
