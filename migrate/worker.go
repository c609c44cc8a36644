package migrate

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/mailferry/mailferry/checkpoint"
	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/target"
)

// worker owns one source session and one target session.
type worker struct {
	e     *engine
	id    int
	src   source.Source
	tgt   target.Target
	spool spool
	// settled are the source IDs of the current batch now safely in the
	// target (copied or found there), for --delete-source.
	settled []string
	// flight are pipelined stores waiting for the target's answer, oldest
	// first; retry are those whose outcome is unknown.
	flight []inflight
	retry  []*item
	// unknownAt is when a store of this worker last ended with an unknown
	// outcome (the connection died before the answer).
	unknownAt time.Time
	// mark is the target folder's mark taken before the current batch's
	// stores (target.Marker), recorded in its intents.
	mark string
	// intents are the current batch's intents being made durable
	// (startIntents); nil outside copyPass.
	intents *intentWrite
	// progress is the run's settled count at this worker's last failure.
	progress int64
	// absent are the unknown messages of the current pass that
	// findPending found not in the target, with their fingerprint keys.
	absent map[*item]string
	// warmNUL is the target's Features().NUL while another goroutine
	// uses the target session (findPending's warm-up), else nil.
	warmNUL *bool
}

// settleDelay is how long after a store with an unknown outcome (and, on a
// resumed run, after the start) the target is first asked whether the
// message arrived. A server commits a command it received whole even when
// the connection is gone by then, and bytes held up in the network (a
// stalled link, a proxy, the send buffer of a killed process) can reach it
// after the client gave up: a Find that runs before that commit sees
// nothing, and the resend makes a duplicate. The fault-proxy test shows it
// with MULTIAPPENDs of many messages. The IMAP target also resets (RST) a
// connection it gives up on, so its own unsent bytes are dropped.
// (A variable: the unit tests, whose in-process servers hold nothing
// back, shorten it.)
var settleDelay = time.Second

// settle waits out settleDelay before a Find.
func (w *worker) settle(ctx context.Context) error {
	until := w.e.started.Add(settleDelay)
	if u := w.unknownAt.Add(settleDelay); u.After(until) {
		until = u
	}
	if d := time.Until(until); d > 0 {
		return sleep(ctx, d)
	}
	return nil
}

// pipelineWindow is how many stores a worker keeps in flight on its target
// session when the target can pipeline (IMAP APPEND with LITERAL+).
const pipelineWindow = 16

type inflight struct {
	fs   *folderState
	it   *item
	d    target.Delivery
	rec  checkpoint.Record
	conv bool
	nul  bool
	fpk  string
	wait func() (string, error)
}

func (w *worker) open(ctx context.Context) error {
	s, err := w.e.srcOpen(ctx)
	if err != nil {
		return err
	}
	t, err := w.e.tgtOpen(ctx)
	if err != nil {
		s.Close()
		return err
	}
	w.src, w.tgt = s, t
	return nil
}

func (w *worker) close() {
	if w.src != nil {
		w.src.Close()
	}
	if w.tgt != nil {
		w.tgt.Close()
	}
	w.spool.close()
}

// reopenSource replaces the source session after a failure, retrying with
// backoff. A fatal error (the password stopped working) stops the run.
func (w *worker) reopenSource(ctx context.Context) error {
	return reopen(ctx, w.e, &w.src, w.e.srcOpen, "source", "worker", w.id)
}

func (w *worker) reopenTarget(ctx context.Context) error {
	return reopen(ctx, w.e, &w.tgt, w.e.tgtOpen, "target", "worker", w.id)
}

