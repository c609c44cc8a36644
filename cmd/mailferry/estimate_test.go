package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
)

// sampleOf is a sample in which one session reads oneRate messages/s and
// all sessions together allRate, every message size bytes.
func sampleOf(sessions int, oneRate, allRate float64, size int64) *readSample {
	s := &readSample{Sessions: sessions, Folders: 1, OneMsgs: int(oneRate), OneBytes: int64(oneRate) * size, OneTime: time.Second,
		Msgs: int(allRate * 2), Bytes: int64(allRate*2) * size, Time: 2 * time.Second}
	for i := 0; i < 50; i++ {
		s.chunkRates = append(s.chunkRates, allRate*(0.98+0.04*float64(i%2)))
	}
	return s
}

// TestEstimateRun is the estimator's arithmetic: the store factor, the
// workers, one worker per folder on an IMAP target, the range, and the
// floor --max-rate and --max-bandwidth set.
func TestEstimateRun(t *testing.T) {
	const size = 10000
	one := []folderWork{{Msgs: 10000, Bytes: 10000 * size}}
	even := []folderWork{{2500, 2500 * size}, {2500, 2500 * size}, {2500, 2500 * size}, {2500, 2500 * size}}
	for _, c := range []struct {
		name      string
		in        estimateInput
		s         *readSample
		mid       time.Duration // within 1 %
		limitedBy string
	}{
		{"maildir, 4 workers read at 400/s", estimateInput{Folders: one, Workers: 4}, sampleOf(4, 200, 400, size),
			secs(10000.0/400*storeFactorMaildir + startupSec), ""},
		{"IMAP target, one folder: one worker's rate", estimateInput{Folders: one, Workers: 4, IMAPTarget: true}, sampleOf(4, 200, 400, size),
			imapMid(10000.0/200, 10000, 10000*size, 1), ""},
		{"IMAP target, four even folders: all workers", estimateInput{Folders: even, Workers: 4, IMAPTarget: true}, sampleOf(4, 200, 400, size),
			imapMid(10000.0/400, 10000, 10000*size, 4), ""},
		{"IMAP target, two folders of four: two sessions' rate", estimateInput{Folders: even[:2], Workers: 4, IMAPTarget: true}, sampleOf(4, 200, 400, size),
			imapMid(5000.0/(200+200.0/3), 5000, 5000*size, 2), ""},
		{"IMAP target, fast reads: the store decides", estimateInput{Folders: even, Workers: 4, IMAPTarget: true}, sampleOf(4, 4000, 8000, size),
			imapMid(10000.0/8000, 10000, 10000*size, 4), ""},
		{"IMAP target, a folder of 400,000 among 1,000,000: its one session decides", estimateInput{Folders: []folderWork{
			{400_000, 400_000 * 1300}, {240_000, 240_000 * 1300}, {160_000, 160_000 * 1300}, {120_000, 120_000 * 1300}, {80_000, 80_000 * 1300}},
			Workers: 4, IMAPTarget: true}, sampleOf(4, 4000, 8000, 1300),
			// 400,000 × 0.177 ms + 2.3 ns × 400,000²/2 + 520 MB × 2 ns,
			// the read (1,000,000 at 8,000/s) overlapping, and the start-up.
			secs(70.8 + 184 + 1.04 + 1e6/8000.0/4 + startupSec), ""},
		{"Maildir with its file system probed: read and store add up", estimateInput{Folders: one, Workers: 4,
			Store: &storeSample{Sessions: 4, Msgs: 500, Bytes: 500 * size, Time: time.Second}}, sampleOf(4, 200, 400, size),
			secs((10000.0/400+10000.0/500)*maildirOverhead.at(10000) + startupSec), ""},
		{"listing overlaps the copy", estimateInput{Folders: one, Workers: 4, Listing: 7 * time.Second}, sampleOf(4, 200, 400, size),
			7*time.Second/4 + secs(10000.0/400*storeFactorMaildir+startupSec), ""},
		{"a listing longer than the copy", estimateInput{Folders: one, Workers: 4, Listing: 200 * time.Second}, sampleOf(4, 200, 400, size),
			200*time.Second + secs((10000.0/400*storeFactorMaildir+startupSec)/4), ""},
		{"--max-rate 5: 600 messages take two minutes", estimateInput{Folders: []folderWork{{600, 600 * size}}, Workers: 4, MaxRate: 5}, sampleOf(4, 200, 400, size),
			2 * time.Minute, "--max-rate"},
		{"--max-bandwidth 1 MB/s", estimateInput{Folders: one, Workers: 4, MaxBandwidth: 1e6}, sampleOf(4, 200, 400, size),
			100 * time.Second, "--max-bandwidth"},
		{"--max-rate above what the servers do: no effect", estimateInput{Folders: one, Workers: 4, MaxRate: 1000}, sampleOf(4, 200, 400, size),
			secs(10000.0/400*storeFactorMaildir + startupSec), ""},
		{"no sample: the default rate", estimateInput{Folders: one, Workers: 4}, nil,
			secs(max(10000.0*size/defaultBytesPerSec, 10000.0/defaultMsgsPerSec)/4*storeFactorMaildir + startupSec), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := estimateRun(c.in, c.s)
			if d := e.Mid - c.mid; d < -c.mid/100 || d > c.mid/100 {
				t.Errorf("estimate %s, want %s", e.Mid, c.mid)
			}
			if e.LimitedBy != c.limitedBy {
				t.Errorf("limited by %q, want %q", e.LimitedBy, c.limitedBy)
			}
			if !(e.Low <= e.Mid && e.Mid <= e.High) {
				t.Errorf("range %s–%s does not hold %s", e.Low, e.High, e.Mid)
			}
			if c.limitedBy != "" && e.Low < c.mid {
				t.Errorf("the range starts at %s, below what %s allows (%s)", e.Low, c.limitedBy, c.mid)
			}
			if c.limitedBy == "" && c.s != nil && (e.High > e.Mid*3/2 || e.Low < e.Mid*2/3) {
				t.Errorf("range %s–%s around %s: wider than ±50 %% for a steady sample", e.Low, e.High, e.Mid)
			}
		})
	}
}

