package migrate

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"mailferry/checkpoint"
	"mailferry/internal/failure"
	"mailferry/source"
	"mailferry/target"
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
}

// settleDelay is how long after a store with an unknown outcome (and, on a
// resumed run, after the start) the target is first asked whether the
// message arrived. A server commits a command it received whole even when
// the connection is gone by then, and bytes held up in the network (a
// stalled link, a proxy, the send buffer of a killed process) can reach it
// after the client gave up: a Find that runs before that commit sees
// nothing, and the resend makes a duplicate. The fault-proxy test shows it
// with 32-message MULTIAPPENDs. The IMAP target also resets (RST) a
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
	if w.src != nil {
		w.src.Close()
		w.src = nil
	}
	var err error
	for n := 1; n <= w.e.o.Retries; n++ {
		var s source.Source
		if s, err = w.e.srcOpen(ctx); err == nil {
			w.src = s
			return nil
		}
		if fatal(err) {
			return fmt.Errorf("reconnect to the source: %w", err)
		}
		w.e.log.Warn("reconnect to the source failed; retrying", "worker", w.id, "attempt", n, "err", err)
		if err := w.e.backoff(ctx, n); err != nil {
			return err
		}
	}
	return fmt.Errorf("reconnect to the source: %w", err)
}

func (w *worker) reopenTarget(ctx context.Context) error {
	if w.tgt != nil {
		w.tgt.Close()
		w.tgt = nil
	}
	var err error
	for n := 1; n <= w.e.o.Retries; n++ {
		var t target.Target
		if t, err = w.e.tgtOpen(ctx); err == nil {
			w.tgt = t
			return nil
		}
		if fatal(err) {
			return fmt.Errorf("reconnect to the target: %w", err)
		}
		w.e.log.Warn("reconnect to the target failed; retrying", "worker", w.id, "attempt", n, "err", err)
		if err := w.e.backoff(ctx, n); err != nil {
			return err
		}
	}
	return fmt.Errorf("reconnect to the target: %w", err)
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
	d, ok := w.src.(source.Deleter)
	if !ok {
		return nil
	}
	if err := d.Delete(ctx, fs.src, ids); err != nil {
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
func (w *worker) copyPass(ctx context.Context, fs *folderState, items []*item, writeIntents bool) error {
	byID := make(map[string]*item, len(items))
	var ids []string
	// One durable intent per message, one fsync for the batch, before the
	// first byte goes to the target. A message with an intent from an
	// interrupted run is looked for in the target once its bytes (and so
	// its fingerprint) are known, before it is sent again.
	var intents []checkpoint.Record
	for _, it := range items {
		byID[it.id] = it
		ids = append(ids, it.id)
		if it.pending == nil && writeIntents {
			k := fs.key(it.id)
			intents = append(intents, checkpoint.Record{Op: "intent", Key: k, Folder: fs.target,
				Name: plannedName(k, it.received), Size: it.size})
		}
	}
	if err := w.e.j.Intents(ctx, intents); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return failure.Mark(failure.Fatal, fmt.Errorf("journal: %w", err))
	}
	handled := map[string]bool{}
	// attempt counts consecutive failures without progress.
	for attempt := 1; len(ids) > 0; attempt++ {
		if stop := fs.stopped.Load(); stop != nil {
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
		err := w.src.Fetch(ctx, fs.src, ids, func(m source.Meta, r io.Reader) error {
			it := byID[m.ID]
			if it == nil || handled[m.ID] {
				return nil // not asked for (a server sending extra data)
			}
			if err := w.copyOne(ctx, fs, it, m, r); err != nil {
				return err
			}
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
			attempt = 1 // progress: the next failure starts a new count
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
		if attempt > w.e.o.Retries {
			for _, id := range ids {
				w.failItem(fs, byID[id], fmt.Sprintf("read from the source: %v", err))
			}
			return nil
		}
		w.e.log.Warn("source failed; reconnecting", "worker", w.id, "folder", fs.src.Name, "attempt", attempt, "err", err)
		if err := w.e.backoff(ctx, attempt); err != nil {
			return err
		}
		if err := w.reopenSource(ctx); err != nil {
			return err
		}
	}
	return nil
}

// failItem reports a message that could not be copied, known only from the
// listing.
func (w *worker) failItem(fs *folderState, it *item, reason string) {
	w.fail(fs, it, Failure{Size: it.size, Reason: reason})
}

// fail reports a message that could not be copied (f's folder and key are
// filled in here) and counts it as handled.
func (w *worker) fail(fs *folderState, it *item, f Failure) {
	f.Folder, f.Key = fs.src.Name, it.id
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
	if err := w.spool.fill(r, w.e.crlf, w.e.o.StripNUL); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("read message %s of %q: %w", m.ID, fs.src.Name, err)
	}
	if m.Flags == nil {
		m.Flags = it.flags
	}
	sp := &w.spool
	msgID := sp.scan.MessageID()
	size := sp.size
	shaHex := hex.EncodeToString(sp.sum[:])
	fpk := fpKey(msgID, size, shaHex)
	refuse := func(reason string) error {
		w.fail(fs, it, Failure{MessageID: msgID, Size: size, Reason: reason})
		return nil
	}
	if stop := fs.stopped.Load(); stop != nil {
		return refuse(*stop)
	}
	if w.e.o.MaxSize > 0 && size > w.e.o.MaxSize {
		return refuse(fmt.Sprintf("larger than --max-size (%d > %d bytes)", size, w.e.o.MaxSize))
	}
	if w.e.imap && sp.nul > 0 && !w.e.o.StripNUL {
		// IMAP servers refuse NUL bytes or alter them silently (Dovecot
		// stores 0x80): never store a changed message without saying so.
		return refuse(fmt.Sprintf("contains %d NUL byte(s), which IMAP servers refuse or alter; --strip-nul removes them", sp.nul))
	}
	date := m.Received
	if date.IsZero() {
		date = sp.scan.InternalDate(time.Now())
	}
	key := fs.key(it.id)
	d := target.Delivery{
		Folder: fs.target, Flags: m.Flags, Date: date, Size: size, Name: plannedName(key, it.received), Taken: w.e.taken(fs.target),
		Fingerprint: target.Fingerprint{MessageID: msgID, Size: size, SHA256: sp.sum},
	}
	rec := checkpoint.Record{Op: "done", Key: key, Folder: fs.target, Name: d.Name, Size: size, SHA256: shaHex, MsgID: msgID, Flags: m.Flags}
	fl := inflight{fs: fs, it: it, d: d, rec: rec, conv: sp.converted > 0, nul: sp.nulStripped > 0, fpk: fpk}
	if it.pending != nil {
		// An interrupted run may have stored it: ask the target.
		if it.pending.Folder != "" {
			fl.d.Folder, fl.rec.Folder = it.pending.Folder, it.pending.Folder
		}
		if it.pending.Name != "" {
			fl.d.Name, fl.rec.Name = it.pending.Name, it.pending.Name
		}
		// Copies of the same bytes still in flight must be settled first,
		// or Find could take one of them for this message.
		if err := w.drainAll(ctx); err != nil {
			return err
		}
		if err := w.e.waitQuiet(ctx, fpk, 0); err != nil {
			return err
		}
		receipt, ok, err := w.find(ctx, fl.d)
		if err != nil {
			return err
		}
		if ok && it.retried {
			// Sent by this run; only the answer was lost.
			return w.outcome(ctx, fl, receipt, nil)
		}
		if ok {
			r := fl.rec
			r.Receipt = receipt
			return w.already(fs, it, r)
		}
	}
	if fs.recon != nil {
		fs.reconMu.Lock()
		ent, ok := fs.recon.take(fpk)
		fs.reconMu.Unlock()
		if ok {
			return w.already(fs, it, checkpoint.Record{Op: "done", Key: key, Folder: ent.Folder, Name: ent.Name,
				Size: ent.Size, SHA256: ent.SHA256, MsgID: ent.MsgID, Receipt: ent.Receipt, Flags: m.Flags})
		}
	}
	if w.e.msgLimit != nil {
		if err := w.e.msgLimit.Wait(ctx); err != nil {
			return err
		}
	}
	if p, ok := w.tgt.(target.Pipeliner); ok && it.pending == nil {
		window := pipelineWindow
		if pd, ok := p.(target.PipelineDepther); ok {
			window = max(1, pd.PipelineDepth())
		}
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
		// The session failed under this message: settle what is in flight,
		// then take the plain path (it asks the target before a resend).
		w.unknownAt = time.Now()
		w.e.log.Warn("pipelined store failed; retrying", "worker", w.id, "folder", fl.d.Folder, "err", err)
		if err := w.drainAll(ctx); err != nil {
			return err
		}
		if w.tgt != nil {
			w.tgt.Close()
			w.tgt = nil
		}
		fl.it.pending = &checkpoint.Entry{Folder: fl.d.Folder, Name: fl.d.Name}
		receipt, err := w.putChecked(ctx, fl)
		return w.outcome(ctx, fl, receipt, err)
	}
	receipt, err := w.put(ctx, fl.d, fl.fpk)
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
		if failure.KindOf(err) == failure.Quota {
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
	return nil
}

// drainOne waits for the oldest pipelined store.
func (w *worker) drainOne(ctx context.Context) error {
	fl := w.flight[0]
	w.flight = w.flight[1:]
	receipt, err := fl.wait()
	w.e.end(fl.fpk)
	if err != nil && !fatal(err) && ctx.Err() == nil && failure.Retryable(err) {
		// Unknown outcome (the connection went down): retry later, after
		// asking the target.
		w.unknownAt = time.Now()
		fl.it.pending = &checkpoint.Entry{Folder: fl.d.Folder, Name: fl.d.Name}
		fl.it.retried = true
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

// putChecked asks the target first (the message may have arrived), then
// stores it with retries.
func (w *worker) putChecked(ctx context.Context, fl inflight) (string, error) {
	if err := w.e.waitQuiet(ctx, fl.fpk, 0); err != nil {
		return "", err
	}
	receipt, ok, err := w.find(ctx, fl.d)
	if err != nil {
		return "", err
	}
	if ok {
		return receipt, nil
	}
	return w.put(ctx, fl.d, fl.fpk)
}

// put stores the spooled message, retrying transient failures on a fresh
// connection. Before a retry it asks the target whether the failed attempt
// arrived after all (a lost APPEND response), so nothing is stored twice.
func (w *worker) put(ctx context.Context, d target.Delivery, fpk string) (string, error) {
	w.e.begin(fpk)
	defer w.e.end(fpk)
	for n := 1; ; n++ {
		if w.tgt == nil {
			if err := w.reopenTarget(ctx); err != nil {
				return "", err
			}
		}
		body, err := w.body(ctx)
		if err != nil {
			return "", err
		}
		receipt, err := w.tgt.Put(ctx, d, body)
		if err == nil {
			return receipt, nil
		}
		if !failure.Retryable(err) || ctx.Err() != nil || n > w.e.o.Retries {
			return "", err
		}
		w.unknownAt = time.Now()
		w.e.log.Warn("store failed; reconnecting", "worker", w.id, "folder", d.Folder, "attempt", n, "err", err)
		if err := w.e.backoff(ctx, n); err != nil {
			return "", err
		}
		if err := w.reopenTarget(ctx); err != nil {
			return "", err
		}
		if err := w.e.waitQuiet(ctx, fpk, 1); err != nil {
			return "", err
		}
		if err := w.settle(ctx); err != nil {
			return "", err
		}
		if receipt, ok, err := w.tgt.Find(ctx, d); err == nil && ok {
			return receipt, nil
		}
	}
}