// reopen replaces the session *sp (closed first, if any) with a fresh one
// from open, retrying with backoff; *sp is nil while there is none. A fatal
// error stops at once. The workers and prepare's listing sessions share it.
func reopen[S interface{ Close() error }](ctx context.Context, e *engine, sp *S, open func(context.Context) (S, error), side string, logArgs ...any) error {
	var zero S
	if any(*sp) != nil {
		(*sp).Close()
		*sp = zero
	}
	var err error
	for n := 1; n <= e.o.Retries; n++ {
		var s S
		if s, err = open(ctx); err == nil {
			*sp = s
			return nil
		}
		if fatal(err) {
			break
		}
		e.log.Warn("reconnect to the "+side+" failed; retrying", append(logArgs, "attempt", n, "err", err)...)
		if err := e.backoff(ctx, n); err != nil {
			return err
		}
	}
	return fmt.Errorf("reconnect to the %s: %w", side, err)
}

// do handles one batch. It returns an error only when the run must stop.
func (w *worker) do(ctx context.Context, b batch) error {
	fs := b.fs
	w.e.o.Stats.setFolder(fs.src.Name)
	if len(b.deleteOnly) > 0 {
		return w.deleteFromSource(ctx, fs, b.deleteOnly)
	}
	w.settled = w.settled[:0]
	if err := w.copyBatch(ctx, b); err != nil {
		return err
	}
	if w.e.o.DeleteSource && len(w.settled) > 0 {
		return w.deleteFromSource(ctx, fs, w.settled)
	}
	return nil
}

// deleteFromSource removes messages whose done records are durable first.
// POP3 commits the deletions at QUIT, when the session is closed.
func (w *worker) deleteFromSource(ctx context.Context, fs *folderState, ids []string) error {
	if err := w.e.j.Sync(ctx); err != nil {
		return failure.Mark(failure.Fatal, fmt.Errorf("journal: %w", err))
	}
	if w.src == nil {
		if err := w.reopenSource(ctx); err != nil {
			return err
		}
	}
	if !w.src.Features().Delete {
		return nil
	}
	if err := w.src.(source.Deleter).Delete(ctx, fs.src, ids); err != nil {
		if fatal(err) || ctx.Err() != nil {
			return err
		}
		w.e.log.Warn("could not delete from the source; a later run tries again", "folder", fs.src.Name, "n", len(ids), "err", err)
		w.e.sum.mu.Lock()
		w.e.sum.NotDeleted += len(ids)
		w.e.sum.mu.Unlock()
		return nil
	}
	w.e.sum.mu.Lock()
	w.e.sum.Deleted += len(ids)
	w.e.sum.mu.Unlock()
	return nil
}

// copyBatch copies the messages of one batch.
func (w *worker) copyBatch(ctx context.Context, b batch) error {
	fs := b.fs
	items := make([]*item, len(b.items))
	for i := range b.items {
		items[i] = &b.items[i]
	}
	first := true
	for len(items) > 0 {
		if err := w.copyPass(ctx, fs, items, first); err != nil {
			return err
		}
		first = false
		// Pipelined APPENDs whose outcome is unknown (the connection
		// dropped) go round once more: with an intent on record they take
		// the plain path, which asks the target before sending again.
		if err := w.drainAll(ctx); err != nil {
			return err
		}
		items, w.retry = w.retry, nil
	}
	return nil
}

