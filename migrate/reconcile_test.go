package migrate

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/checkpoint"
	"github.com/mailferry/mailferry/target"
)

// TestReconcileWithTheTarget: the target is the truth and the journal a
// cache (issue 10 item 4). Each case prepares a target and a journal that
// disagree, runs once, and checks exactly once plus what was copied.
func TestReconcileWithTheTarget(t *testing.T) {
	const n = 30
	folders := map[string]int{"INBOX": n, "Archive": n}
	type setup func(t *testing.T, s *memSource, tg *memTarget, dir string) (stateDir string)
	freshState := func(t *testing.T, s *memSource, tg *memTarget, dir string) string {
		if _, err := runOnce(t, context.Background(), dir, s, tg, Options{Workers: 2}); err != nil {
			t.Fatal(err)
		}
		return t.TempDir() // the state directory is lost
	}
	for _, tc := range []struct {
		name       string
		identities bool // the source implements source.Identifier
		pipeline   bool
		prepare    setup
		wantCopied int
	}{
		{"lost state, complete target", true, false, freshState, 0},
		{"lost state, complete target, no source identities", false, false, freshState, 0},
		{"lost state, pipelining target", true, true, freshState, 0},
		{"target emptied after a run", true, false, func(t *testing.T, s *memSource, tg *memTarget, dir string) string {
			if _, err := runOnce(t, context.Background(), dir, s, tg, Options{Workers: 2}); err != nil {
				t.Fatal(err)
			}
			tg.mu.Lock()
			for f := range tg.folders {
				tg.folders[f] = nil
			}
			tg.mu.Unlock()
			return dir
		}, 2 * n},
		{"one message deleted from the target", true, false, func(t *testing.T, s *memSource, tg *memTarget, dir string) string {
			if _, err := runOnce(t, context.Background(), dir, s, tg, Options{Workers: 2}); err != nil {
				t.Fatal(err)
			}
			tg.mu.Lock()
			tg.folders["Archive"] = tg.folders["Archive"][1:]
			tg.mu.Unlock()
			return dir
		}, 1},
		{"folder re-created and restored from a backup", true, false, func(t *testing.T, s *memSource, tg *memTarget, dir string) string {
			if _, err := runOnce(t, context.Background(), dir, s, tg, Options{Workers: 2}); err != nil {
				t.Fatal(err)
			}
			tg.mu.Lock()
			tg.folders["INBOX"] = nil
			tg.validity = map[string]uint32{"INBOX": 2} // re-created: only INBOX
			tg.mu.Unlock()
			tg.preload("INBOX", s.msgs["INBOX"])
			return dir
		}, 0},
		{"target restored from a backup of the source", true, false, func(t *testing.T, s *memSource, tg *memTarget, dir string) string {
			for f, l := range s.msgs {
				tg.preload(f, l)
			}
			return dir
		}, 0},
		{"target holds half, lost state", true, false, func(t *testing.T, s *memSource, tg *memTarget, dir string) string {
			for f, l := range s.msgs {
				tg.preload(f, l[:n/2])
			}
			return dir
		}, n},
	} {
		for _, skim := range []bool{false, true} {
			name := tc.name
			if skim {
				// A Skimmer (IMAP) skims the first page of a folder the
				// journal knows; when that page shows the folder must be
				// reconciled, it is listed again in full.
				name += ", skimming source"
			}
			t.Run(name, func(t *testing.T) {
				s := newSource(folders)
				s.identities = tc.identities
				tg := newMemTarget()
				tg.pipeline = tc.pipeline
				tg.folders["Archive"] = nil
				state := tc.prepare(t, s, tg, t.TempDir())
				var full, byID atomic.Int64
				run := runOnce
				if skim {
					run = func(t *testing.T, ctx context.Context, dir string, s *memSource, tg *memTarget, o Options) (*Summary, error) {
						t.Helper()
						j := openJournal(t, dir)
						defer j.Close()
						o.backoff, o.planWindow = time.Millisecond, 28 // pages of 7
						return Run(ctx, skimOpener(s.opener(), 7, &full, &byID), tg.opener(), j, o)
					}
				}
				testReconcile(t, run, s, tg, state, tc.wantCopied)
			})
		}
	}
}

