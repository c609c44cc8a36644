package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/mailferry/mailferry/source"
)

// pagedOpener gives the sessions of open a source.Pager of n messages a
// page, made from List (the cursor is the last ID of the page before).
func pagedOpener(open source.Opener, n int, pages *atomic.Int64) source.Opener {
	return func(ctx context.Context) (source.Source, error) {
		s, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return &pagedSession{Source: s, n: n, pages: pages}, nil
	}
}

type pagedSession struct {
	source.Source
	n     int
	pages *atomic.Int64
}

func (p *pagedSession) Features() source.Features {
	f := p.Source.Features()
	f.Pages = true
	return f
}

func (p *pagedSession) List(ctx context.Context, f source.Folder) ([]source.Meta, error) {
	return nil, errors.New("List called on a Pager")
}

func (p *pagedSession) ListPage(ctx context.Context, f source.Folder, after string, max int) ([]source.Meta, string, error) {
	if p.pages != nil {
		p.pages.Add(1)
	}
	all, err := p.Source.List(ctx, f)
	if err != nil {
		return nil, "", err
	}
	i := 0
	if after != "" {
		for i < len(all) && all[i].ID != after {
			i++
		}
		i++
	}
	all = all[min(i, len(all)):]
	if len(all) <= p.n {
		return all, "", nil
	}
	return all[:p.n], all[p.n-1].ID, nil
}

func (p *pagedSession) Identities(ctx context.Context, f source.Folder, fn func(source.Identity) error) error {
	idr, ok := p.Source.(source.Identifier)
	if !ok {
		return errors.New("no identities")
	}
	return idr.Identities(ctx, f, fn)
}

func (p *pagedSession) Delete(ctx context.Context, f source.Folder, ids []string) error {
	return p.Source.(source.Deleter).Delete(ctx, f, ids)
}

func (p *pagedSession) Fetch(ctx context.Context, f source.Folder, ids []string, fn func(source.Meta, io.Reader) error) error {
	return p.Source.Fetch(ctx, f, ids, fn)
}

// TestStreamingPlan: a source listed in pages, with a plan window far
// smaller than the account, is copied exactly once into a Maildir-like
// target (workers share folders) and an IMAP-like one (one worker per
// folder); the queue never holds much more than the window, the progress
// totals end exact, and a re-run copies nothing.
func TestStreamingPlan(t *testing.T) {
	for _, tc := range []struct{ imapLike, paged bool }{{false, true}, {true, true}, {false, false}, {true, false}} {
		imapLike := tc.imapLike
		t.Run(fmt.Sprintf("crlf=%v/pager=%v", imapLike, tc.paged), func(t *testing.T) {
			s := newSource(map[string]int{"INBOX": 300, "Archive": 200, "Sent": 90, "Empty": 0})
			for i := range s.folders {
				s.folders[i].Messages = len(s.msgs[s.folders[i].Name])
			}
			tg := newMemTarget()
			tg.crlf = imapLike
			var pages atomic.Int64
			var maxQueued atomic.Int64
			testHookQueued = func(n int) {
				for {
					m := maxQueued.Load()
					if int64(n) <= m || maxQueued.CompareAndSwap(m, int64(n)) {
						return
					}
				}
			}
			defer func() { testHookQueued = nil }()
			dir := t.TempDir()
			st := new(Stats)
			j := openJournal(t, dir)
			srcOpen := s.opener()
			if tc.paged {
				srcOpen = pagedOpener(srcOpen, 25, &pages)
			}
			sum, err := Run(context.Background(), srcOpen, tg.opener(), j,
				Options{Workers: 3, planWindow: 40, Stats: st, Logger: discardLogger, backoff: 1})
			j.Close()
			if err != nil || sum.Copied != 590 || sum.Failed != 0 {
				t.Fatalf("copied %d, failed %d, err %v", sum.Copied, sum.Failed, err)
			}
			checkExactlyOnce(t, s, tg)
			if p := pages.Load(); tc.paged && p < 590/25 {
				t.Errorf("%d pages listed; want one per 25 messages", p)
			}
			// The window (40) plus one page of each of the 3 open folders
			// (25 from the pager; 64, the smallest, from a whole List) and
			// a batch's rounding.
			if m := maxQueued.Load(); m > 40+3*64+16 {
				t.Errorf("up to %d messages queued; want about the window of 40", m)
			}
			if st.TotalMsgs.Load() != 590 || !st.Listed.Load() {
				t.Errorf("progress total %d (listed %v); want 590", st.TotalMsgs.Load(), st.Listed.Load())
			}
			for _, f := range sum.Folders {
				if f.Listed != len(s.msgs[f.Source]) || f.ToCopy != f.Listed || f.Copied != f.Listed {
					t.Errorf("%s: listed %d, to copy %d, copied %d; want %d", f.Source, f.Listed, f.ToCopy, f.Copied, len(s.msgs[f.Source]))
				}
			}
			j = openJournal(t, dir)
			sum, err = Run(context.Background(), pagedOpener(s.opener(), 25, nil), tg.opener(), j,
				Options{Workers: 3, planWindow: 40, Logger: discardLogger, backoff: 1})
			j.Close()
			if err != nil || sum.Copied != 0 || sum.AlreadyThere != 590 {
				t.Fatalf("re-run: copied %d, already %d, err %v", sum.Copied, sum.AlreadyThere, err)
			}
			checkExactlyOnce(t, s, tg)
		})
	}
}