// copyPass fetches and copies the given messages. With writeIntents, the
// intents of those without one are made durable first.
//
// Retries converge: a failed attempt is charged to the message it was
// handling (the first not yet handled when the failure came before any),
// and only when no message of the run got settled since this worker's last
// failure. A message is given up after more than Options.Retries charges;
// the others go on. So a fault storm that still lets messages through
// never fails a message, and a message that keeps failing alone does.
func (w *worker) copyPass(ctx context.Context, fs *folderState, items []*item, writeIntents bool) (err error) {
	byID := make(map[string]*item, len(items))
	var ids []string
	unknown := false
	// One durable intent per message, one fsync for the batch, before the
	// first byte goes to the target. A message with an intent from an
	// interrupted run is looked for in the target once its bytes (and so
	// its fingerprint) are known, before it is sent again.
	var intents []checkpoint.Record
	for _, it := range items {
		byID[it.id] = it
		ids = append(ids, it.id)
		unknown = unknown || it.pending != nil
		if it.pending == nil && writeIntents {
			k := fs.key(it.id)
			intents = append(intents, checkpoint.Record{Op: "intent", Key: k, Folder: fs.target,
				Name: plannedName(k, it.received), Size: it.size})
		}
	}
	// A batch without unknown messages has its intents written while the
	// source starts to answer (see startIntents). Nothing is stored before
	// they are durable (fn below waits), and no intent voided (fail waits).
	ib := w.startIntents(ctx, fs, intents, !unknown)
	w.intents = ib
	defer func() {
		// Nothing of it runs after the pass, and its failure is the pass's.
		if ierr := ib.wait(); err == nil && ierr != nil {
			err = ierr
		}
		w.intents = nil
	}()
	if unknown {
		// Lookups (findPending) need them first.
		if err := ib.wait(); err != nil {
			return err
		}
	}
	handled := map[string]bool{}
	// The unknown messages first, all at once where the target can.
	defer clear(w.absent)
	if err := w.findPending(ctx, fs, items, handled); err != nil {
		return err
	}
	if len(handled) > 0 {
		ids = slices.DeleteFunc(ids, func(id string) bool { return handled[id] })
	}
	for attempt := 1; len(ids) > 0; attempt++ {
		if stop := w.e.stopOf(fs); stop != nil {
			for _, id := range ids {
				w.failItem(fs, byID[id], *stop)
			}
			return nil
		}
		if w.src == nil {
			if err := w.reopenSource(ctx); err != nil {
				return err
			}
		}
		var cur *item // the message fn is handling
		err := w.src.Fetch(ctx, fs.src, ids, func(m source.Meta, r io.Reader) error {
			it := byID[m.ID]
			if it == nil || handled[m.ID] {
				return nil // not asked for (a server sending extra data)
			}
			if err := ib.wait(); err != nil {
				return err
			}
			cur = it
			if err := w.copyOne(ctx, fs, it, m, r); err != nil {
				return err
			}
			cur = nil
			handled[m.ID] = true
			return nil
		})
		var rest []string
		for _, id := range ids {
			if !handled[id] {
				rest = append(rest, id)
			}
		}
		if len(rest) < len(ids) {
			attempt = 1 // progress: the backoff starts again
		}
		ids = rest
		if err == nil {
			if len(ids) > 0 {
				// The source answered without error but skipped some.
				for _, id := range ids {
					w.failItem(fs, byID[id], "the source did not deliver this message")
				}
			}
			return nil
		}
		var vc *source.ValidityChangedError
		if errors.As(err, &vc) {
			for _, id := range ids {
				w.failItem(fs, byID[id], "the folder's UIDVALIDITY changed during the run; run again to copy it")
			}
			return nil
		}
		var vanished *source.VanishedError
		if errors.As(err, &vanished) {
			for _, id := range vanished.IDs {
				if it := byID[id]; it != nil && !handled[id] {
					w.failItem(fs, it, "vanished from the source before it could be copied")
					handled[id] = true
				}
			}
			continue
		}
		if fatal(err) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if cur == nil && len(ids) > 0 {
			cur = byID[ids[0]]
		}
		if cur != nil && w.charge(cur) {
			reason := fmt.Sprintf("read from the source: %v", err)
			var u *unknownError
			if errors.As(err, &u) {
				reason = fmt.Sprintf("an earlier store of it may have arrived, and the target could not be asked (%v); not sent again: run again to settle it", u.err)
			}
			w.failItem(fs, cur, reason)
			handled[cur.id] = true
			ids = slices.DeleteFunc(ids, func(id string) bool { return id == cur.id })
		}
		w.e.log.Warn("copy failed; reconnecting", "worker", w.id, "folder", fs.src.Name, "attempt", attempt, "err", err)
		if err := w.e.backoff(ctx, attempt); err != nil {
			return err
		}
		if err := w.reopenSource(ctx); err != nil {
			return err
		}
	}
	return nil
}

