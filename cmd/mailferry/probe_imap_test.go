package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/target"
	imaptgt "github.com/mailferry/mailferry/target/imap"
)

// scratchLeft lists the folders of srv's user that the probe names.
func scratchLeft(t *testing.T, srv *imaptest.Server) []string {
	t.Helper()
	tg, err := imaptgt.Open(context.Background(), srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	fs, err := tg.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, f := range fs {
		if strings.HasPrefix(f.Name, "mailferry-plan-probe-") {
			left = append(left, f.Name)
		}
	}
	return left
}

// TestProbeIMAPStore: the probe stores with one session, then with all
// (each into its own scratch folder), and deletes its folders, also when
// the context is cancelled while it stores.
func TestProbeIMAPStore(t *testing.T) {
	defer func(b time.Duration) { imapProbeBudget = b }(imapProbeBudget)
	imapProbeBudget = 300 * time.Millisecond
	for _, c := range []struct {
		name    string
		workers int
		cancel  bool
	}{
		{"one worker", 1, false},
		{"three workers", 3, false},
		{"cancelled while storing", 3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := imaptest.Start(t, imaptest.Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			open := imaptgt.Opener(srv.Config())
			var sent atomic.Int64
			if c.cancel {
				inner := open
				open = func(ctx context.Context) (target.Target, error) {
					t, err := inner(ctx)
					if err != nil {
						return nil, err
					}
					return &cancelAfter{Target: t, n: &sent, after: 20, cancel: cancel}, nil
				}
			}
			ss, err := probeIMAPStore(ctx, open, c.workers, 1000, 1500)
			if left := scratchLeft(t, srv); len(left) > 0 {
				t.Fatalf("scratch folders left on the target: %v", left)
			}
			if c.cancel {
				if err == nil {
					t.Fatalf("cancelled probe: no error, %+v", ss)
				}
				return
			}
			if err != nil || !ss.ok() {
				t.Fatalf("probe: %+v, %v", ss, err)
			}
			if ss.Sessions != c.workers || ss.Size != 1500 || len(ss.Left) != 0 {
				t.Errorf("probe: %+v; want %d session(s) of 1500-byte messages, nothing left", ss, c.workers)
			}
			all, one := ss.perMsg()
			if all <= 0 || one <= 0 {
				t.Errorf("per message: all %v, one %v", all, one)
			}
		})
	}
}

// TestProbeStoresAShareOfTheRun: the probes store at most their share of
// a small run (the scratch messages' deletion lands on the copy after
// the plan), however long their budget.
func TestProbeStoresAShareOfTheRun(t *testing.T) {
	defer func(b, s time.Duration) { imapProbeBudget, storeBudget = b, s }(imapProbeBudget, storeBudget)
	imapProbeBudget, storeBudget = time.Minute, time.Minute
	const toCopy, workers = 2000, 2
	srv := imaptest.Start(t, imaptest.Options{})
	ss, err := probeIMAPStore(context.Background(), imaptgt.Opener(srv.Config()), workers, toCopy, 1500)
	if err != nil || !ss.ok() {
		t.Fatalf("probe: %+v, %v", ss, err)
	}
	round := migrate.BatchSizeFor(toCopy, workers)
	most := max(toCopy/probeShare, imapProbeMinRounds*round)
	if got := ss.OneMsgs + ss.Msgs; got > most+(workers+1)*round || ss.Time > 30*time.Second {
		t.Errorf("IMAP probe stored %d messages in %s; want at most %d + a round per session", got, ss.OneTime+ss.Time, most)
	}
	// A tiny run: the probe stores no more than the run (plus the rounds
	// it started), where twelve of its batches would be twice as many.
	const tiny, tinyWorkers = 80, 4
	ts, err := probeIMAPStore(context.Background(), imaptgt.Opener(srv.Config()), tinyWorkers, tiny, 1500)
	if err != nil || !ts.ok() {
		t.Fatalf("probe of a tiny run: %+v, %v", ts, err)
	}
	tr := migrate.BatchSizeFor(tiny, tinyWorkers)
	if imapProbeMinRounds*tr < 2*tiny {
		t.Fatalf("test premise: %d batches of %d are not well above %d messages", imapProbeMinRounds, tr, tiny)
	}
	if got := ts.OneMsgs + ts.Msgs; got > tiny+tinyWorkers*tr {
		t.Errorf("probe of a %d-message run stored %d messages; want at most %d", tiny, got, tiny+tinyWorkers*tr)
	}
	ms, err := probeMaildirStore(context.Background(), filepath.Join(t.TempDir(), "Mail"), workers, toCopy, 1500)
	if err != nil || !ms.ok() {
		t.Fatalf("Maildir probe: %+v, %v", ms, err)
	}
	if most := max(toCopy/probeShare, maildirProbeMin); ms.Msgs > most+workers*64 || ms.Time > 30*time.Second {
		t.Errorf("Maildir probe stored %d messages in %s; want at most %d + a round per session", ms.Msgs, ms.Time, most)
	}
}

// TestDeleteScratchNamesWhatItLeft: a scratch folder the probe cannot
// delete is returned (plan names it in a warning); one it deletes is not.
func TestDeleteScratchNamesWhatItLeft(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	if err := srv.User.Create("mailferry-plan-probe-x-0", nil); err != nil {
		t.Fatal(err)
	}
	left := deleteScratch(context.Background(), imaptgt.Opener(srv.Config()), []string{"mailferry-plan-probe-x-0", "mailferry-plan-probe-gone-1"})
	if len(left) != 1 || left[0] != "mailferry-plan-probe-gone-1" {
		t.Errorf("left %q, want only the folder that was not there to delete", left)
	}
	if l := scratchLeft(t, srv); len(l) > 0 {
		t.Errorf("still on the target: %v", l)
	}
}

// cancelAfter is a target that cancels the context after n stores.
type cancelAfter struct {
	target.Target
	n      *atomic.Int64
	after  int64
	cancel context.CancelFunc
}

func (c *cancelAfter) DeleteFolder(ctx context.Context, name string) error {
	return c.Target.(folderDeleter).DeleteFolder(ctx, name)
}

func (c *cancelAfter) Put(ctx context.Context, d target.Delivery, body io.Reader) (string, error) {
	if c.n.Add(1) == c.after {
		c.cancel()
	}
	return c.Target.Put(ctx, d, body)
}

// TestEstimateWithIMAPProbe: with a probe, the store side of an IMAP
// target follows what the probe measured (twice as slow a probe, twice the
// store-bound estimate), a big folder's chain follows one session's cost,
// and fewer busy folders than sessions store at the rate in between.
func TestEstimateWithIMAPProbe(t *testing.T) {
	const size = 1300
	even := []folderWork{{25000, 25000 * size}, {25000, 25000 * size}, {25000, 25000 * size}, {25000, 25000 * size}}
	fast := sampleOf(4, 40000, 80000, size) // reads never decide here
	probe := func(oneMs, allMs float64) *imapStoreSample {
		return &imapStoreSample{OneMsgs: 1000, OneTime: secs(oneMs), Sessions: 4, Msgs: 1000, Time: secs(allMs), Size: size}
	}
	read := func(n int, p int) float64 { t, _ := readTime(fast, n, int64(n)*size, p); return t }
	storeBound := func(store, readSec float64) time.Duration {
		return secs(max(store, readSec) + min(store, readSec)/4 + startupSec)
	}
	big := []folderWork{{400_000, 400_000 * size}, {100_000, 100_000 * size}}
	for _, c := range []struct {
		name string
		in   estimateInput
		want time.Duration
	}{
		{"four even folders: all sessions' cost", estimateInput{Folders: even, Workers: 4, IMAPTarget: true, IMAPStore: probe(0.4, 0.1)},
			storeBound(imapOverhead.at(100000)*100000*0.1e-3, read(100000, 4))},
		{"a probe twice as slow", estimateInput{Folders: even, Workers: 4, IMAPTarget: true, IMAPStore: probe(0.8, 0.2)},
			storeBound(imapOverhead.at(100000)*100000*0.2e-3, read(100000, 4))},
		{"a folder of 400,000: its chain at one session's cost", estimateInput{Folders: big, Workers: 4, IMAPTarget: true, IMAPStore: probe(0.2, 0.1)},
			storeBound(imapProbeOne*0.2e-3*400000+imapFolderGrowth*400000*400000/2, read(500000, 2))},
		{"two even folders, four sessions probed: the rate in between", estimateInput{Folders: even[:2], Workers: 4, IMAPTarget: true, IMAPStore: probe(0.4, 0.1)},
			// One session stores 2,500/s, four 10,000/s: two, 5,000/s.
			storeBound(imapOverhead.at(50000)*50000/5000.0, read(50000, 2))},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := estimateRun(c.in, fast)
			if d := e.Mid - c.want; d < -c.want/100 || d > c.want/100 {
				t.Errorf("estimate %s, want %s", e.Mid, c.want)
			}
			if e.Low >= e.Mid || e.High <= e.Mid {
				t.Errorf("range %s–%s does not hold %s", e.Low, e.High, e.Mid)
			}
		})
	}
}