// TestWindowsFollowTheBudget: the plan window, the listing page and the
// spool's in-memory part follow Options.Memory, within their bounds.
func TestWindowsFollowTheBudget(t *testing.T) {
	for _, tc := range []struct {
		memory         int64
		workers        int
		ahead, page    int
		spoolThreshold int
	}{
		{DefaultMemory, 4, 16384, 4096, 1 << 20},
		{64 << 20, 4, 4096, 1024, 512 << 10},
		{16 << 20, 8, 1024, 256, 64 << 10},
		{8 << 30, 4, 65536, 16384, 1 << 20},
	} {
		o := Options{Memory: tc.memory, Workers: tc.workers}
		if a, p, s := o.planAhead(), o.pageSize(), o.spoolThreshold(); a != tc.ahead || p != tc.page || s != tc.spoolThreshold {
			t.Errorf("memory %d, %d workers: plan ahead %d, page %d, spool %d; want %d, %d, %d", tc.memory, tc.workers, a, p, s, tc.ahead, tc.page, tc.spoolThreshold)
		}
	}
}

// TestStreamingWithOneSession: a source that allows one session (POP3
// [IN-USE], a server's connection limit) while the plan is still being
// made: the workers cannot connect, the planner goes on without waiting
// for them, and worker 0 copies everything on the listing sessions once
// the plan is done.
func TestStreamingWithOneSession(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 120, "Archive": 80})
	s.maxSess = 1
	tg := newMemTarget()
	dir := t.TempDir()
	j := openJournal(t, dir)
	defer j.Close()
	sum, err := Run(context.Background(), pagedOpener(s.opener(), 10, nil), tg.opener(), j,
		Options{Workers: 3, planWindow: 20, Logger: discardLogger, backoff: 1, Retries: 1})
	if err != nil || sum.Copied != 200 || sum.Failed != 0 {
		t.Fatalf("copied %d, failed %d, err %v", sum.Copied, sum.Failed, err)
	}
	checkExactlyOnce(t, s, tg)
}

// skimSession is a pagedSession that is a source.Skimmer, made from
// ListPage; full counts the messages it gave in full, and byID those it
// gave by ID only.
type skimSession struct {
	*pagedSession
	full, byID *atomic.Int64
}

func (p *skimSession) Features() source.Features {
	f := p.pagedSession.Features()
	f.Skim = true
	return f
}