// startIntents makes the intents durable, with the target folder's mark
// in each: where the target's messages stand before this batch's stores,
// so that a lookup after a lost answer (even after a crash) looks only at
// what arrived since, and may recognise a rewritten copy. With background
// it does so on another goroutine, while the worker starts reading the
// source; the worker waits for it before it stores or records anything of
// the batch (intentWrite.wait). The first read of a
// message body in a new Dovecot session of a folder of 400,000 messages
// took 1.3 s, and the mark (a STATUS, or a SELECT of the store session)
// and the fsync came before it. Until the wait returns, the target
// session is the mark's.
func (w *worker) startIntents(ctx context.Context, fs *folderState, intents []checkpoint.Record, background bool) *intentWrite {
	iw := &intentWrite{}
	write := func() error {
		if h := w.e.o.intentsHook; h != nil {
			h()
		}
		if len(intents) > 0 {
			w.mark = w.markOf(ctx, fs.target)
			for i := range intents {
				intents[i].Mark = w.mark
			}
		}
		if err := w.e.j.Intents(ctx, intents); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return failure.Mark(failure.Fatal, fmt.Errorf("journal: %w", err))
		}
		return nil
	}
	if !background || len(intents) == 0 {
		iw.err = write()
		return iw
	}
	iw.done = make(chan struct{})
	go func() {
		defer close(iw.done)
		iw.err = write()
	}()
	return iw
}

// intentWrite is a batch's intents being made durable (startIntents).
type intentWrite struct {
	done chan struct{} // closed when written; nil when written before startIntents returned
	err  error         // read after done
}

// wait returns when the intents are durable (or failed to be), with the
// write's error; it may be called any number of times, and on nil.
func (iw *intentWrite) wait() error {
	if iw == nil {
		return nil
	}
	if iw.done != nil {
		<-iw.done
	}
	return iw.err
}

// charge counts a failed attempt against it, unless the run settled some
// message since this worker's last failure, and reports whether it is out
// of tries.
func (w *worker) charge(it *item) bool {
	st := w.e.o.Stats
	if p := st.Copied.Load() + st.Already.Load(); p != w.progress {
		w.progress = p
		return false
	}
	it.tries++
	return int(it.tries) > w.e.o.Retries
}

// markOf asks the target where its folder stands ("" when it cannot say;
// a failure here costs only the lookup's precision, never a message).
func (w *worker) markOf(ctx context.Context, folder string) string {
	if w.tgt == nil {
		if err := w.reopenTarget(ctx); err != nil {
			return ""
		}
	}
	if !w.tgt.Features().Marks {
		return ""
	}
	m := w.tgt.(target.Marker)
	mark, err := m.Mark(ctx, folder)
	if err != nil {
		w.e.log.Debug("could not read the target folder's mark", "folder", folder, "err", err)
		return ""
	}
	return mark
}

// failItem reports a message that could not be copied, known only from the
// listing.
func (w *worker) failItem(fs *folderState, it *item, reason string) {
	w.fail(fs, it, Failure{Size: it.size, Reason: reason})
}

// fail reports a message that could not be copied (f's folder and key are
// filled in here) and counts it as handled.
//
// A fresh message (never sent, or refused with a definite answer) leaves
// nothing in the target: its intent is voided, so that the next run sends
// it straight away instead of asking the target about it first. An
// unknown one keeps its intent: the next run asks.
func (w *worker) fail(fs *folderState, it *item, f Failure) {
	f.Folder, f.Key = fs.src.Name, it.id
	if it.pending == nil {
		// Voided only once written: an intent written after its Forget
		// (startIntents runs beside the pass) would stay open, and the
		// next run would look in the target for a message it knows was not
		// stored. A failed write is the pass's error (copyPass).
		w.intents.wait()
		if err := w.e.j.Forget(fs.key(it.id)); err != nil {
			w.e.log.Warn("journal: could not void the intent of a failed message", "key", it.id, "err", err)
		}
	}
	w.e.sum.fail(fs.sum, f)
	st := w.e.o.Stats
	st.Failed.Add(1)
	st.DoneMsgs.Add(1)
	st.DoneBytes.Add(it.size)
}

