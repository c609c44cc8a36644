package migrate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mailferry/mailferry/checkpoint"
	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/target"
)

// The plan is made a window at a time, so that the engine's memory does
// not grow with the account: a source that is a source.Pager (IMAP: UID
// FETCH a:b) is listed in pages of about pageSize messages, the others a
// folder at a time (List), and the workers copy a window while the next
// one is listed. The planner keeps up to Workers folders open and takes a
// page from each in turn (largest folders first, by their STATUS count),
// so that workers write into different folders at once. A folder that
// must be reconciled with the target (reconcile.go) is listed whole:
// matching works on the whole folder.

// DefaultMemory is the memory budget when Options.Memory is 0.
const DefaultMemory = 256 << 20

// planAhead is how many planned messages may wait for a worker: about 16
// KiB of budget per message (a planned item takes ~150 bytes; the rest is
// the listing, the journal and the spools), within 1,024 and 65,536.
func (o *Options) planAhead() int {
	if o.planWindow > 0 {
		return o.planWindow
	}
	return int(min(max(o.Memory/(16<<10), 1024), 65536))
}

// pageSize is how many messages one ListPage asks for.
func (o *Options) pageSize() int { return max(o.planAhead()/4, 64) }

// spoolThreshold is how much of one message a worker holds in memory:
// 1 MiB, less when the budget is small (a 32nd of each worker's share).
func (o *Options) spoolThreshold() int {
	return int(min(defaultSpoolThreshold, max(o.Memory/int64(32*max(o.Workers, 1)), 64<<10)))
}

// planner lists and plans the folders of one run.
type planner struct {
	e                  *engine
	s0p                *source.Source
	t0p                *target.Target
	srcAgain, tgtAgain func() error

	plans       []plannedFolder
	keyNames    []string
	fsums       []*FolderSummary
	known       map[string]map[uint32]bool // validities the journal knows per source folder name
	inventories bool
	creditedTo  map[string]int
	openIntents map[string]int // intents without done per keyName and validity

	order []int         // plan indexes, largest folders first
	next  int           // next index into order to open
	open  []*folderIter // folders being listed
	rr    int           // the one whose page comes next

	// planned counts what the plan holds so far, for the progress totals.
	plannedMsgs, plannedBytes int64
	// idle counts the messages listed in windows that planned nothing:
	// on a resume or a re-run, pages of messages already copied.
	idle int
}

// folderIter is one folder being listed and planned.
type folderIter struct {
	idx     int
	fs      *folderState
	cursor  string
	started bool
	done    bool // listed and planned
	listed  int
	skimmed int // of listed, by ID only (SkimPage)
	// rest is what a whole-folder List returned beyond the first window:
	// planned a window at a time too, so that the queue stays bounded.
	rest []source.Meta
}

