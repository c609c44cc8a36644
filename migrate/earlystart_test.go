package migrate

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/source"
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