// already records a message found in the target (rec names the copy).
func (w *worker) already(fs *folderState, it *item, rec checkpoint.Record) error {
	if err := w.e.j.Done(rec); err != nil {
		return failure.Mark(failure.Fatal, fmt.Errorf("journal: %w", err))
	}
	w.e.claim(rec.Folder, rec.Receipt)
	w.settled = append(w.settled, it.id)
	w.e.sum.add(fs.sum, func(f *FolderSummary) { f.AlreadyThere++ })
	st := w.e.o.Stats
	st.Already.Add(1)
	st.DoneMsgs.Add(1)
	st.DoneBytes.Add(it.size)
	return nil
}

// find asks the target with retries on fresh connections.
func (w *worker) find(ctx context.Context, d target.Delivery) (string, bool, error) {
	if err := w.settle(ctx); err != nil {
		return "", false, err
	}
	for n := 1; ; n++ {
		if w.tgt == nil {
			if err := w.reopenTarget(ctx); err != nil {
				return "", false, err
			}
		}
		receipt, ok, err := w.tgt.Find(ctx, d)
		if err == nil {
			return receipt, ok, nil
		}
		if fatal(err) || ctx.Err() != nil || n > w.e.o.Retries {
			return "", false, fmt.Errorf("look for an interrupted copy in %q: %w", d.Folder, err)
		}
		w.e.log.Warn("target lookup failed; reconnecting", "worker", w.id, "err", err)
		if err := w.e.backoff(ctx, n); err != nil {
			return "", false, err
		}
		if err := w.reopenTarget(ctx); err != nil {
			return "", false, err
		}
	}
}

// copyOne spools one message and stores it. An error return means the
// source read failed (retry the message) or the run must stop; a message the
// target refuses is reported and nil is returned.
func (w *worker) copyOne(ctx context.Context, fs *folderState, it *item, m source.Meta, r io.Reader) error {
	fl, done, err := w.prepare(ctx, fs, it, m, r)
	if err != nil || done {
		return err
	}
	return w.store(ctx, fl)
}