func testReconcile(t *testing.T, runOnce func(*testing.T, context.Context, string, *memSource, *memTarget, Options) (*Summary, error), s *memSource, tg *memTarget, state string, wantCopied int) {
	const n = 30
	{
		{
			sum, err := runOnce(t, context.Background(), state, s, tg, Options{Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Copied != wantCopied || sum.Failed != 0 || sum.Copied+sum.AlreadyThere != 2*n {
				t.Errorf("copied %d, already there %d, failed %d; want %d copied", sum.Copied, sum.AlreadyThere, sum.Failed, wantCopied)
			}
			checkExactlyOnce(t, s, tg)
			// And the next run trusts what it learnt: nothing to do, for
			// one census per folder and no inventory (README's promise).
			c0, i0 := tg.censuses.Load(), tg.inventories.Load()
			sum, err = runOnce(t, context.Background(), state, s, tg, Options{Workers: 2})
			if err != nil || sum.Copied != 0 || sum.AlreadyThere != 2*n {
				t.Errorf("re-run: copied %d, already %d, err %v", sum.Copied, sum.AlreadyThere, err)
			}
			if c, i := tg.censuses.Load()-c0, tg.inventories.Load()-i0; c != 2 || i != 0 {
				t.Errorf("re-run with nothing new: %d censuses and %d inventories, want 2 and 0", c, i)
			}
		}
	}
}

// TestReconcileTwinsAndSharedMessageIDs: byte-identical twins are two
// messages, and two different messages sharing a Message-ID and date never
// take each other's copy.
func TestReconcileTwinsAndSharedMessageIDs(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 4})
	s.identities = true
	msgs := s.msgs["INBOX"]
	twin := msgs[0]
	twin.id = "twin"
	other := msgs[1]
	other.id = "other"
	other.body = append([]byte(nil), msgs[1].body...)
	other.body = append(other.body, []byte("a different body, same Message-ID and date\r\n")...)
	s.msgs["INBOX"] = append(msgs, twin, other)
	tg := newMemTarget()
	tg.findByContent = true // as an IMAP target's Find: by bytes, honouring Taken
	// The target holds one of the twins and the shorter of the pair: the
	// twins then look alike to the inventory and are settled by their bytes.
	tg.preload("INBOX", []memMsg{msgs[0], msgs[1]})
	sum, err := runOnce(t, context.Background(), t.TempDir(), s, tg, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Copied != 4 || sum.AlreadyThere != 2 {
		t.Errorf("copied %d, already %d; want 4, 2", sum.Copied, sum.AlreadyThere)
	}
	checkExactlyOnce(t, s, tg)
}

// TestNoReconcileWithoutInventory: a target that cannot list what it holds
// keeps today's behaviour (the journal decides).
func TestNoReconcileWithoutInventory(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 5})
	tg := newMemTarget()
	tg.noInventory = true
	if _, err := runOnce(t, context.Background(), t.TempDir(), s, tg, Options{}); err != nil {
		t.Fatal(err)
	}
	if n := tg.count(); n != 5 {
		t.Fatalf("target holds %d", n)
	}
}

