// Package migrate is mailferry's engine: it lists the source folders, maps
// their names onto the target, subtracts what the checkpoint journal says is
// done, and runs concurrent workers that stream each remaining message from
// a source session to a target session, exactly once.
//
// Per batch, one intent record per message (its planned name and the
// target folder's mark) is made durable before the first byte is read;
// then per message the body is spooled (memory up to 1 MiB, then a
// temporary file) while its SHA-256 and Message-ID are computed, stored
// into the target, and a done record is queued. On resume, done keys are
// skipped and an intent without done is resolved by asking the target
// (Find) before anything is sent again (README: How it works).
package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/mailferry/mailferry/checkpoint"
	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/target"
)

// Options tune a run. The zero value is usable.
type Options struct {
	Workers   int // concurrent source+target session pairs; default 4
	Folders   FolderRules
	SyncFlags bool  // bring flag changes of already copied messages to the target
	MaxSize   int64 // skip (and list) messages larger than this; 0 = no limit
	DryRun    bool  // list and plan, copy nothing
	// Retries is how many times a transient failure of one operation is
	// retried on a fresh connection before the message is reported failed.
	Retries  int
	SpoolDir string // for messages larger than the in-memory threshold; default os.TempDir()
	Stats    *Stats // live counters for a progress display (optional)
	Logger   *slog.Logger
	// BatchSize is how many messages a worker takes at a time (one intent
	// fsync, one source fetch); 0: BatchSizeFor the run.
	BatchSize int
	// MaxRate caps messages stored per second, MaxBandwidth the bytes per
	// second sent to the target (0: no cap), for providers' limits.
	MaxRate      float64
	MaxBandwidth int64
	// FixBareLF converts bare LF to CRLF for every target (IMAP targets
	// always get CRLF); StripNUL removes NUL bytes. Both are reported.
	FixBareLF bool
	StripNUL  bool
	// DeleteSource removes each source message once its done record is
	// durable (POP3: DELE, committed by QUIT; IMAP: \Deleted + UID EXPUNGE
	// of those UIDs only).
	DeleteSource bool
	// Memory is the budget in bytes the engine sizes its windows by: how
	// many planned messages wait for a worker, how many a listing page
	// holds, how much of a message a spool keeps in memory (plan.go).
	// 0: DefaultMemory. It is not a limit the engine enforces.
	Memory int64
	// backoff base, shortened by tests
	backoff time.Duration
	// planWindow overrides planAhead (tests)
	planWindow int
	// intentsHook, when set, runs before a batch's intents are written
	// (tests: a slow fsync)
	intentsHook func()
}