// prepare spools one message and describes its store. done means it needs
// none: it was reported (refused, skipped) here.
func (w *worker) prepare(ctx context.Context, fs *folderState, it *item, m source.Meta, r io.Reader) (fl inflight, done bool, err error) {
	if err := w.spool.fill(r, w.e.crlf, w.e.o.StripNUL); err != nil {
		if ctx.Err() != nil {
			return fl, false, ctx.Err()
		}
		return fl, false, fmt.Errorf("read message %s of %q: %w", m.ID, fs.src.Name, err)
	}
	if m.Flags == nil {
		m.Flags = it.flags
	}
	if it.size > 0 && w.spool.raw != it.size {
		// Completeness is the source's framing (IMAP literal length, POP3
		// terminator, file size at open), checked there; some servers'
		// RFC822.SIZE is inexact, so a difference from the listing alone is
		// only worth a line in the log.
		w.e.log.Warn("the source delivered a different size than its listing announced", "folder", fs.src.Name, "id", m.ID, "listed", it.size, "delivered", w.spool.raw)
	}
	sp := &w.spool
	msgID := sp.scan.MessageID()
	size := sp.size
	shaHex := hex.EncodeToString(sp.sum[:])
	fpk := fpKey(msgID, size, shaHex)
	refuse := func(reason string) (inflight, bool, error) {
		w.fail(fs, it, Failure{MessageID: msgID, Size: size, Reason: reason})
		return fl, true, nil
	}
	if stop := w.e.stopOf(fs); stop != nil {
		return refuse(*stop)
	}
	if w.e.o.MaxSize > 0 && size > w.e.o.MaxSize {
		// Skipped on purpose, not failed (the listing's size was smaller).
		w.e.sum.skip(fs.sum, Failure{Folder: fs.src.Name, Key: it.id, MessageID: msgID, Size: size,
			Reason: fmt.Sprintf("larger than --max-size (%d > %d bytes)", size, w.e.o.MaxSize)})
		w.e.o.Stats.DoneMsgs.Add(1)
		w.e.o.Stats.DoneBytes.Add(it.size)
		return fl, true, nil
	}
	binary := sp.nul > 0 && !w.e.o.StripNUL
	if binary {
		// In a plain literal IMAP servers refuse NUL bytes (Cyrus) or serve
		// them altered (Dovecot answers 0x80); a literal8 (RFC 3516
		// BINARY) keeps them. Without BINARY, never store a message that
		// may change without saying so.
		nul := false
		if w.warmNUL != nil {
			nul = *w.warmNUL
		} else {
			if w.tgt == nil {
				if err := w.reopenTarget(ctx); err != nil {
					return fl, false, err
				}
			}
			nul = w.tgt.Features().NUL
		}
		if !nul {
			return refuse(fmt.Sprintf("contains %d NUL byte(s), which this target cannot store unchanged (an IMAP server without BINARY); --strip-nul removes them", sp.nul))
		}
	}
	date := m.Received
	if date.IsZero() {
		date = sp.scan.InternalDate(time.Now())
	}
	key := fs.key(it.id)
	d := target.Delivery{
		Folder: fs.target, Flags: m.Flags, Date: date, Size: size, Name: plannedName(key, it.received), Taken: w.e.taken(fs.target),
		Fingerprint: target.Fingerprint{MessageID: msgID, Size: size, SHA256: sp.sum}, Binary: binary,
	}
	rec := checkpoint.Record{Op: "done", Key: key, Folder: fs.target, Name: d.Name, Size: size, SHA256: shaHex, MsgID: msgID, Flags: m.Flags}
	fl = inflight{fs: fs, it: it, d: d, rec: rec, conv: sp.converted > 0, nul: sp.nulStripped > 0, fpk: fpk}
	if it.pending != nil {
		// Unknown: where the earlier store went and what it planned.
		if it.pending.Folder != "" {
			fl.d.Folder, fl.rec.Folder = it.pending.Folder, it.pending.Folder
		}
		if it.pending.Name != "" {
			fl.d.Name, fl.rec.Name = it.pending.Name, it.pending.Name
		}
		fl.d.Mark, fl.rec.Mark = it.pending.Mark, it.pending.Mark
	} else {
		fl.d.Mark = w.mark
	}
	return fl, false, nil
}

// store stores a prepared message (or settles it as already there).
func (w *worker) store(ctx context.Context, fl inflight) error {
	fs, it := fl.fs, fl.it
	if it.pending == nil && fs.recon != nil {
		fs.reconMu.Lock()
		ent, ok := fs.recon.take(fl.fpk)
		fs.reconMu.Unlock()
		if ok {
			return w.already(fs, it, checkpoint.Record{Op: "done", Key: fl.rec.Key, Folder: ent.Folder, Name: ent.Name,
				Size: ent.Size, SHA256: ent.SHA256, MsgID: ent.MsgID, Receipt: ent.Receipt, Flags: fl.rec.Flags})
		}
	}
	if w.e.msgLimit != nil {
		if err := w.e.msgLimit.Wait(ctx); err != nil {
			return err
		}
	}
	if w.tgt == nil {
		if err := w.reopenTarget(ctx); err != nil {
			return err
		}
	}
	if depth := w.tgt.Features().Pipeline; depth > 0 && it.pending == nil {
		return w.send(ctx, w.tgt.(target.Pipeliner), depth, fl)
	}
	receipt, found, err := w.deliver(ctx, fl)
	return w.settleOne(ctx, fl, receipt, found, err)
}

