package migrate

import (
	"context"
	"io"
	"time"

	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/target"
)

// After a kill -9 a batch holds the open intents of the interrupted run:
// stores whose outcome is unknown, each to be looked for in the target
// before it is sent again. On a target where a lookup costs round trips
// (IMAP: a SELECT, which Dovecot takes 0.4 s over for a folder of 400,000
// messages, and a SEARCH from the intent's mark), one per message made a
// resume take a second per open intent before it copied anything. Where
// the target can (target.BatchFinder), findPending asks about all of a
// batch's unknown messages at once: it reads them from the source for
// their fingerprints (the intents hold none), asks FindAll, records those
// found as it would after a Find, and remembers those not found, so that
// their store, when the batch's pass reads them again, does not ask the
// target once more. The bytes then read are compared by fingerprint: a
// message that changed in between is asked about again.

// findPending settles the messages of items with an unknown outcome
// together (at least two, on a BatchFinder). Those it settles, or reports
// (refused, skipped), are added to handled. Any failure only leaves the
// messages to the one-by-one path; an error return means the run must
// stop.
func (w *worker) findPending(ctx context.Context, fs *folderState, items []*item, handled map[string]bool) error {
	byID := map[string]*item{}
	var ids []string
	for _, it := range items {
		if it.pending != nil && !handled[it.id] {
			byID[it.id] = it
			ids = append(ids, it.id)
		}
	}
	if len(ids) < 2 {
		return nil
	}
	if w.tgt == nil {
		if err := w.reopenTarget(ctx); err != nil {
			return err
		}
	}
	if _, ok := w.tgt.(target.BatchFinder); !ok || !w.tgt.Features().BatchFind {
		return nil
	}
	if w.src == nil {
		if err := w.reopenSource(ctx); err != nil {
			return err
		}
	}
	// Every message goes to one folder: where its earlier store went.
	groups := map[string][]inflight{}
	var order []string
	folder := fs.target
	if p := byID[ids[0]].pending; p.Folder != "" {
		folder = p.Folder
	}
	warmed := w.warm(ctx, folder)
	err := w.src.Fetch(ctx, fs.src, ids, func(m source.Meta, r io.Reader) error {
		it := byID[m.ID]
		if it == nil || handled[m.ID] {
			return nil
		}
		fl, done, err := w.prepare(ctx, fs, it, m, r)
		if err != nil {
			return err
		}
		if done {
			handled[m.ID] = true
			return nil
		}
		if _, ok := groups[fl.d.Folder]; !ok {
			order = append(order, fl.d.Folder)
		}
		groups[fl.d.Folder] = append(groups[fl.d.Folder], fl)
		return nil
	})
	warmed()
	if err != nil {
		if fatal(err) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		// What was read is asked about; the rest waits for the pass.
		w.e.log.Debug("reading the messages to look for failed; looking for what was read", "worker", w.id, "folder", fs.src.Name, "err", err)
		w.src.Close()
		w.src = nil
	}
	// Copies of the same bytes still in flight must be settled first, or
	// FindAll could take one of them for one of these messages.
	if err := w.drainAll(ctx); err != nil {
		return err
	}
	for _, fls := range groups {
		for _, fl := range fls {
			if err := w.e.waitQuiet(ctx, fl.fpk, 0); err != nil {
				return err
			}
		}
	}
	if err := w.settle(ctx); err != nil {
		return err
	}
	for _, folder := range order {
		fls := groups[folder]
		ds := make([]target.Delivery, len(fls))
		for i, fl := range fls {
			ds[i] = fl.d
		}
		if w.tgt == nil {
			if err := w.reopenTarget(ctx); err != nil {
				return err
			}
		}
		bf, ok := w.tgt.(target.BatchFinder)
		if !ok {
			return nil
		}
		t0 := time.Now()
		found, err := bf.FindAll(ctx, ds)
		if err == nil && len(found) != len(ds) {
			continue // a target at fault: ask one by one
		}
		if err != nil {
			if fatal(err) || ctx.Err() != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return err
			}
			// The one-by-one path asks again, on a fresh session.
			w.e.log.Warn("target lookup of interrupted stores failed; looking for them one by one", "worker", w.id, "folder", folder, "err", err)
			if err := w.reopenTarget(ctx); err != nil {
				return err
			}
			continue
		}
		n := 0
		for _, f := range found {
			if f.OK {
				n++
			}
		}
		w.e.log.Info("stores of an interrupted run looked for in the target", "folder", folder, "asked", len(ds), "found", n, "took", time.Since(t0).Round(time.Millisecond))
		for i, fl := range fls {
			if !found[i].OK {
				if w.absent == nil {
					w.absent = map[*item]string{}
				}
				w.absent[fl.it] = fl.fpk
				continue
			}
			if err := w.settleOne(ctx, fl, found[i].Receipt, true, nil); err != nil {
				return err
			}
			handled[fl.it.id] = true
		}
	}
	return nil
}

// warm starts the target's warm-up for lookups in folder (where it is a
// target.LookupWarmer), to run while the worker reads the source, and
// returns the function that waits for it to end. Until then the target
// session is the warm-up's: prepare takes Features().NUL from w.warmNUL.
// After a kill -9 in a 1,000,000-message account on Dovecot, the source
// read and the target's first look at the folder each take most of a
// second, one after the other before this.
func (w *worker) warm(ctx context.Context, folder string) (wait func()) {
	lw, ok := w.tgt.(target.LookupWarmer)
	if !ok {
		return func() {}
	}
	nul := w.tgt.Features().NUL
	w.warmNUL = &nul
	done := make(chan struct{})
	go func() {
		defer close(done)
		t0 := time.Now()
		// A failure is the lookup's to meet again, and report.
		err := lw.WarmLookup(ctx, folder)
		w.e.log.Debug("target folder opened for the lookups", "worker", w.id, "folder", folder, "took", time.Since(t0).Round(time.Millisecond), "err", err)
	}()
	return func() {
		<-done
		w.warmNUL = nil
	}
}

// askedAbsent reports (once) whether findPending found fl's message not
// in the target, with the same bytes, and it has not been sent since (lost
// forgets the answer): its store need not ask again.
func (w *worker) askedAbsent(fl inflight) bool {
	fpk, ok := w.absent[fl.it]
	if !ok {
		return false
	}
	delete(w.absent, fl.it)
	return fpk == fl.fpk
}