// TestPlanProbeTarget: plan --probe-target against an IMAP target stores
// into scratch folders, reports what it measured, and leaves no folder
// behind; without the flag it writes nothing to the target.
func TestPlanProbeTarget(t *testing.T) {
	defer func(b, i time.Duration) { sampleBudget, imapProbeBudget = b, i }(sampleBudget, imapProbeBudget)
	sampleBudget, imapProbeBudget = 300*time.Millisecond, 300*time.Millisecond
	src := imaptest.Start(t, imaptest.Options{})
	for i := 0; i < 300; i++ {
		body := fmt.Sprintf("Message-ID: <m%d@test>\r\nSubject: %d\r\n\r\n%s\r\n", i, i, strings.Repeat("x", 900))
		if _, err := src.User.Append("INBOX", literal{bytes.NewReader([]byte(body))}, &imap.AppendOptions{Time: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
	}
	var appends atomic.Int64
	dst := imaptest.Start(t, imaptest.Options{Append: func(string, *imap.AppendOptions) error { appends.Add(1); return nil }})
	t.Setenv("MAILFERRY_SOURCE_PASSWORD", imaptest.Password)
	t.Setenv("MAILFERRY_TARGET_PASSWORD", imaptest.Password)
	for _, probe := range []bool{true, false} {
		rep := filepath.Join(t.TempDir(), "plan.json")
		args := []string{"plan", "imap://" + imaptest.User + "@" + src.Addr + "?tls=none", "imap://" + imaptest.User + "@" + dst.Addr + "?tls=none",
			"--state", t.TempDir(), "--report", rep}
		if probe {
			args = append(args, "--probe-target")
		}
		before := appends.Load()
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitOK {
			t.Fatalf("plan: exit %d\n%s%s", code, out.String(), errb.String())
		}
		var r struct {
			Plan struct {
				OneMsgs  int    `json:"store_one_messages"`
				Msgs     int    `json:"store_sample_messages"`
				Sessions int    `json:"store_sample_sessions"`
				ProbeErr string `json:"store_probe_error"`
			} `json:"plan"`
		}
		b, err := os.ReadFile(rep)
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err != nil {
			t.Fatal(err)
		}
		if left := scratchLeft(t, dst); len(left) > 0 {
			t.Fatalf("scratch folders left on the target: %v", left)
		}
		if !probe {
			if appends.Load() != before || r.Plan.Msgs != 0 {
				t.Errorf("without --probe-target: %d APPEND(s), %d reported", appends.Load()-before, r.Plan.Msgs)
			}
			continue
		}
		if r.Plan.OneMsgs == 0 || r.Plan.Msgs == 0 || r.Plan.Sessions != 4 || r.Plan.ProbeErr != "" {
			t.Errorf("--probe-target: report %+v", r.Plan)
		}
		if !strings.Contains(out.String(), "storing into the target") {
			t.Errorf("the estimate line does not say the target was probed:\n%s", out.String())
		}
	}
}