// send is the fast path for a fresh message on a pipelining target: the
// store is written and its answer collected later by drainOne.
func (w *worker) send(ctx context.Context, p target.Pipeliner, window int, fl inflight) error {
	if len(w.flight) >= window {
		if err := w.drainOne(ctx); err != nil {
			return err
		}
	}
	body, err := w.body(ctx)
	if err != nil {
		return err
	}
	w.e.begin(fl.fpk)
	wait, err := p.Send(ctx, fl.d, body)
	if err == nil {
		fl.wait = wait
		w.flight = append(w.flight, fl)
		return nil
	}
	w.e.end(fl.fpk)
	if fatal(err) || ctx.Err() != nil || !failure.Retryable(err) {
		// Fatal, or refused for good (too big, full): nothing stored.
		if err := w.drainAll(ctx); err != nil {
			return err
		}
		return w.outcome(ctx, fl, "", err)
	}
	// The session failed under this message: it may have landed. Settle
	// what is in flight, then take the one path that asks first.
	w.e.log.Warn("pipelined store failed; asking the target before sending again", "worker", w.id, "folder", fl.d.Folder, "err", err)
	w.lost(fl)
	if err := w.drainAll(ctx); err != nil {
		return err
	}
	if w.tgt != nil {
		w.tgt.Close()
		w.tgt = nil
	}
	receipt, found, err := w.deliver(ctx, fl)
	return w.settleOne(ctx, fl, receipt, found, err)
}

// lost marks fl's message unknown: this run sent it and the answer is lost.
func (w *worker) lost(fl inflight) {
	delete(w.absent, fl.it)
	w.unknownAt = time.Now()
	fl.it.pending = &checkpoint.Entry{Folder: fl.d.Folder, Name: fl.d.Name, Mark: fl.d.Mark}
	fl.it.sentHere = true
}

// unknownError means the target could not be asked whether a message with
// an unknown outcome arrived: the message must not be sent again now.
type unknownError struct{ err error }

func (e *unknownError) Error() string {
	return "whether an earlier store arrived is unknown: " + e.err.Error()
}
func (e *unknownError) Unwrap() error { return e.err }

// deliver is the one store path with an unknown outcome in it. A message
// that may already be in the target (it.pending) is looked for first and
// stored only on a definite "not there"; a store that fails on a broken
// connection makes it unknown again. It returns the receipt and whether the
// copy was found rather than stored by this call. When the target cannot be
// asked, it returns an *unknownError and nothing is sent.
func (w *worker) deliver(ctx context.Context, fl inflight) (receipt string, found bool, err error) {
	for n := 1; ; n++ {
		if fl.it.pending != nil {
			// Copies of the same bytes still in flight must be settled
			// first, or Find could take one of them for this message.
			if err := w.drainAll(ctx); err != nil {
				return "", false, err
			}
			if err := w.e.waitQuiet(ctx, fl.fpk, 0); err != nil {
				return "", false, err
			}
		}
		if fl.it.pending != nil && !w.askedAbsent(fl) {
			receipt, ok, err := w.find(ctx, fl.d)
			if err != nil {
				if fatal(err) || ctx.Err() != nil {
					return "", false, err
				}
				return "", false, &unknownError{err}
			}
			if ok {
				return receipt, true, nil
			}
		}
		if w.tgt == nil {
			if err := w.reopenTarget(ctx); err != nil {
				return "", false, err
			}
		}
		body, err := w.body(ctx)
		if err != nil {
			return "", false, err
		}
		w.e.begin(fl.fpk)
		receipt, err := w.tgt.Put(ctx, fl.d, body)
		w.e.end(fl.fpk)
		if err == nil {
			return receipt, false, nil
		}
		if fatal(err) || ctx.Err() != nil || !failure.Retryable(err) || n > w.e.o.Retries {
			if failure.Retryable(err) && !fatal(err) && ctx.Err() == nil {
				// Out of tries with the outcome unknown: the next run asks.
				w.lost(fl)
			}
			return "", false, err
		}
		w.lost(fl)
		w.e.log.Warn("store failed; asking the target before sending again", "worker", w.id, "folder", fl.d.Folder, "attempt", n, "err", err)
		if w.tgt != nil {
			w.tgt.Close()
			w.tgt = nil
		}
		if err := w.e.backoff(ctx, n); err != nil {
			return "", false, err
		}
	}
}

