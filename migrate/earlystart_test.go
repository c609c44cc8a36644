package migrate

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/target"
)

// hookedSkim is a skimSession that calls before ahead of each SkimPage.
type hookedSkim struct {
	*skimSession
	before func(ctx context.Context, f source.Folder) error
}

func (h *hookedSkim) SkimPage(ctx context.Context, f source.Folder, after string, max int, want func(string) bool) ([]source.Meta, []string, string, error) {
	if err := h.before(ctx, f); err != nil {
		return nil, nil, "", err
	}
	return h.skimSession.SkimPage(ctx, f, after, max, want)
}

// TestCopyStartsBeforeTheSkimEnds: on a re-run (or a resume) of a big
// account, the copy of what the planner found starts while it still skims
// the rest, mostly copied already. Before, the workers waited for a first
// window of planAhead messages to copy, so a 1,000,000-message resume
// skimmed every other folder (3 s) before its first copy. Here the skim of
// Archive waits, from its third page on, until a new message of INBOX is
// in the target: without the early start it would wait forever.
func TestCopyStartsBeforeTheSkimEnds(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 600, "Archive": 500})
	tg := newMemTarget()
	dir := t.TempDir()
	var full, byID atomic.Int64
	var archivePages atomic.Int64
	var waited atomic.Bool
	var hook func(ctx context.Context, f source.Folder) error
	open := func(ctx context.Context) (source.Source, error) {
		sess, err := s.opener()(ctx)
		if err != nil {
			return nil, err
		}
		sk := &skimSession{pagedSession: &pagedSession{Source: sess, n: 25}, full: &full, byID: &byID}
		return &hookedSkim{skimSession: sk, before: func(ctx context.Context, f source.Folder) error {
			if hook == nil {
				return nil
			}
			return hook(ctx, f)
		}}, nil
	}
	run := func() *Summary {
		t.Helper()
		j := openJournal(t, dir)
		defer j.Close()
		o := Options{Workers: 2, planWindow: 40, Logger: discardLogger, backoff: 1}
		sum, err := Run(context.Background(), open, tg.opener(), j, o)
		if err != nil || sum.Failed != 0 {
			t.Fatalf("failed %d, err %v", sum.Failed, err)
		}
		return sum
	}
	if sum := run(); sum.Copied != 1100 {
		t.Fatalf("first run copied %d", sum.Copied)
	}
	// INBOX (the largest folder by its STATUS count: planned first) gets
	// 4 new messages.
	for i := 600; i < 604; i++ {
		s.msgs["INBOX"] = append(s.msgs["INBOX"], testMsg("INBOX", i))
	}
	for i, f := range s.folders {
		s.folders[i].Messages = len(s.msgs[f.Name])
	}
	var gaveUp atomic.Bool
	hook = func(ctx context.Context, f source.Folder) error {
		if f.Name != "Archive" || archivePages.Add(1) < 3 || gaveUp.Load() {
			return nil
		}
		deadline := time.Now().Add(10 * time.Second)
		for tg.count() <= 1100 {
			if time.Now().After(deadline) {
				t.Errorf("the skim of Archive waited 10 s for a copy that never started")
				gaveUp.Store(true)
				return nil
			}
			time.Sleep(time.Millisecond)
		}
		waited.Store(true)
		return nil
	}
	sum := run()
	if sum.Copied != 4 || sum.AlreadyThere != 1100 {
		t.Fatalf("re-run: copied %d, already there %d; want 4 and 1100", sum.Copied, sum.AlreadyThere)
	}
	if !waited.Load() && !gaveUp.Load() {
		t.Fatalf("Archive was skimmed in %d pages: the test did not wait at its third", archivePages.Load())
	}
	checkExactlyOnce(t, s, tg)
}

// hookedPage is a skimSession that calls before ahead of each ListPage and
// SkimPage.
type hookedPage struct {
	*skimSession
	before func(f source.Folder, after string)
}

func (h *hookedPage) ListPage(ctx context.Context, f source.Folder, after string, max int) ([]source.Meta, string, error) {
	h.before(f, after)
	return h.skimSession.ListPage(ctx, f, after, max)
}

func (h *hookedPage) SkimPage(ctx context.Context, f source.Folder, after string, max int, want func(string) bool) ([]source.Meta, []string, string, error) {
	h.before(f, after)
	return h.skimSession.SkimPage(ctx, f, after, max, want)
}