// BatchSizeFor is the batch size a run of msgs messages with workers
// workers takes when Options.BatchSize is 0: 16 to 128, so that every
// worker gets several batches. (plan's read sample reads chunks of it.)
func BatchSizeFor(msgs, workers int) int {
	return min(max(msgs/(max(workers, 1)*4), 16), 128)
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Retries <= 0 {
		o.Retries = 6
	}
	if o.Stats == nil {
		o.Stats = new(Stats)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Memory <= 0 {
		o.Memory = DefaultMemory
	}
	if o.backoff <= 0 {
		o.backoff = 500 * time.Millisecond
	}
}

// Key is the journal key of a source message: folder, validity and ID.
func Key(folder string, validity uint32, id string) string {
	return folder + "\x1f" + strconv.FormatUint(uint64(validity), 10) + "\x1f" + id
}

func splitKey(k string) (folder string, validity uint32, id string, ok bool) {
	a := strings.Split(k, "\x1f")
	if len(a) != 3 {
		return "", 0, "", false
	}
	v, err := strconv.ParseUint(a[1], 10, 32)
	if err != nil {
		return "", 0, "", false
	}
	return a[0], uint32(v), a[2], true
}

// folderState is one folder being copied.
type folderState struct {
	plan    plannedFolder
	src     source.Folder
	keyName string // folder name used in journal keys (the old name after a rename)
	target  string
	sum     *FolderSummary
	stopped atomic.Pointer[string] // set when the folder must stop (over quota)
	recon   *fpIndex               // non-nil when the source UIDVALIDITY changed
	reconMu sync.Mutex
}

// item is one message to handle. The plan holds one per message to copy
// for the whole run, so it is kept small: its journal key is derived
// (folderState.key), the date is kept in Unix seconds (all the planned
// Maildir name needs; the body's own fetch brings the full date), and
// equal flag lists share one slice (engine.internFlags).
//
// The life of one message (worker.go; one path for every target):
//
//	fresh    no intent, or an intent this run wrote and nothing sent yet:
//	         it may be stored straight away (pipelined where the target can).
//	unknown  pending != nil: an earlier run's intent without done, or a
//	         store of this run whose answer was lost. It may be in the
//	         target: deliver asks (Find) and stores only on a definite
//	         "not there"; while the question has no answer, it waits.
//	done     a done record is queued (copied, or found already there).
//	failed   reported in the summary; the journal keeps its intent, so
//	         the next run starts it as unknown.
type item struct {
	id       string
	size     int64
	received int64             // Unix seconds of the source's internal date; 0: none
	flags    []string          // shared: never modify
	pending  *checkpoint.Entry // unknown: the intent (folder, planned name, mark) of a store that may have landed
	sentHere bool              // this run sent it (found later: copied, not "already there")
	tries    uint8             // failures charged to this message while the run made no progress
}

// key is the journal key of message id of this folder.
func (fs *folderState) key(id string) string { return Key(fs.keyName, fs.src.Validity, id) }

// unixOrZero is t in Unix seconds, 0 for the zero time.
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// internFlags returns a shared copy of flags: the same list (in the same
// order) is stored once however many messages carry it.
func (e *engine) internFlags(flags []string) []string {
	if len(flags) == 0 {
		return nil
	}
	k := strings.Join(flags, "\x00")
	if f, ok := e.flagSets[k]; ok {
		return f
	}
	if e.flagSets == nil {
		e.flagSets = map[string][]string{}
	}
	f := slices.Clip(slices.Clone(flags))
	e.flagSets[k] = f
	return f
}

type batch struct {
	fs         *folderState
	items      []item
	deleteOnly []string
}

// engine holds the state of one Run.
type engine struct {
	o        Options
	started  time.Time
	first    sync.Once           // logs the first message copied (the start-up of a resume)
	flagSets map[string][]string // see internFlags; written by prepare only
	j        *checkpoint.Journal
	srcOpen  source.Opener
	tgtOpen  target.Opener
	sum      *Summary
	log      *slog.Logger
	crlf     bool            // convert bare LF to CRLF
	tfeat    target.Features // of the first target session

	// receipts already standing for a source message, per target folder:
	// built from the journal the first time a Find needs it (or ahead of
	// it, see buildClaims), then kept current. See target.Delivery.Taken.
	rcOnce     sync.Once
	rcMu       sync.Mutex
	rcBuilding bool // claims go into rc (set before the build reads the journal)
	rc         claims
	bg         sync.WaitGroup // background work run waits for (firstCopied)
	// claimsAhead: a resume with open intents into a target whose
	// lookups ask the claims; see firstCopied.
	claimsAhead bool

	msgLimit  *rate.Limiter
	byteLimit *rate.Limiter

	// flying counts stores in progress per fingerprint, so that Find never
	// mistakes a byte-identical twin still in flight for this message.
	flyMu  sync.Mutex
	flying map[string]int

	// stopped is set when the whole run must stop storing (the target
	// account is over quota); see stopOf.
	stopped atomic.Pointer[string]

	// invs are the target folders' inventories read for reconciliation
	// (nil: the folder needed none); written by prepare only.
	invs map[string]*inventory
}

// stopOf returns why nothing more may be stored into fs (the account or
// the folder is full), or nil.
func (e *engine) stopOf(fs *folderState) *string {
	if s := e.stopped.Load(); s != nil {
		return s
	}
	return fs.stopped.Load()
}

func (e *engine) begin(fpk string) {
	e.flyMu.Lock()
	e.flying[fpk]++
	e.flyMu.Unlock()
}

func (e *engine) end(fpk string) {
	e.flyMu.Lock()
	if e.flying[fpk]--; e.flying[fpk] <= 0 {
		delete(e.flying, fpk)
	}
	e.flyMu.Unlock()
}

// waitQuiet waits until at most self stores of these bytes are in flight.
func (e *engine) waitQuiet(ctx context.Context, fpk string, self int) error {
	for {
		e.flyMu.Lock()
		n := e.flying[fpk]
		e.flyMu.Unlock()
		if n <= self {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (e *engine) taken(folder string) func(string) bool {
	return func(receipt string) bool {
		e.buildClaims()
		e.rcMu.Lock()
		defer e.rcMu.Unlock()
		return e.rc.has(folder, receipt)
	}
}

// buildClaims builds the claimed-receipts set from the journal, once: the
// first lookup waits for it. Claims made while it runs go straight into
// the set (rcBuilding), so none is missed: a receipt is journaled before it
// is claimed, and everything journaled before the build's Sync is in its
// pass. With rcBuilding set from the start of the run (claimsAhead), every
// claim of the run is in the set already and the journal's file holds the
// rest: no Sync.
func (e *engine) buildClaims() {
	e.rcOnce.Do(func() {
		e.rcMu.Lock()
		early := e.rcBuilding
		e.rcBuilding = true
		e.rcMu.Unlock()
		if !early {
			// Everything claimed so far must be in the file for Range.
			_ = e.j.Sync(context.Background())
		}
		t0 := time.Now()
		var c claims
		n := 0
		e.j.Range(func(_ string, ent checkpoint.Entry) bool {
			if ent.Done && ent.Receipt != "" {
				c.load(ent.Folder, ent.Receipt)
				n++
			}
			return true
		})
		c.seal()
		e.log.Debug("claimed receipts read from the journal", "receipts", n, "took", time.Since(t0).Round(time.Millisecond))
		e.rcMu.Lock()
		e.rc.merge(&c)
		e.rcMu.Unlock()
	})
}

// claimsSoon is for a resume with open intents into a target whose
// lookups ask the claims: the run's claims go into the set from now on
// (before anything is claimed), and the set is built from the journal in
// the background once the first message is copied (firstCopied).
func (e *engine) claimsSoon() {
	e.rcMu.Lock()
	e.rcBuilding = true
	e.rcMu.Unlock()
	e.claimsAhead = true
}

// firstCopied is called when the run has copied its first message. A
// resume whose open intents will be looked for in the target (claimsAhead)
// then builds the claims in the background: at a million messages the
// journal's full pass takes 1-2 s of CPU. Built at the start (before), it
// competed with the listing and the first batch for a 2-core machine's
// CPU, and the resume's first copy came later; built at the first lookup,
// the lookup would wait for all of it. The open intents' batches come
// after the others of their window (splitPending), so the set is usually
// ready when they are looked for; run waits for it before it returns (the
// journal is closed after).
func (e *engine) firstCopied() {
	e.first.Do(func() {
		e.log.Info("first message copied", "after", time.Since(e.started))
		if e.claimsAhead {
			e.bg.Add(1)
			go func() {
				defer e.bg.Done()
				e.buildClaims()
			}()
		}
	})
}

// claim records that receipt now stands for a source message.
func (e *engine) claim(folder, receipt string) {
	if receipt == "" {
		return
	}
	e.rcMu.Lock()
	// Before the set is being built, the journal holds the claim (the
	// build reads it after a Sync): no need to keep every receipt in
	// memory.
	if e.rcBuilding {
		e.rc.add(folder, receipt)
	}
	e.rcMu.Unlock()
}

// Run copies what is not yet in the target. It returns the summary (also on
// error, with what was done so far) and an error only when the run could not
// finish: a fatal failure (authentication, TLS, connection at start) or ctx
// cancelled. Per-message failures are in the summary, not in the error.
func Run(ctx context.Context, src source.Opener, tgt target.Opener, j *checkpoint.Journal, o Options) (*Summary, error) {
	o.defaults()
	start := time.Now()
	e := &engine{o: o, started: start, j: j, srcOpen: src, tgtOpen: tgt, sum: &Summary{}, log: o.Logger, flying: map[string]int{}, invs: map[string]*inventory{}}
	if o.MaxRate > 0 {
		e.msgLimit = rate.NewLimiter(rate.Limit(o.MaxRate), 1)
	}
	if o.MaxBandwidth > 0 {
		e.byteLimit = rate.NewLimiter(rate.Limit(o.MaxBandwidth), bandwidthBurst)
	}
	err := e.run(ctx)
	e.bg.Wait()
	if serr := j.Sync(context.WithoutCancel(ctx)); serr != nil && err == nil {
		err = fmt.Errorf("sync the journal: %w", serr)
	}
	e.sum.Elapsed = time.Since(start)
	e.sum.totals()
	if ctx.Err() != nil {
		e.sum.Interrupted = true
		if err == nil {
			err = ctx.Err()
		}
	}
	return e.sum, err
}

func (e *engine) run(ctx context.Context) error {
	s0, err := e.srcOpen(ctx)
	if err != nil {
		return fmt.Errorf("connect to the source: %w", err)
	}
	defer func() {
		if s0 != nil {
			s0.Close()
		}
	}()
	t0, err := e.tgtOpen(ctx)
	if err != nil {
		return fmt.Errorf("connect to the target: %w", err)
	}
	defer func() {
		if t0 != nil {
			t0.Close()
		}
	}()
	e.tfeat = t0.Features()
	e.crlf = e.tfeat.CRLF
	if e.o.FixBareLF {
		e.crlf = true
	}
	if e.o.DeleteSource && !s0.Features().Delete {
		return failure.Mark(failure.Config, errors.New("--delete-source: this source cannot delete messages"))
	}

	pl, err := e.newPlanner(ctx, &s0, &t0)
	if err != nil {
		return err
	}
	if e.o.DryRun {
		// Count only: nothing is kept.
		_, err := pl.run(ctx, func(int, *folderState, []item, []string) error { return nil }, nil)
		return err
	}

	// First window: plan until everything is planned (an ordinary
	// account: the workers then see every folder from the start, and the
	// listing sessions become worker 0's) or planAhead messages wait, or
	// some wait and the planner has listed planAhead messages with nothing
	// to do. The last is a resume or a re-run of a big account: most of it
	// is copied already, and skimming the rest (a 1,000,000-message
	// resume: 3 s) need not hold the copy back.
	ahead := e.o.planAhead()
	work := make([]folderWork, len(pl.plans))
	queued := 0
	finished, err := pl.run(ctx, func(i int, fs *folderState, items []item, del []string) error {
		w := &work[i]
		w.fs = fs
		w.items = append(w.items, items...)
		w.deleteOnly = append(w.deleteOnly, del...)
		queued += len(items) + len(del)
		return nil
	}, func() bool { return queued >= ahead || queued > 0 && pl.idle >= ahead })
	if err != nil {
		return err
	}
	if e.o.BatchSize <= 0 {
		n := int(e.o.Stats.TotalMsgs.Load()) // exact when finished, else an estimate
		e.o.BatchSize = BatchSizeFor(n, e.o.Workers)
	}
	bs := e.o.BatchSize
	batches := func(fs *folderState, items []item, del []string) []batch {
		var out []batch
		for i := 0; i < len(del); i += 256 {
			out = append(out, batch{fs: fs, deleteOnly: del[i:min(i+256, len(del))]})
		}
		fresh, unknown := splitPending(items)
		for _, items := range [][]item{fresh, unknown} {
			for i := 0; i < len(items); i += bs {
				out = append(out, batch{fs: fs, items: items[i:min(i+bs, len(items))]})
			}
		}
		return out
	}
	g, gctx := errgroup.WithContext(ctx)
	// On an IMAP target, one worker per folder at a time (see dispatcher).
	disp := newStreamDispatcher(gctx, len(pl.plans), e.tfeat.ExclusiveFolders, ahead)
	nBatches := 0
	for i, w := range work {
		if w.fs == nil {
			continue
		}
		b := batches(w.fs, w.items, w.deleteOnly)
		nBatches += len(b)
		disp.push(i, b)
	}
	work = nil
	e.o.Stats.Listed.Store(true)
	nw := e.o.Workers
	if finished {
		disp.close()
		if nBatches == 0 {
			return nil
		}
		nw = min(nw, nBatches)
	}
	e.sum.Workers = nw
	e.log.Debug("workers starting", "workers", nw, "queued", queued, "plan_done", finished)

	// While the plan goes on, the listing sessions are the planner's; a
	// worker 0 that cannot connect (a server that allows one session)
	// gets them when the plan is done.
	// Counted before the planner goes on, so that it waits for them.
	disp.expect(nw)
	var spare *handover
	if !finished {
		spare = &handover{ch: make(chan sessions, 1)}
		g.Go(func() error {
			_, err := pl.run(gctx, func(i int, fs *folderState, items []item, del []string) error {
				return disp.push(i, batches(fs, items, del))
			}, nil)
			disp.close()
			spare.give(sessions{s0, t0})
			s0, t0 = nil, nil
			return err
		})
	}
	var single atomic.Bool
	for i := 0; i < nw; i++ {
		w := &worker{e: e, id: i, spool: spool{dir: e.o.SpoolDir, threshold: e.o.spoolThreshold()}}
		if i == 0 && finished {
			w.src, w.tgt = s0, t0
			s0, t0 = nil, nil
		}
		g.Go(func() error {
			defer w.close()
			if w.src != nil {
				disp.connected()
			} else if err := w.open(gctx); err == nil {
				disp.connected()
			} else {
				disp.failed()
				// The first worker carries the job; the others are a
				// bonus. A server that allows one session ([IN-USE]) or
				// fewer connections leaves us with fewer workers.
				if w.id == 0 && spare != nil && !fatal(err) {
					e.log.Info("worker waits for the listing sessions", "worker", w.id, "err", err)
					if s, ok := spare.take(gctx); ok {
						w.src, w.tgt = s.src, s.tgt
					} else if gctx.Err() != nil {
						return nil
					} else if err := w.open(gctx); err != nil {
						// The plan is done and its sessions closed:
						// their connections are free now.
						return err
					}
					disp.join()
				} else if errors.Is(err, source.ErrSingleSession) {
					if !single.Swap(true) {
						e.log.Warn("source allows only one session; continuing with one", "err", err)
					}
					return nil
				} else {
					if gctx.Err() == nil {
						e.log.Warn("extra worker could not connect; continuing with fewer", "worker", w.id, "err", err)
					}
					if w.id == 0 && fatal(err) {
						return err
					}
					return nil
				}
			}
			defer disp.leave()
			for prev := -1; ; {
				b, f, ok := disp.next(prev)
				prev = f
				if !ok {
					return nil
				}
				err := w.do(gctx, b)
				disp.release(f)
				if err != nil {
					return err
				}
			}
		})
	}
	err = g.Wait()
	if spare != nil {
		spare.discard()
	}
	return err
}

// sessions are a source and a target session.
type sessions struct {
	src source.Source
	tgt target.Target
}

// handover passes the planner's sessions, once the plan is done, to a
// worker that asked for them; nobody asking, they are closed.
type handover struct {
	mu     sync.Mutex
	wanted bool
	given  bool
	ch     chan sessions
}

// give hands s over, or closes it when no worker waits for it.
func (h *handover) give(s sessions) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.given = true
	if h.wanted {
		h.ch <- s
		return
	}
	s.close()
}

// take waits for the planner's sessions; false when the plan ended
// without them (closed: the worker should connect again) or ctx ended.
func (h *handover) take(ctx context.Context) (sessions, bool) {
	h.mu.Lock()
	if h.given {
		h.mu.Unlock()
		return sessions{}, false
	}
	h.wanted = true
	h.mu.Unlock()
	select {
	case s := <-h.ch:
		return s, true
	case <-ctx.Done():
		return sessions{}, false
	}
}

// discard closes sessions handed over but never taken.
func (h *handover) discard() {
	select {
	case s := <-h.ch:
		s.close()
	default:
	}
}

func (s sessions) close() {
	if s.src != nil {
		s.src.Close()
	}
	if s.tgt != nil {
		s.tgt.Close()
	}
}

type folderWork struct {
	fs         *folderState
	items      []item
	deleteOnly []string // --delete-source: done in an earlier run, still on the source
}

func (e *engine) syncFlags(ctx context.Context, t target.Target, fs *folderState, k string, ent checkpoint.Entry, m source.Meta) error {
	if !t.Features().Flags || ent.Receipt == "" {
		return nil
	}
	fsetter := t.(target.FlagSetter)
	receipt, err := fsetter.SetFlags(ctx, ent.Folder, ent.Receipt, m.Flags)
	if err != nil {
		if failure.IsFatal(err) {
			return fmt.Errorf("set flags in %q: %w", ent.Folder, err)
		}
		e.sum.fail(fs.sum, Failure{Folder: fs.src.Name, Key: m.ID, Reason: fmt.Sprintf("set flags: %v", err)})
		return nil
	}
	if err := e.j.Done(checkpoint.Record{Op: "done", Key: k, Folder: ent.Folder, Name: ent.Name, Size: ent.Size,
		SHA256: ent.SHA256, MsgID: ent.MsgID, Receipt: receipt, Flags: m.Flags}); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	e.sum.add(fs.sum, func(f *FolderSummary) { f.FlagsSynced++ })
	return nil
}

func sameFlags(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// fpIndex is a multiset of the fingerprints of messages already stored for
// a source folder, used when its UIDVALIDITY changed.
type fpIndex struct {
	n    int
	byFP map[string][]checkpoint.Entry
}

func fpKey(msgID string, size int64, sha string) string {
	return msgID + "\x00" + strconv.FormatInt(size, 10) + "\x00" + sha
}

func (e *engine) fingerprints(folder string) *fpIndex {
	idx := &fpIndex{byFP: map[string][]checkpoint.Entry{}}
	e.j.Range(func(k string, ent checkpoint.Entry) bool {
		f, _, _, ok := splitKey(k)
		if ok && f == folder && ent.Done {
			fk := fpKey(ent.MsgID, ent.Size, ent.SHA256)
			idx.byFP[fk] = append(idx.byFP[fk], ent)
			idx.n++
		}
		return true
	})
	return idx
}

// take removes and returns one stored entry with this fingerprint.
func (x *fpIndex) take(fk string) (checkpoint.Entry, bool) {
	l := x.byFP[fk]
	if len(l) == 0 {
		return checkpoint.Entry{}, false
	}
	x.byFP[fk] = l[1:]
	return l[0], true
}

// plannedName is the unique name recorded in the intent before the first
// byte is sent; a Maildir target stores the file under it, so that Find can
// tell after a crash whether the message arrived. It is derived from what
// the listing says (key and internal date, 0 when the source has none), so
// sending the same message again reuses it.
func plannedName(key string, unix int64) string {
	h := sha256.Sum256([]byte(key))
	return fmt.Sprintf("%d.MF%s.mailferry", unix, hex.EncodeToString(h[:10]))
}

// bandwidthBurst is the largest chunk the bandwidth limiter lets through
// at once.
const bandwidthBurst = 64 << 10

// limitedReader paces reads through a byte-rate limiter.
type limitedReader struct {
	ctx context.Context
	r   io.Reader
	l   *rate.Limiter
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if len(p) > bandwidthBurst {
		p = p[:bandwidthBurst]
	}
	n, err := l.r.Read(p)
	if n > 0 {
		if werr := l.l.WaitN(l.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// backoff sleeps before attempt n (1-based): jittered, capped exponential.
func (e *engine) backoff(ctx context.Context, n int) error {
	d := e.o.backoff << min(n-1, 6)
	d = min(d, 30*time.Second)
	d = d/2 + rand.N(d/2+1)
	return sleep(ctx, d)
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fatal reports whether err must stop the run: failure.IsFatal, or the
// run's context ended.
func fatal(err error) bool {
	return failure.IsFatal(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// splitPending returns items without and with an unknown outcome
// (it.pending: a store of an interrupted run, or a copy reconciliation
// could not tell apart), each part in its order; batched apart, the second
// after the first. The second are looked for in the target before they are
// sent again, all of a batch at once, and that lookup costs a SELECT and a
// SEARCH of the folder (Dovecot, after a kill -9 in a folder of 400,000
// messages: 3 s before the resume's first copy). The others need not wait
// for it. Any order is safe: a lookup skips the copies the journal credits
// to other messages (Delivery.Taken), and a batch's stores are settled
// before its lookups (findPending).
func splitPending(items []item) (fresh, unknown []item) {
	if !slices.ContainsFunc(items, func(it item) bool { return it.pending != nil }) {
		return items, nil
	}
	for _, it := range items {
		if it.pending == nil {
			fresh = append(fresh, it)
		} else {
			unknown = append(unknown, it)
		}
	}
	return fresh, unknown
}