// settleOne records what deliver said: found (copied by this run, or
// already there from an earlier one), stored, refused, or unknown.
func (w *worker) settleOne(ctx context.Context, fl inflight, receipt string, found bool, err error) error {
	var u *unknownError
	if errors.As(err, &u) {
		return err // copyPass charges it and tries again later
	}
	if found && !fl.it.sentHere {
		r := fl.rec
		r.Receipt = receipt
		return w.already(fl.fs, fl.it, r)
	}
	return w.outcome(ctx, fl, receipt, err)
}

// outcome records what became of one store: done, refused, or fatal.
func (w *worker) outcome(ctx context.Context, fl inflight, receipt string, err error) error {
	fs, it, st := fl.fs, fl.it, w.e.o.Stats
	size, msgID := fl.d.Size, fl.d.Fingerprint.MessageID
	if err != nil {
		if fatal(err) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		reason := err.Error()
		switch {
		case errors.Is(err, target.ErrAccountFull):
			// Every folder is full, not only this one: one line, one stop.
			stop := fmt.Sprintf("the target account is full: %v", err)
			if w.e.stopped.CompareAndSwap(nil, &stop) {
				w.e.log.Error("target account full (quota); stopping the run", "err", err)
			}
		case failure.KindOf(err) == failure.Quota:
			stop := fmt.Sprintf("target folder %q is full: %v", fs.target, err)
			if fs.stopped.CompareAndSwap(nil, &stop) {
				w.e.log.Error("target full (quota or disk); stopping this folder", "folder", fs.target, "err", err)
			}
		}
		w.fail(fs, it, Failure{MessageID: msgID, Size: size, Reason: reason})
		return nil
	}
	rec := fl.rec
	rec.Receipt = receipt
	if err := w.e.j.Done(rec); err != nil {
		return failure.Mark(failure.Fatal, fmt.Errorf("journal: %w", err))
	}
	w.e.claim(fl.d.Folder, receipt)
	w.settled = append(w.settled, it.id)
	conv, nul := fl.conv, fl.nul
	w.e.sum.add(fs.sum, func(f *FolderSummary) {
		f.Copied++
		f.Bytes += size
		if conv {
			w.e.sum.BareLFFixed++
		}
		if nul {
			w.e.sum.NULStripped++
		}
	})
	st.Copied.Add(1)
	st.DoneMsgs.Add(1)
	st.DoneBytes.Add(it.size)
	w.e.firstCopied()
	return nil
}

// drainOne waits for the oldest pipelined store.
func (w *worker) drainOne(ctx context.Context) error {
	fl := w.flight[0]
	w.flight = w.flight[1:]
	receipt, err := fl.wait()
	w.e.end(fl.fpk)
	if err != nil && errors.Is(err, target.ErrNotStored) && fl.it.pending == nil && !fatal(err) && ctx.Err() == nil {
		// Refused with the others of its command, so not stored: it goes
		// round once more as a fresh message (no lookup, same session),
		// within its budget of tries.
		if fl.it.tries++; int(fl.it.tries) <= w.e.o.Retries {
			w.retry = append(w.retry, fl.it)
			return nil
		}
	}
	if err != nil && !fatal(err) && ctx.Err() == nil && failure.Retryable(err) {
		// Unknown outcome (the connection went down): it goes round once
		// more, through deliver, which asks the target first.
		w.lost(fl)
		w.retry = append(w.retry, fl.it)
		return nil
	}
	return w.outcome(ctx, fl, receipt, err)
}

// drainAll waits for every pipelined store of this worker.
func (w *worker) drainAll(ctx context.Context) error {
	for len(w.flight) > 0 {
		if err := w.drainOne(ctx); err != nil {
			return err
		}
	}
	return nil
}

// body returns the spooled message, paced by --max-bandwidth.
func (w *worker) body(ctx context.Context) (io.Reader, error) {
	body, err := w.spool.reader()
	if err != nil {
		return nil, fmt.Errorf("read the spooled message: %w", err)
	}
	if w.e.byteLimit != nil {
		body = &limitedReader{ctx: ctx, r: body, l: w.e.byteLimit}
	}
	return body, nil
}