func (p *skimSession) SkimPage(ctx context.Context, f source.Folder, after string, max int, want func(string) bool) ([]source.Meta, []string, string, error) {
	page, next, err := p.ListPage(ctx, f, after, max)
	if err != nil {
		return nil, nil, "", err
	}
	var metas []source.Meta
	var known []string
	for _, m := range page {
		if want(m.ID) {
			metas = append(metas, m)
		} else {
			known = append(known, m.ID)
		}
	}
	p.full.Add(int64(len(metas)))
	p.byID.Add(int64(len(known)))
	return metas, known, next, nil
}

func skimOpener(open source.Opener, n int, full, byID *atomic.Int64) source.Opener {
	return func(ctx context.Context) (source.Source, error) {
		s, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return &skimSession{pagedSession: &pagedSession{Source: s, n: n}, full: full, byID: byID}, nil
	}
}

// TestSkimmedReRun: a re-run over a Skimmer lists what the journal has
// copied by ID only, gets the full Meta of the messages that arrived since
// (copied once, with their flags and dates), and counts the rest as
// already there; with --delete-source the messages listed by ID only are
// deleted from the source too. Not with --sync-flags or --dry-run, which
// need every message's flags and size.
func TestSkimmedReRun(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 300, "Archive": 200})
	tg := newMemTarget()
	dir := t.TempDir()
	var full, byID atomic.Int64
	run := func(o Options) *Summary {
		t.Helper()
		j := openJournal(t, dir)
		defer j.Close()
		o.Workers, o.planWindow, o.Logger, o.backoff = 2, 40, discardLogger, 1
		full.Store(0)
		byID.Store(0)
		sum, err := Run(context.Background(), skimOpener(s.opener(), 25, &full, &byID), tg.opener(), j, o)
		if err != nil || sum.Failed != 0 {
			t.Fatalf("failed %d, err %v", sum.Failed, err)
		}
		return sum
	}
	if sum := run(Options{}); sum.Copied != 500 {
		t.Fatalf("first run copied %d", sum.Copied)
	}
	for i := 300; i < 304; i++ {
		m := testMsg("INBOX", i)
		m.flags = []string{`\Flagged`}
		s.msgs["INBOX"] = append(s.msgs["INBOX"], m)
	}
	sum := run(Options{})
	if sum.Copied != 4 || sum.AlreadyThere != 500 {
		t.Fatalf("re-run: copied %d, already there %d; want 4 and 500", sum.Copied, sum.AlreadyThere)
	}
	checkExactlyOnce(t, s, tg)
	// The journal knows both folders: SkimPage lists them from their first
	// page on, and gives only the 4 new messages in full.
	if f, k := full.Load(), byID.Load(); f != 4 || k != 500 {
		t.Errorf("re-run: SkimPage gave %d messages in full and %d by ID; want 4 and 500", f, k)
	}
	for _, f := range sum.Folders {
		if f.Listed != len(s.msgs[f.Source]) {
			t.Errorf("%s: listed %d; want %d", f.Source, f.Listed, len(s.msgs[f.Source]))
		}
	}
	for _, o := range []Options{{SyncFlags: true}, {DryRun: true}} {
		if sum := run(o); sum.Copied != 0 || full.Load()+byID.Load() != 0 || sum.AlreadyThere != 504 {
			t.Errorf("%+v: copied %d, already %d, %d listed by SkimPage; want 0, 504 and SkimPage not used", o, sum.Copied, sum.AlreadyThere, full.Load()+byID.Load())
		}
	}
	sum = run(Options{DeleteSource: true})
	if sum.AlreadyThere != 504 || len(s.msgs["INBOX"])+len(s.msgs["Archive"]) != 0 {
		t.Fatalf("--delete-source re-run: already %d, %d left on the source; want 504 and 0", sum.AlreadyThere, len(s.msgs["INBOX"])+len(s.msgs["Archive"]))
	}
}