// TestManyOpenIntentsSettledByOneInventory: a resumed run with many stores
// of unknown outcome settles them from one inventory of the folder, not
// with a lookup per message (issue 11: a resume cost a SELECT, SEARCH and
// FETCH per open intent).
func TestManyOpenIntentsSettledByOneInventory(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 100})
	s.identities = true
	tg := newMemTarget()
	dir := t.TempDir()
	if _, err := runOnce(t, context.Background(), dir, s, tg, Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	dir2 := openIntentsJournal(t, dir, 60)
	// 60 open intents and 40 done; all 100 in the target: the journal
	// accounts for the folder, only the open intents are in question.
	before := tg.finds.Load()
	sum, err := runOnce(t, context.Background(), dir2, s, tg, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Copied != 0 || sum.AlreadyThere != 100 {
		// 40 done before the run, 60 settled by the inventory.
		t.Fatalf("copied %d, already %d; want 0, 100", sum.Copied, sum.AlreadyThere)
	}
	if n := tg.finds.Load() - before; n != 0 {
		t.Errorf("%d lookups, want 0 (one inventory)", n)
	}
	checkExactlyOnce(t, s, tg)
}

// TestInventoryForOpen: open intents are settled with an inventory only
// when there are at least 32 and at least one per 100 messages of the
// folder, and never on a target whose lookups are local or batched.
func TestInventoryForOpen(t *testing.T) {
	remote, local := target.Features{Inventory: true}, target.Features{Inventory: true, CheapFind: true}
	batched := target.Features{Inventory: true, BatchFind: true}
	for _, tc := range []struct {
		f       target.Features
		open, n int
		want    bool
	}{
		{remote, 60, 100, true},
		{remote, 31, 100, false},
		{remote, 32, 3200, true},
		{remote, 32, 3201, false},
		{remote, 150, 400000, false}, // after a kill -9 in a big folder
		{remote, 5000, 400000, true},
		{remote, 60, 0, false},
		{local, 5000, 5000, false},
		{batched, 128, 7000, false}, // after a kill -9 into IMAP (FindAll)
		{batched, 5000, 5000, false},
	} {
		if got := inventoryForOpen(tc.f, tc.open, tc.n); got != tc.want {
			t.Errorf("%+v, %d open in %d: inventory %v; want %v", tc.f, tc.open, tc.n, got, tc.want)
		}
	}
}

// TestFewOpenIntentsInABigFolderLookedUp: 40 open intents in a folder of
// 5,000 messages are settled by 40 lookups, not by reading the folder's
// inventory (which holds the whole folder in memory).
func TestFewOpenIntentsInABigFolderLookedUp(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 5000})
	s.identities = true
	tg := newMemTarget()
	dir := t.TempDir()
	if _, err := runOnce(t, context.Background(), dir, s, tg, Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	dir2 := openIntentsJournal(t, dir, 40)
	before := tg.finds.Load()
	sum, err := runOnce(t, context.Background(), dir2, s, tg, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Copied != 0 || sum.AlreadyThere != 5000 {
		t.Fatalf("copied %d, already %d; want 0, 5000", sum.Copied, sum.AlreadyThere)
	}
	if n := tg.finds.Load() - before; n != 40 {
		t.Errorf("%d lookups; want 40 (one per open intent, no inventory)", n)
	}
	checkExactlyOnce(t, s, tg)
}

// openIntentsJournal copies the journal in dir into a new state directory
// with every key's intent but the done records of only the keys after the
// first open, as after a kill -9 before those done records were written.
func openIntentsJournal(t *testing.T, dir string, open int) string {
	t.Helper()
	j := openJournal(t, dir)
	var intents, dones []checkpoint.Record
	j.Range(func(k string, e checkpoint.Entry) bool {
		intents = append(intents, checkpoint.Record{Op: "intent", Key: k, Folder: e.Folder, Name: e.Name, Size: e.Size})
		dones = append(dones, checkpoint.Record{Op: "done", Key: k, Folder: e.Folder, Name: e.Name, Size: e.Size,
			SHA256: e.SHA256, MsgID: e.MsgID, Receipt: e.Receipt})
		return true
	})
	j.Close()
	dir2 := t.TempDir()
	j2 := openJournal(t, dir2)
	defer j2.Close()
	if err := j2.Intents(context.Background(), intents); err != nil {
		t.Fatal(err)
	}
	for _, r := range dones[open:] {
		if err := j2.Done(r); err != nil {
			t.Fatal(err)
		}
	}
	return dir2
}