// TestFirstPageListedBesideTheCensus: a folder's first page is listed on
// the source while the target says how many messages its folder holds
// (Census), not after. After a kill -9 into Dovecot each takes a second
// the first time (a folder of 400,000 messages is synced on both sides),
// and a resume's first copy waited for the two one after the other. Here
// each waits until the other has started: one after the other, the first
// gives up after 10 s and the test fails. Both for a first copy (the page
// listed in full) and for a re-run (the page skimmed).
func TestFirstPageListedBesideTheCensus(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 300})
	tg := newMemTarget()
	dir := t.TempDir()
	var full, byID atomic.Int64
	var listing, counting, gaveUp atomic.Bool
	meet := func(mine, other *atomic.Bool) {
		mine.Store(true)
		for deadline := time.Now().Add(10 * time.Second); !other.Load(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				gaveUp.Store(true)
				return
			}
		}
	}
	open := func(ctx context.Context) (source.Source, error) {
		sess, err := s.opener()(ctx)
		if err != nil {
			return nil, err
		}
		sk := &skimSession{pagedSession: &pagedSession{Source: sess, n: 100}, full: &full, byID: &byID}
		return &hookedPage{skimSession: sk, before: func(f source.Folder, after string) {
			if after == "" {
				meet(&listing, &counting)
			}
		}}, nil
	}
	tg.censusHook = func(string) { meet(&counting, &listing) }
	for _, tc := range []struct {
		name      string
		newMsgs   int
		wantCopy  int
		wantThere int
	}{
		{"first copy", 0, 300, 0},
		{"re-run", 4, 4, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.newMsgs {
				s.msgs["INBOX"] = append(s.msgs["INBOX"], testMsg("INBOX", 300+i))
			}
			s.folders[0].Messages = len(s.msgs["INBOX"])
			listing.Store(false)
			counting.Store(false)
			gaveUp.Store(false)
			j := openJournal(t, dir)
			defer j.Close()
			sum, err := Run(context.Background(), open, tg.opener(), j, Options{Workers: 2, Logger: discardLogger, backoff: 1})
			if err != nil || sum.Failed != 0 {
				t.Fatalf("failed %d, err %v", sum.Failed, err)
			}
			if sum.Copied != tc.wantCopy || sum.AlreadyThere != tc.wantThere {
				t.Errorf("copied %d, already there %d; want %d and %d", sum.Copied, sum.AlreadyThere, tc.wantCopy, tc.wantThere)
			}
			if !listing.Load() || !counting.Load() {
				t.Fatalf("listed %v, counted %v: the test did not meet both", listing.Load(), counting.Load())
			}
			if gaveUp.Load() {
				t.Errorf("the first page was listed and the target folder counted one after the other, not at once")
			}
			checkExactlyOnce(t, s, tg)
		})
	}
}

// markedSession is a target session that is a target.Marker, calling
// before ahead of each Mark.
type markedSession struct {
	memTargetSession
	before func()
}

func (m *markedSession) Features() target.Features {
	f := m.memTargetSession.Features()
	f.Marks = true
	return f
}

func (m *markedSession) Mark(ctx context.Context, folder string) (string, error) {
	m.before()
	return "1:1", nil
}

// fetchHooked is a source session that calls before ahead of each Fetch.
type fetchHooked struct {
	source.Source
	before func()
}

func (f *fetchHooked) Fetch(ctx context.Context, fo source.Folder, ids []string, fn func(source.Meta, io.Reader) error) error {
	f.before()
	return f.Source.Fetch(ctx, fo, ids, fn)
}

// TestSourceReadBesideTheIntents: a worker starts reading a batch from the
// source while it reads the target folder's mark and makes the batch's
// intents durable, not after: the first body read in a new Dovecot session
// of a folder of 400,000 messages takes over a second, and a resume's first
// copy waited for the mark (a STATUS or a SELECT) and the fsync before it.
// Here the mark and the read each wait until the other has started: one
// after the other, the first gives up after 10 s and the test fails. The
// intents are still durable before anything is stored (the crash points
// check that).
func TestSourceReadBesideTheIntents(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 200})
	tg := newMemTarget()
	var marking, reading, gaveUp atomic.Bool
	var marks atomic.Int64
	meet := func(mine, other *atomic.Bool) {
		mine.Store(true)
		for deadline := time.Now().Add(10 * time.Second); !other.Load(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				gaveUp.Store(true)
				return
			}
		}
	}
	src := func(ctx context.Context) (source.Source, error) {
		sess, err := s.opener()(ctx)
		if err != nil {
			return nil, err
		}
		return &fetchHooked{Source: sess, before: func() { meet(&reading, &marking) }}, nil
	}
	tgt := func(ctx context.Context) (target.Target, error) {
		return &markedSession{memTargetSession: memTargetSession{t: tg}, before: func() {
			marks.Add(1)
			meet(&marking, &reading)
		}}, nil
	}
	j := openJournal(t, t.TempDir())
	defer j.Close()
	sum, err := Run(context.Background(), src, tgt, j, Options{Workers: 1, BatchSize: 50, Logger: discardLogger, backoff: 1})
	if err != nil || sum.Failed != 0 || sum.Copied != 200 {
		t.Fatalf("copied %d, failed %d, err %v", sum.Copied, sum.Failed, err)
	}
	if marks.Load() < 4 {
		t.Fatalf("%d marks read for 4 batches", marks.Load())
	}
	if gaveUp.Load() {
		t.Errorf("the mark was read (and the intents written) before the source read, not beside it")
	}
	checkExactlyOnce(t, s, tg)
}