// imapMid is the estimate for an IMAP target: reading readSec, storing at
// imapStorePerMsg and imapStorePerByte (slower with one session).
func imapMid(readSec float64, n int, b int64, sessions int) time.Duration {
	store := float64(n)*imapStorePerMsg.Seconds() + float64(b)*imapStorePerByte.Seconds()
	if sessions == 1 {
		store *= 1.6
	}
	return secs(max(readSec, store) + min(readSec, store)/4 + startupSec)
}

// TestEstimateRangeWidens: a sample whose messages are much smaller than
// those to copy (message rate and byte rate disagree) and whose chunks
// vary a lot gives a wider range than a steady, representative one.
func TestEstimateRangeWidens(t *testing.T) {
	in := estimateInput{Folders: []folderWork{{10000, 10000 * 10000}}, Workers: 2}
	steady := estimateRun(in, sampleOf(2, 200, 400, 10000))
	odd := sampleOf(2, 200, 400, 1000)
	for i := range odd.chunkRates {
		odd.chunkRates[i] *= float64(1 + 3*(i%2))
	}
	wide := estimateRun(in, odd)
	if wide.High-wide.Low <= steady.High-steady.Low || float64(wide.High)/float64(wide.Low) <= float64(steady.High)/float64(steady.Low) {
		t.Errorf("steady %s–%s, odd %s–%s: the odd sample should be less sure", steady.Low, steady.High, wide.Low, wide.High)
	}
}