// newPlanner lists the source (and target) folders, maps their names and
// reads what the journal knows about them.
func (e *engine) newPlanner(ctx context.Context, s0p *source.Source, t0p *target.Target) (*planner, error) {
	pl := &planner{e: e, s0p: s0p, t0p: t0p}
	pl.srcAgain = func() error { return reopen(ctx, e, s0p, e.srcOpen, "source") }
	pl.tgtAgain = func() error { return reopen(ctx, e, t0p, e.tgtOpen, "target") }
	var srcFolders []source.Folder
	err := e.again(ctx, "list source folders", pl.srcAgain, func() (err error) {
		srcFolders, err = (*s0p).Folders(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list source folders: %w", err)
	}
	// What the source leaves out (shared, other users', \Noselect), taken
	// now: a session reopened later has not listed anything.
	var srcSkipped []source.Skip
	if (*s0p).Features().Skipped {
		srcSkipped = (*s0p).(source.SkipLister).Skipped()
	}
	var tgtFolders []source.Folder
	if (*t0p).Features().Folders {
		err := e.again(ctx, "list target folders", pl.tgtAgain, func() (err error) {
			tgtFolders, err = (*t0p).(target.FolderLister).Folders(ctx)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("list target folders: %w", err)
		}
	}
	pl.plans = planFolders(e.o.Folders, srcFolders, tgtFolders)
	for _, w := range unmatchedRules(e.o.Folders, srcFolders) {
		e.log.Warn(w)
		e.sum.Warnings = append(e.sum.Warnings, w)
	}

	// What the journal knows, per source folder name: the validities seen.
	pl.known = map[string]map[uint32]bool{}
	e.journalFolders(func(f string, v uint32, _, _ int) {
		if pl.known[f] == nil {
			pl.known[f] = map[uint32]bool{}
		}
		pl.known[f][v] = true
	})
	present := map[string]bool{}
	for _, f := range srcFolders {
		present[f.Name] = true
	}

	// A folder renamed on the source since the last run keeps its
	// UIDVALIDITY: find the old name so its messages are not copied twice.
	pl.keyNames = make([]string, len(pl.plans))
	for i, p := range pl.plans {
		pl.keyNames[i] = p.src.Name
		if p.skip == "" && p.src.Validity != 0 && !pl.known[p.src.Name][p.src.Validity] {
			for name, vs := range pl.known {
				if vs[p.src.Validity] && !present[name] {
					e.log.Info("folder renamed on the source since the last run", "old", name, "new", p.src.Name)
					pl.keyNames[i] = name
					break
				}
			}
		}
	}
	// What the journal credits to each target folder (see reconcile.go).
	pl.inventories = (*t0p).Features().Inventory
	pl.creditedTo = map[string]int{}
	if pl.inventories {
		cr := e.credits()
		for i, p := range pl.plans {
			// A renamed folder's credits point at the old target folder.
			if p.skip == "" && pl.keyNames[i] == p.src.Name {
				pl.creditedTo[p.target] += cr[pl.keyNames[i]][p.src.Validity]
			}
		}
		pl.openIntents = e.openIntents()
		if len(pl.openIntents) > 0 && !e.tfeat.CheapFind && !e.o.DryRun {
			// Their lookups will ask which stored copies are claimed:
			// the set is built once the copy has started (firstCopied).
			e.claimsSoon()
		}
	}
	for _, p := range pl.plans {
		fsum := &FolderSummary{Source: p.src.Name, Target: p.target, Skipped: p.skip}
		pl.fsums = append(pl.fsums, fsum)
		e.sum.Folders = append(e.sum.Folders, fsum)
		if p.skip != "" {
			e.log.Info("folder skipped", "folder", p.src.Name, "reason", p.skip)
		}
	}
	for _, sk := range srcSkipped {
		e.sum.Folders = append(e.sum.Folders, &FolderSummary{Source: sk.Name, Skipped: sk.Reason})
		e.log.Info("folder skipped", "folder", sk.Name, "reason", sk.Reason)
	}
	for i, p := range pl.plans {
		if p.skip == "" {
			pl.order = append(pl.order, i)
		}
	}
	slices.SortStableFunc(pl.order, func(a, b int) int {
		return cmp.Compare(pl.plans[b].src.Messages, pl.plans[a].src.Messages)
	})
	return pl, nil
}

// openIntents counts the intents without done of each source folder name
// and validity: stores of an earlier run with an unknown outcome.
func (e *engine) openIntents() map[string]int {
	out := map[string]int{}
	e.journalFolders(func(f string, v uint32, _, pending int) {
		if pending > 0 {
			out[f+"\x1f"+strconv.FormatUint(uint64(v), 10)] += pending
		}
	})
	return out
}

// journalReceiptValidity is the UIDVALIDITY in the receipt of one done
// record of the folder ("validity:uid"), 0 when unknown.
func (e *engine) journalReceiptValidity(keyName string, validity uint32) uint32 {
	key, ok := e.j.FirstDone(keyName + "\x1f" + strconv.FormatUint(uint64(validity), 10))
	if !ok {
		return 0
	}
	ent, _ := e.j.Get(key)
	v, _, ok := strings.Cut(ent.Receipt, ":")
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

// emitFunc takes the planned messages of one window of folder idx.
type emitFunc func(idx int, fs *folderState, items []item, deleteOnly []string) error

// run plans windows, passing each to emit, until every folder is planned
// (true) or pause says to stop for now (false; call run again later).
func (pl *planner) run(ctx context.Context, emit emitFunc, pause func() bool) (bool, error) {
	width := max(pl.e.o.Workers, 1)
	for {
		for len(pl.open) < width && pl.next < len(pl.order) {
			i := pl.order[pl.next]
			pl.next++
			p := pl.plans[i]
			fs := &folderState{plan: p, src: p.src, keyName: pl.keyNames[i], sum: pl.fsums[i]}
			pl.open = append(pl.open, &folderIter{idx: i, fs: fs})
		}
		if len(pl.open) == 0 {
			pl.totals()
			return true, nil
		}
		if pause != nil && pause() {
			return false, nil
		}
		pl.rr %= len(pl.open)
		it := pl.open[pl.rr]
		listed := it.listed
		items, del, err := pl.step(ctx, it)
		if err != nil {
			return false, err
		}
		if len(items) == 0 && len(del) == 0 {
			pl.idle += it.listed - listed
		}
		for _, x := range items {
			pl.plannedMsgs++
			pl.plannedBytes += x.size
		}
		if len(items) > 0 || len(del) > 0 {
			if err := emit(it.idx, it.fs, items, del); err != nil {
				return false, err
			}
		}
		switch {
		case it.done:
			pl.e.log.Debug("folder listed", "folder", it.fs.src.Name, "messages", it.listed, "by_id_only", it.skimmed)
			pl.open = slices.Delete(pl.open, pl.rr, pl.rr+1)
		case (len(items) > 0 || len(del) > 0) && !pl.e.o.DryRun:
			// The next folder's turn: workers in different folders
			// store in parallel (an IMAP target gives a folder to one
			// worker at a time; a Maildir's directory fsyncs of one
			// folder queue behind each other: 50,000 messages took
			// 24 s with every worker in one folder, see BENCHMARKS.md).
			// After a page with nothing to do, and in a dry run, the
			// planner stays: switching costs an EXAMINE (Dovecot: 0.4 s
			// on a folder of 400,000 messages), and on a re-run most
			// pages are like that.
			pl.rr++
		}
		pl.totals()
	}
}

// totals sets the progress totals: what is planned, and for what is not
// listed yet the folders' message counts (STATUS), when known.
func (pl *planner) totals() {
	rest := int64(0)
	for _, i := range pl.order[pl.next:] {
		rest += int64(pl.plans[i].src.Messages)
	}
	for _, it := range pl.open {
		rest += int64(max(it.fs.src.Messages-it.listed, 0))
	}
	st := pl.e.o.Stats
	st.TotalMsgs.Store(pl.plannedMsgs + rest)
	st.TotalBytes.Store(pl.plannedBytes)
}

// page lists one window of f: ListPage on a Pager, else the whole folder.
// With known set (see skims), a Skimmer lists by ID what the journal has
// copied, into *known, and in full only the rest.
func (pl *planner) page(ctx context.Context, fs *folderState, cursor string, known *[]string) ([]source.Meta, string, error) {
	f := fs.src
	if known != nil {
		sk := (*pl.s0p).(source.Skimmer)
		prefix := Key(fs.keyName, f.Validity, "")
		var key []byte
		metas, ids, next, err := sk.SkimPage(ctx, f, cursor, pl.e.o.pageSize(), func(id string) bool {
			key = append(append(key[:0], prefix...), id...)
			return !pl.e.j.IsDone(key)
		})
		*known = ids
		return metas, next, err
	}
	if (*pl.s0p).Features().Pages {
		pg := (*pl.s0p).(source.Pager)
		return pg.ListPage(ctx, f, cursor, pl.e.o.pageSize())
	}
	metas, err := (*pl.s0p).List(ctx, f)
	return metas, "", err
}

// errFolderFailed means the folder failed (reported in the summary) and
// the others go on.
var errFolderFailed = errors.New("folder failed")

// list reads the next window of it, with retries on fresh sessions.
func (pl *planner) list(ctx context.Context, it *folderIter, known *[]string) ([]source.Meta, error) {
	e, fs := pl.e, it.fs
	first := it.listed == 0 && it.cursor == ""
	var metas []source.Meta
	var next string
	err := e.again(ctx, "list a source folder", pl.srcAgain, func() (err error) {
		metas, next, err = pl.page(ctx, fs, it.cursor, known)
		var vc *source.ValidityChangedError
		if first && errors.As(err, &vc) {
			// Changed between LIST and SELECT: take the new value.
			fs.src.Validity = vc.New
			metas, next, err = pl.page(ctx, fs, it.cursor, known)
		}
		return err
	})
	if err != nil {
		it.done = true
		if fatal(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("list messages of %q: %w", fs.src.Name, err)
		}
		reason := fmt.Sprintf("list the folder: %v", err)
		var vc *source.ValidityChangedError
		if errors.As(err, &vc) {
			reason = "the folder's UIDVALIDITY changed while it was listed; run again to copy the rest"
		}
		// One folder the source cannot open does not stop the others.
		e.log.Error("cannot list a source folder; skipping it", "folder", fs.src.Name, "err", err)
		e.sum.fail(fs.sum, Failure{Folder: fs.src.Name, Reason: reason})
		// The session may be unusable after that: start a fresh one.
		if err := pl.srcAgain(); err != nil {
			return nil, err
		}
		return nil, errFolderFailed
	}
	it.cursor = next
	if next == "" {
		it.done = true
	}
	return metas, nil
}

// step plans the next window of folder it. Its first call creates the
// target folder and decides whether the folder must be reconciled.
func (pl *planner) step(ctx context.Context, it *folderIter) ([]item, []string, error) {
	e, fs := pl.e, it.fs
	p := fs.plan
	if !it.started {
		it.started = true
		// A dry run maps names but creates nothing on the target.
		name, err := p.target, error(nil)
		if !e.o.DryRun {
			err = e.again(ctx, "create a target folder", pl.tgtAgain, func() (err error) {
				name, err = (*pl.t0p).Ensure(ctx, source.Folder{Name: p.target, SpecialUse: specialUse(p.src)})
				return err
			})
		}
		if err != nil {
			it.done = true
			if k := failure.KindOf(err); k == failure.Auth || k == failure.TLS || k == failure.Fatal || ctx.Err() != nil {
				return nil, nil, fmt.Errorf("create target folder %q: %w", p.target, err)
			}
			e.sum.fail(fs.sum, Failure{Folder: p.src.Name, Reason: fmt.Sprintf("create target folder %q: %v", p.target, err)})
			return nil, nil, nil
		}
		e.sum.add(fs.sum, func(f *FolderSummary) {
			if name != p.target {
				f.Renamed = fmt.Sprintf("target name %q is not safe here; stored as %q", p.target, name)
			}
			f.Target = name
		})
		if name != p.target {
			e.log.Warn("folder name changed for the target", "folder", p.src.Name, "wanted", p.target, "stored", name)
		}
		fs.target = name
	}
	e.o.Stats.setFolder(fs.src.Name)
	if len(it.rest) > 0 {
		metas := it.rest[:min(len(it.rest), e.o.pageSize())]
		it.rest = it.rest[len(metas):]
		if len(it.rest) == 0 {
			it.rest, it.done = nil, it.cursor == ""
		}
		it.listed += len(metas)
		return pl.planWindow(ctx, fs, metas, nil)
	}
	first := it.listed == 0 && it.cursor == ""
	// A folder the journal knows under this UIDVALIDITY is skimmed from
	// its first page on: a full listing of that page costs a server like
	// Dovecot the read of its UID-to-file map (0.4 s in a folder of
	// 400,000 messages) before a resume finds its first message to copy.
	// If the first page then shows that the folder must be matched with
	// the target after all, it is listed again, in full.
	skimFirst := first && pl.skims(fs) && pl.known[fs.keyName][fs.src.Validity]
	if (!first || skimFirst) && pl.skims(fs) {
		var known []string
		var metas []source.Meta
		var x *inventory
		var err error
		if skimFirst {
			metas, x, err = pl.listAndDecide(ctx, it, &known)
		} else {
			metas, err = pl.list(ctx, it, &known)
		}
		if errors.Is(err, errFolderFailed) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if skimFirst {
			if x != nil || fs.recon != nil {
				it.cursor, it.done = "", false
				return pl.listFull(ctx, it, x)
			}
		}
		it.listed += len(metas) + len(known)
		it.skimmed += len(known)
		del, err := pl.planKnown(fs, known)
		if err != nil {
			return nil, nil, err
		}
		items, del2, err := pl.planWindow(ctx, fs, metas, nil)
		return items, append(del, del2...), err
	}
	if first {
		metas, x, err := pl.listAndDecide(ctx, it, nil)
		if errors.Is(err, errFolderFailed) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		return pl.planFirst(ctx, it, metas, x)
	}
	return pl.listFull(ctx, it, nil)
}

// listAndDecide lists the first page of it and decides how the folder is
// planned (decide), at once: the listing asks the source, the decision the
// target (how many messages its folder holds), each on its own session.
// After a kill -9 into Dovecot both are slow the first time (the folder of
// 400,000 messages is synced: EXAMINE 0.35 s on the source, STATUS 0.9-1.2
// s on the target), and a resume's first copy waited for the two one after
// the other. A UIDVALIDITY the listing found changed is decided again.
func (pl *planner) listAndDecide(ctx context.Context, it *folderIter, known *[]string) ([]source.Meta, *inventory, error) {
	fs := it.fs
	validity := fs.src.Validity
	var (
		x    *inventory
		xErr error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		x, xErr = pl.decide(ctx, it, validity)
	}()
	metas, err := pl.list(ctx, it, known)
	<-done
	if err != nil {
		return nil, nil, err
	}
	if fs.src.Validity != validity {
		fs.recon = nil
		delete(pl.e.invs, fs.target)
		x, xErr = pl.decide(ctx, it, fs.src.Validity)
	}
	return metas, x, xErr
}

// decide is the first page's decision for folder it: whether it is matched
// by content (its UIDVALIDITY changed: fs.recon) or reconciled with the
// target folder (the inventory returned). validity is the source folder's
// UIDVALIDITY (fs.src.Validity, which the first page's listing may change
// while this runs: see listAndDecide).
func (pl *planner) decide(ctx context.Context, it *folderIter, validity uint32) (*inventory, error) {
	e, fs := pl.e, it.fs
	p := fs.plan
	// UIDVALIDITY changed: the old keys are void; match by fingerprint.
	if vs := pl.known[fs.keyName]; len(vs) > 0 && validity != 0 && !vs[validity] {
		fs.recon = e.fingerprints(fs.keyName)
		e.log.Info("source folder UIDVALIDITY changed; matching by content", "folder", fs.src.Name, "known", fs.recon.n)
	}
	// The target is the truth: reconcile when the journal cannot account
	// for the folder's content.
	if !pl.inventories || fs.recon != nil {
		return nil, nil
	}
	var x *inventory
	open := pl.openIntents[fs.keyName+"\x1f"+strconv.FormatUint(uint64(validity), 10)]
	err := e.again(ctx, "read what a target folder holds", pl.tgtAgain, func() (err error) {
		inv, _ := (*pl.t0p).(target.Inventorier)
		x, err = e.folderInventory(ctx, inv, fs.target, pl.creditedTo[p.target], e.journalReceiptValidity(fs.keyName, validity), open)
		return err
	})
	if err != nil {
		if fatal(err) || ctx.Err() != nil {
			return nil, err
		}
		e.log.Warn("could not reconcile with the target folder; trusting the journal", "folder", p.target, "err", err)
		return nil, nil
	}
	return x, nil
}

// listFull lists the next page of it in full and plans it with x: a page
// after the first, or the first again after a skimmed first page showed
// that the folder must be listed in full (see step).
func (pl *planner) listFull(ctx context.Context, it *folderIter, x *inventory) ([]item, []string, error) {
	metas, err := pl.list(ctx, it, nil)
	if errors.Is(err, errFolderFailed) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return pl.planFirst(ctx, it, metas, x)
}

// planFirst plans a page listed in full; with x (a reconciled folder), the
// rest of the folder is listed first: matching works on the whole folder.
func (pl *planner) planFirst(ctx context.Context, it *folderIter, metas []source.Meta, x *inventory) ([]item, []string, error) {
	for x != nil && !it.done {
		more, err := pl.list(ctx, it, nil)
		if errors.Is(err, errFolderFailed) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		metas = append(metas, more...)
	}
	if n := pl.e.o.pageSize(); x == nil && len(metas) > n {
		// A source without pages listed the whole folder.
		it.rest, metas = metas[n:], metas[:n]
		it.done = false
	}
	it.listed += len(metas)
	return pl.planWindow(ctx, it.fs, metas, x)
}

// skims reports whether the pages of fs after the first are listed with
// SkimPage: what the journal has copied by UID only. Not when its flags
// are wanted (--sync-flags), not for plan and --dry-run (they report the
// bytes of everything listed), and not when the folder is reconciled or
// matched by content (its first page decided that: such a folder is
// listed whole, with every message's size, date and flags, then).
func (pl *planner) skims(fs *folderState) bool {
	o := pl.e.o
	return (*pl.s0p).Features().Skim && !o.SyncFlags && !o.DryRun && fs.recon == nil
}

// planKnown accounts for the messages a skimmed page gave by ID only:
// already in the target, as the journal said when they were listed.
func (pl *planner) planKnown(fs *folderState, known []string) ([]string, error) {
	if len(known) == 0 {
		return nil, nil
	}
	e := pl.e
	var del []string
	prefix := Key(fs.keyName, fs.src.Validity, "")
	var key []byte
	for _, id := range known {
		// Only this goroutine plans this folder's keys: a known ID that is
		// not done is a Skimmer that did not keep to want.
		if key = append(append(key[:0], prefix...), id...); !e.j.IsDone(key) {
			return nil, fmt.Errorf("list messages of %q: message %s was skimmed as copied but the journal has no done record for it", fs.src.Name, id)
		}
		if e.o.DeleteSource {
			del = append(del, id)
		}
	}
	e.sum.add(fs.sum, func(f *FolderSummary) {
		f.Listed += len(known)
		f.AlreadyThere += len(known)
	})
	return del, nil
}

// planWindow decides what to do with each listed message: nothing (done;
// --sync-flags brings its flags), credit a copy the target holds (x, the
// target folder's inventory when reconciling), or copy it.
func (pl *planner) planWindow(ctx context.Context, fs *folderState, metas []source.Meta, x *inventory) ([]item, []string, error) {
	e := pl.e
	validity := fs.src.Validity
	var ids map[string]source.Identity
	gone := map[string]bool{}   // done in the journal, copy gone from the target
	shared := map[string]bool{} // another source message has the same Message-ID and date
	alike := map[string]bool{}  // ... and the same size: only the bytes tell them apart
	named := map[string]target.Stored{}
	if x != nil {
		want := map[string]bool{}
		for _, m := range metas {
			k := Key(fs.keyName, validity, m.ID)
			done, _, ok := e.j.Status(k)
			switch {
			case ok && done && x.suspect:
				// A copy credited to another folder (a rename, another
				// --map) is trusted: only this folder was counted.
				if ent, _ := e.j.Get(k); ent.Folder == x.folder && !x.claimReceipt(ent.Receipt) {
					gone[m.ID], want[m.ID] = true, true
				}
			case ok && done:
				if ent, _ := e.j.Get(k); ent.Receipt != "" {
					x.claimReceipt(ent.Receipt)
				}
			default:
				want[m.ID] = true
			}
		}
		// Copies under the names intents planned (Maildir) are
		// exact: claim them before anything is matched by identity.
		for _, m := range metas {
			if want[m.ID] {
				k := Key(fs.keyName, validity, m.ID)
				if st, ok := x.claimName(plannedName(k, unixOrZero(m.Received))); ok {
					named[m.ID] = st
					delete(want, m.ID)
				}
			}
		}
		if len(want) > 0 {
			err := e.again(ctx, "read the identities of a source folder's messages", pl.srcAgain, func() (err error) {
				ids, err = e.identities(ctx, *pl.s0p, fs.src, want)
				return err
			})
			if err != nil {
				if fatal(err) || ctx.Err() != nil {
					return nil, nil, fmt.Errorf("read message identities of %q: %w", fs.src.Name, err)
				}
				e.log.Warn("could not read the source's message identities; matching by date and size", "folder", fs.src.Name, "err", err)
				ids = listedIdentities(metas, want)
			}
			if ids == nil {
				ids = listedIdentities(metas, want)
			}
			seen := map[identity]int{}
			for _, id := range ids {
				if id.MessageID != "" {
					seen[identity{msgID: id.MessageID, unix: unixOrZero(id.Date)}]++
				}
			}
			// Source messages that look alike (same Message-ID, date
			// and size, or same date and size without one) cannot be
			// told apart by identity: a copy could be credited to the
			// wrong one. They are settled by their bytes instead (Find,
			// as after an unknown outcome), each copy standing for one.
			full := map[identity]int{}
			for _, id := range ids {
				full[identity{msgID: id.MessageID, unix: unixOrZero(id.Date), size: id.Size}]++
			}
			for _, id := range ids {
				if seen[identity{msgID: id.MessageID, unix: unixOrZero(id.Date)}] > 1 {
					shared[id.ID] = true
				}
				// When the folder holds a copy for each of them, any
				// pairing leaves each once in the target; when it holds
				// fewer, the bytes must say which ones are there.
				if n := full[identity{msgID: id.MessageID, unix: unixOrZero(id.Date), size: id.Size}]; n > 1 && x.available(id, id.Size) < n {
					alike[id.ID] = true
				}
			}
		}
		if len(gone) > 0 {
			e.log.Warn("messages the journal credits are gone from the target; copying them again", "folder", fs.target, "n", len(gone))
		}
	}
	var items []item
	var deleteOnly []string
	var listedBytes, toCopyBytes int64
	already, toCopy := 0, 0
	defer func() {
		e.sum.add(fs.sum, func(f *FolderSummary) {
			f.Listed += len(metas)
			f.ListedBytes += listedBytes
			f.AlreadyThere += already
			f.ToCopy += toCopy
			f.ToCopyBytes += toCopyBytes
		})
	}()
	for _, m := range metas {
		listedBytes += m.Size
		k := Key(fs.keyName, validity, m.ID)
		done, flags, ok := e.j.Status(k) // memory only: a no-op re-run reads no file
		if gone[m.ID] {
			done, ok = false, false // copy it again as a new message
		}
		if ok && done {
			already++
			if e.o.DeleteSource {
				deleteOnly = append(deleteOnly, m.ID)
			}
			if e.o.SyncFlags && !sameFlags(flags, m.Flags) {
				ent, _ := e.j.Get(k)
				if err := e.syncFlags(ctx, *pl.t0p, fs, k, ent, m); err != nil {
					return nil, nil, err
				}
			}
			continue
		}
		st, found := named[m.ID]
		if id, want := ids[m.ID]; want && !alike[m.ID] && x != nil {
			st, found = x.match(id, m.Size, shared[m.ID])
		}
		if found {
			already++
			if !e.o.DryRun {
				if err := e.j.Done(checkpoint.Record{Op: "done", Key: k, Folder: fs.target, Size: st.Size,
					MsgID: st.MessageID, Receipt: st.Receipt, Flags: m.Flags}); err != nil {
					return nil, nil, failure.Mark(failure.Fatal, fmt.Errorf("journal: %w", err))
				}
				e.claim(fs.target, st.Receipt)
				if e.o.DeleteSource {
					deleteOnly = append(deleteOnly, m.ID)
				}
			}
			continue
		}
		var ent checkpoint.Entry
		if ok {
			ent, _ = e.j.Get(k)
		}
		if e.o.MaxSize > 0 && m.Size > e.o.MaxSize {
			e.sum.skip(fs.sum, Failure{Folder: fs.src.Name, Key: m.ID, Size: m.Size,
				Reason: fmt.Sprintf("larger than --max-size (%d > %d bytes)", m.Size, e.o.MaxSize)})
			continue
		}
		it := item{id: m.ID, size: m.Size, received: unixOrZero(m.Received), flags: e.internFlags(m.Flags)}
		if ok {
			it.pending = &ent
		}
		if alike[m.ID] && it.pending == nil {
			// Maybe there already: ask by its bytes before storing.
			it.pending = &checkpoint.Entry{Folder: fs.target}
		}
		items = append(items, it)
		toCopy++
		toCopyBytes += m.Size
	}
	return items, deleteOnly, nil
}

// again runs op and, when it fails on the network (a connection reset,
// closed or stalled while listing or creating a folder), reconnects with
// reopen and tries again with backoff, up to Options.Retries times: a
// dropped connection is no reason to skip a folder.
func (e *engine) again(ctx context.Context, what string, reopen func() error, op func() error) error {
	for n := 1; ; n++ {
		err := op()
		if err == nil || failure.KindOf(err) != failure.Temporary || fatal(err) || ctx.Err() != nil || n > e.o.Retries {
			return err
		}
		e.log.Warn(what+" failed; reconnecting", "attempt", n, "err", err)
		if err := e.backoff(ctx, n); err != nil {
			return err
		}
		if err := reopen(); err != nil {
			return err
		}
	}
}