func TestSampleRateInterpolates(t *testing.T) {
	s := sampleOf(5, 100, 300, 1)
	for p, want := range map[int]float64{1: 100, 3: 200, 5: 300, 8: 300} {
		if m, _ := s.rate(p); m < want-0.01 || m > want+0.01 {
			t.Errorf("rate(%d) = %.1f, want %.0f", p, m, want)
		}
	}
	// A first phase slower than a session's share of the second: the share.
	s = sampleOf(4, 50, 400, 1)
	for p, want := range map[int]float64{1: 100, 4: 400} {
		if m, _ := s.rate(p); m < want-0.01 || m > want+0.01 {
			t.Errorf("rate(%d) = %.1f, want %.0f", p, m, want)
		}
	}
}

func TestRoundEstimate(t *testing.T) {
	for d, want := range map[time.Duration]string{
		300 * time.Millisecond: "under a second", 7 * time.Second: "7s", 145 * time.Second: "2m25s",
		182 * time.Second: "3m", 29*time.Minute + 10*time.Second: "29m", 65 * time.Minute: "1h5m",
	} {
		if got := roundEstimate(d); got != want {
			t.Errorf("roundEstimate(%s) = %q, want %q", d, got, want)
		}
	}
}

// TestProbeMaildirStore: the probe stores into a scratch Maildir beside
// the target's root, on its file system, and leaves nothing behind; the
// root (and its parents, which do not exist yet) is not created.
func TestProbeMaildirStore(t *testing.T) {
	defer func(s time.Duration) { storeBudget = s }(storeBudget)
	storeBudget = 200 * time.Millisecond
	base := t.TempDir()
	root := filepath.Join(base, "Backup", "bob", "Mail")
	ss, err := probeMaildirStore(t.Context(), root, 2, 100000, 3000)
	if err != nil || !ss.ok() || ss.Sessions != 2 || ss.Bytes != int64(ss.Msgs)*3000 {
		t.Fatalf("probe: %+v, %v", ss, err)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 0 {
		t.Errorf("left behind in %s: %v", base, ents)
	}
	t.Logf("%d messages in %s", ss.Msgs, ss.Time)
}

type literal struct {
	*bytes.Reader
}

func (l literal) Size() int64 { return l.Reader.Size() }

// TestPlanHonoursMaxRate: plan against an in-process IMAP server with 600
// messages. With --max-rate 5 the copy cannot take less than two minutes,
// and plan says so (before, it said "under a second"); without, it
// measures a warm sample of more than the 20 messages it used to.
func TestPlanHonoursMaxRate(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	for _, f := range []string{"Archive", "Sent"} {
		if err := srv.User.Create(f, nil); err != nil {
			t.Fatal(err)
		}
	}
	folders := []string{"INBOX", "INBOX", "Archive", "Sent"}
	for i := 0; i < 600; i++ {
		body := fmt.Sprintf("Message-ID: <m%d@test>\r\nSubject: %d\r\nDate: Mon, 6 May 2024 07:08:09 +0000\r\n\r\n%s\r\n", i, i, strings.Repeat("x", 500+i%7*300))
		if _, err := srv.User.Append(folders[i%4], literal{bytes.NewReader([]byte(body))}, &imap.AppendOptions{Time: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("MAILFERRY_SOURCE_PASSWORD", imaptest.Password)
	src := "imap://" + imaptest.User + "@" + srv.Addr + "?tls=none"
	defer func(b, s time.Duration) { sampleBudget, storeBudget = b, s }(sampleBudget, storeBudget)
	sampleBudget, storeBudget = 600*time.Millisecond, 300*time.Millisecond
	type planRep struct {
		Plan struct {
			ToCopy         int    `json:"to_copy"`
			Estimate       int64  `json:"estimate_ns"`
			Low            int64  `json:"estimate_low_ns"`
			High           int64  `json:"estimate_high_ns"`
			LimitedBy      string `json:"limited_by"`
			SampleMessages int    `json:"sample_messages"`
			RateMeasured   bool   `json:"rate_measured"`
		} `json:"plan"`
	}
	plan := func(extra ...string) (planRep, string) {
		rep := filepath.Join(t.TempDir(), "plan.json")
		var out, errb bytes.Buffer
		args := append([]string{"plan", src, "maildir:" + filepath.Join(t.TempDir(), "Mail"), "--state", t.TempDir(), "--report", rep}, extra...)
		if code := run(args, &out, &errb); code != exitOK {
			t.Fatalf("plan %v: exit %d\n%s%s", extra, code, out.String(), errb.String())
		}
		var r planRep
		b, err := os.ReadFile(rep)
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err != nil {
			t.Fatal(err)
		}
		return r, out.String()
	}
	r, out := plan("--max-rate", "5")
	t.Logf("%s", out)
	if r.Plan.ToCopy != 600 {
		t.Fatalf("to copy %d, want 600", r.Plan.ToCopy)
	}
	if r.Plan.Estimate < int64(2*time.Minute) || r.Plan.Low < int64(2*time.Minute) || r.Plan.LimitedBy != "--max-rate" {
		t.Errorf("--max-rate 5, 600 messages: estimate %s (%s–%s), limited by %q; want at least 2m0s, by --max-rate",
			time.Duration(r.Plan.Estimate), time.Duration(r.Plan.Low), time.Duration(r.Plan.High), r.Plan.LimitedBy)
	}
	if !strings.Contains(out, "Estimate: 2m") || !strings.Contains(out, "set by --max-rate 5: 600 messages take at least 2m") {
		t.Errorf("the estimate line does not say it:\n%s", out)
	}
	r, out = plan()
	t.Logf("%s", out)
	if !r.Plan.RateMeasured || r.Plan.SampleMessages <= 20 || r.Plan.Estimate >= int64(time.Minute) || r.Plan.LimitedBy != "" {
		t.Errorf("without a limit: measured %v on %d messages, estimate %s, limited by %q",
			r.Plan.RateMeasured, r.Plan.SampleMessages, time.Duration(r.Plan.Estimate), r.Plan.LimitedBy)
	}
}

// TestEstimateAgainstDovecot measures, with MAILFERRY_ESTIMATE=N (skipped
// otherwise), plan's estimate and then the time migrate takes for N
// messages from a private Dovecot to the same Dovecot and to a Maildir,
// and logs both (the estimator's store factors come from such runs). With
// MAILFERRY_ESTIMATE_SMALL=1 the messages are all about 1.3 KB (the shape
// of issue 15), else the corpus package's mix.
func TestEstimateAgainstDovecot(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MAILFERRY_ESTIMATE"))
	if n <= 0 {
		t.Skip("set MAILFERRY_ESTIMATE=N to measure plan's estimate against migrate at N messages")
	}
	dv := dovecottest.Start(t, dovecottest.Options{})
	var msgs []corpus.Message
	if os.Getenv("MAILFERRY_ESTIMATE_SMALL") != "" {
		msgs = smallMessages(n)
	} else {
		msgs = corpus.Generate(corpus.Options{Messages: n, Seed: 1})
	}
	dv.Load(t, "src", msgs)
	t.Setenv("MAILFERRY_SOURCE_PASSWORD", dovecottest.Password)
	t.Setenv("MAILFERRY_TARGET_PASSWORD", dovecottest.Password)
	src := "imap://src@" + dv.IMAP + "?tls=none"
	for _, tgt := range []struct{ name, url string }{
		{"IMAP→Maildir", "maildir:" + filepath.Join(t.TempDir(), "Mail")},
		{"IMAP→IMAP", "imap://dst@" + dv.IMAP + "?tls=none"},
	} {
		state := t.TempDir()
		rep := filepath.Join(t.TempDir(), "plan.json")
		var out, errb bytes.Buffer
		cpu0 := cpuOf(dv.Conf)
		start := time.Now()
		if code := run([]string{"plan", src, tgt.url, "--state", state, "--report", rep}, &out, &errb); code != exitOK {
			t.Fatalf("plan: exit %d\n%s%s", code, out.String(), errb.String())
		}
		planTook := time.Since(start)
		planCPU := cpuOf(dv.Conf) - cpu0
		var r struct {
			Plan planInfo `json:"plan"`
		}
		b, _ := os.ReadFile(rep)
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		errb.Reset()
		cpu0 = cpuOf(dv.Conf)
		start = time.Now()
		if code := run([]string{"migrate", src, tgt.url, "--state", state, "--no-progress"}, &out, &errb); code != exitOK {
			t.Fatalf("migrate: exit %d\n%s%s", code, out.String(), errb.String())
		}
		took := time.Since(start)
		runCPU := cpuOf(dv.Conf) - cpu0
		load, _ := os.ReadFile("/proc/loadavg")
		p := r.Plan
		t.Logf("%s: CPU (this process and Dovecot): plan %s, migrate %s; per sampled message %.3f ms, per copied message %.3f ms (%.1fx); load %s",
			tgt.name, planCPU.Round(time.Millisecond), runCPU.Round(time.Millisecond), planCPU.Seconds()*1000/float64(r.Plan.SampleMessages),
			runCPU.Seconds()*1000/float64(n), runCPU.Seconds()/float64(n)/(planCPU.Seconds()/float64(r.Plan.SampleMessages)), strings.Fields(string(load))[0])
		t.Logf("%s, %d messages, %s: estimate %s (%s–%s), measured %s (%+.0f %%); plan took %s, sample %d msgs %s in %s with %d sessions, %.0f msgs/s per connection, listing %s",
			tgt.name, n, humanBytes(p.ToCopyBytes), p.Estimate.Round(time.Millisecond), p.EstimateLow.Round(time.Millisecond), p.EstimateHigh.Round(time.Millisecond),
			took.Round(time.Millisecond), 100*(p.Estimate.Seconds()/took.Seconds()-1), planTook.Round(time.Millisecond),
			p.SampleMessages, humanBytes(p.SampleBytes), p.SampleTime.Round(time.Millisecond), p.SampleSessions, p.MsgsPerSec, p.Listing.Round(time.Millisecond))
		if tgt.name == "IMAP→IMAP" {
			dv.Reset(t, "dst")
		}
	}
}

// smallMessages is n messages of about 1.3 KB over 6 folders, the largest
// holding 40 % (as internal/e2e's scale test).
func smallMessages(n int) []corpus.Message {
	folders := []string{"INBOX", "INBOX", "Archive", "Sent", "Lists/go", "Lists/dovecot", "Archive", "Sent", "INBOX", "INBOX"}
	msgs := make([]corpus.Message, n)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	filler := strings.Repeat(strings.Repeat("abcdefghijklmnopqrstuvwxyz", 3)[:75]+"\r\n", 14)
	for i := range msgs {
		id := fmt.Sprintf("<scale%d@example.com>", i)
		date := base.Add(time.Duration(i) * time.Minute)
		body := fmt.Sprintf("From: a%d@example.com\r\nTo: b@example.com\r\nSubject: message %d\r\nDate: %s\r\nMessage-ID: %s\r\n\r\n%s",
			i%97, i, date.Format(time.RFC1123Z), id, filler)
		msgs[i] = corpus.Message{Folder: folders[i%len(folders)], Body: []byte(body), Date: date, MessageID: id}
	}
	return msgs
}

// TestOverheadGrowsWithTheRun: a small run costs about what the samples
// say; from 200,000 messages on, more (see runOverhead), log-linear
// between.
func TestOverheadGrowsWithTheRun(t *testing.T) {
	for _, o := range []runOverhead{maildirOverhead, imapOverhead} {
		for _, c := range []struct {
			n    int
			want float64
		}{
			{100, o.small},
			{smallRun, o.small},
			{int(math.Round(math.Sqrt(smallRun * largeRun))), (o.small + o.large) / 2},
			{largeRun, o.large},
			{5 * largeRun, o.large},
		} {
			if got := o.at(c.n); math.Abs(got-c.want) > 0.001 {
				t.Errorf("%+v.at(%d) = %.3f, want %.3f", o, c.n, got, c.want)
			}
		}
	}
}
