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
	// fsync, one source fetch); 0 picks 16 to 128 so that every worker gets
	// several batches.
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
	// backoff base, shortened by tests
	backoff time.Duration
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
	flagSets map[string][]string // see internFlags; written by prepare only
	j        *checkpoint.Journal
	srcOpen  source.Opener
	tgtOpen  target.Opener
	sum      *Summary
	log      *slog.Logger
	crlf     bool            // convert bare LF to CRLF
	tfeat    target.Features // of the first target session

	// receipts already standing for a source message, per target folder:
	// built from the journal the first time a Find needs it, then kept
	// current. See target.Delivery.Taken.
	rcMu    sync.Mutex
	rcBuilt bool
	rc      map[string]bool

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
		e.rcMu.Lock()
		defer e.rcMu.Unlock()
		if !e.rcBuilt {
			e.rcBuilt = true
			// Everything queued so far must be in the file for Range.
			_ = e.j.Sync(context.Background())
			e.j.Range(func(_ string, ent checkpoint.Entry) bool {
				if ent.Done && ent.Receipt != "" {
					e.rc[ent.Folder+"\x00"+ent.Receipt] = true
				}
				return true
			})
		}
		return e.rc[folder+"\x00"+receipt]
	}
}

// claim records that receipt now stands for a source message.
func (e *engine) claim(folder, receipt string) {
	if receipt == "" {
		return
	}
	e.rcMu.Lock()
	// Before the set is built, the journal holds the claim (taken reads
	// it after a Sync): no need to keep every receipt in memory.
	if e.rcBuilt {
		e.rc[folder+"\x00"+receipt] = true
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
	e := &engine{o: o, started: start, j: j, srcOpen: src, tgtOpen: tgt, sum: &Summary{}, log: o.Logger, rc: map[string]bool{}, flying: map[string]int{}, invs: map[string]*inventory{}}
	if o.MaxRate > 0 {
		e.msgLimit = rate.NewLimiter(rate.Limit(o.MaxRate), 1)
	}
	if o.MaxBandwidth > 0 {
		e.byteLimit = rate.NewLimiter(rate.Limit(o.MaxBandwidth), bandwidthBurst)
	}
	err := e.run(ctx)
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

	folders, err := e.prepare(ctx, &s0, &t0)
	if err != nil {
		return err
	}
	if e.o.DryRun {
		return nil
	}

	var total, totalBytes int64
	if e.o.BatchSize <= 0 {
		n := 0
		for _, fs := range folders {
			n += len(fs.items)
		}
		e.o.BatchSize = min(max(n/(e.o.Workers*4), 16), 128)
	}
	perFolder := make([][]batch, len(folders))
	for f, fs := range folders {
		for i := 0; i < len(fs.deleteOnly); i += 256 {
			perFolder[f] = append(perFolder[f], batch{fs: fs.fs, deleteOnly: fs.deleteOnly[i:min(i+256, len(fs.deleteOnly))]})
		}
		for i := 0; i < len(fs.items); i += e.o.BatchSize {
			end := min(i+e.o.BatchSize, len(fs.items))
			perFolder[f] = append(perFolder[f], batch{fs: fs.fs, items: fs.items[i:end]})
		}
		for _, it := range fs.items {
			total++
			totalBytes += it.size
		}
	}
	nBatches := 0
	for _, l := range perFolder {
		nBatches += len(l)
	}
	e.o.Stats.TotalMsgs.Store(total)
	e.o.Stats.TotalBytes.Store(totalBytes)
	e.o.Stats.Listed.Store(true)
	if nBatches == 0 {
		return nil
	}

	g, gctx := errgroup.WithContext(ctx)
	// On an IMAP target, one worker per folder at a time (see dispatcher).
	disp := newDispatcher(gctx, perFolder, e.tfeat.ExclusiveFolders)
	nw := min(e.o.Workers, nBatches)
	e.sum.Workers = nw
	var single atomic.Bool
	for i := 0; i < nw; i++ {
		w := &worker{e: e, id: i, spool: spool{dir: e.o.SpoolDir, threshold: defaultSpoolThreshold}}
		if i == 0 {
			w.src, w.tgt = s0, t0
			s0, t0 = nil, nil
		}
		g.Go(func() error {
			defer w.close()
			if w.src == nil {
				if err := w.open(gctx); err != nil {
					// The first worker carries the job; the others are a
					// bonus. A server that allows one session ([IN-USE]) or
					// fewer connections leaves us with fewer workers.
					if errors.Is(err, source.ErrSingleSession) {
						if !single.Swap(true) {
							e.log.Warn("source allows only one session; continuing with one", "err", err)
						}
					} else if gctx.Err() == nil {
						e.log.Warn("extra worker could not connect; continuing with fewer", "worker", w.id, "err", err)
					}
					return nil
				}
			}
			for {
				b, f, ok := disp.next()
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
	return g.Wait()
}

type folderWork struct {
	fs         *folderState
	items      []item
	deleteOnly []string // --delete-source: done in an earlier run, still on the source
}

// prepare lists folders and messages and decides what to copy.
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

func (e *engine) prepare(ctx context.Context, s0p *source.Source, t0p *target.Target) ([]folderWork, error) {
	srcAgain := func() error { return reopen(ctx, e, s0p, e.srcOpen, "source") }
	tgtAgain := func() error { return reopen(ctx, e, t0p, e.tgtOpen, "target") }
	var srcFolders []source.Folder
	err := e.again(ctx, "list source folders", srcAgain, func() (err error) {
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
		err := e.again(ctx, "list target folders", tgtAgain, func() (err error) {
			tgtFolders, err = (*t0p).(target.FolderLister).Folders(ctx)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("list target folders: %w", err)
		}
	}
	plans := planFolders(e.o.Folders, srcFolders, tgtFolders)
	for _, w := range unmatchedRules(e.o.Folders, srcFolders) {
		e.log.Warn(w)
		e.sum.Warnings = append(e.sum.Warnings, w)
	}

	// What the journal knows, per source folder name: the validities seen.
	known := map[string]map[uint32]bool{}
	e.j.Keys(func(k string, _ bool) bool {
		f, v, _, ok := splitKey(k)
		if ok {
			if known[f] == nil {
				known[f] = map[uint32]bool{}
			}
			known[f][v] = true
		}
		return true
	})
	present := map[string]bool{}
	for _, f := range srcFolders {
		present[f.Name] = true
	}

	// A folder renamed on the source since the last run keeps its
	// UIDVALIDITY: find the old name so its messages are not copied twice.
	keyNames := make([]string, len(plans))
	for i, p := range plans {
		keyNames[i] = p.src.Name
		if p.skip == "" && p.src.Validity != 0 && !known[p.src.Name][p.src.Validity] {
			for name, vs := range known {
				if vs[p.src.Validity] && !present[name] {
					e.log.Info("folder renamed on the source since the last run", "old", name, "new", p.src.Name)
					keyNames[i] = name
					break
				}
			}
		}
	}
	// What the journal credits to each target folder (see reconcile.go).
	inventories := (*t0p).Features().Inventory
	creditedTo := map[string]int{}
	if inventories {
		cr := e.credits()
		for i, p := range plans {
			// A renamed folder's credits point at the old target folder.
			if p.skip == "" && keyNames[i] == p.src.Name {
				creditedTo[p.target] += cr[keyNames[i]][p.src.Validity]
			}
		}
	}

	var out []folderWork
	for i, p := range plans {
		fsum := &FolderSummary{Source: p.src.Name, Target: p.target, Skipped: p.skip}
		e.sum.Folders = append(e.sum.Folders, fsum)
		if p.skip != "" {
			e.log.Info("folder skipped", "folder", p.src.Name, "reason", p.skip)
			continue
		}
		fs := &folderState{plan: p, src: p.src, keyName: keyNames[i], sum: fsum}
		// A dry run maps names but creates nothing on the target.
		name, err := p.target, error(nil)
		if !e.o.DryRun {
			err = e.again(ctx, "create a target folder", tgtAgain, func() (err error) {
				name, err = (*t0p).Ensure(ctx, source.Folder{Name: p.target, SpecialUse: specialUse(p.src)})
				return err
			})
		}
		if err != nil {
			if fatal(err) || ctx.Err() != nil {
				return nil, fmt.Errorf("create target folder %q: %w", p.target, err)
			}
			e.sum.fail(fsum, Failure{Folder: p.src.Name, Reason: fmt.Sprintf("create target folder %q: %v", p.target, err)})
			continue
		}
		if name != p.target {
			fsum.Renamed = fmt.Sprintf("target name %q is not safe here; stored as %q", p.target, name)
			e.log.Warn("folder name changed for the target", "folder", p.src.Name, "wanted", p.target, "stored", name)
		}
		fs.target, fsum.Target = name, name
		e.o.Stats.setFolder(p.src.Name)
		var metas []source.Meta
		err = e.again(ctx, "list a source folder", srcAgain, func() (err error) {
			metas, err = (*s0p).List(ctx, p.src)
			var vc *source.ValidityChangedError
			if errors.As(err, &vc) {
				// Changed between LIST and SELECT: take the new value.
				p.src.Validity, fs.src.Validity = vc.New, vc.New
				metas, err = (*s0p).List(ctx, p.src)
			}
			return err
		})
		if err != nil {
			if fatal(err) || ctx.Err() != nil {
				return nil, fmt.Errorf("list messages of %q: %w", p.src.Name, err)
			}
			// One folder the source cannot open does not stop the others.
			e.log.Error("cannot list a source folder; skipping it", "folder", p.src.Name, "err", err)
			e.sum.fail(fsum, Failure{Folder: p.src.Name, Reason: fmt.Sprintf("list the folder: %v", err)})
			// The session may be unusable after that: start a fresh one.
			if err := srcAgain(); err != nil {
				return nil, err
			}
			continue
		}
		fsum.Listed = len(metas)
		// UIDVALIDITY changed: the old keys are void; match by fingerprint.
		if vs := known[fs.keyName]; len(vs) > 0 && p.src.Validity != 0 && !vs[p.src.Validity] {
			fs.recon = e.fingerprints(fs.keyName)
			e.log.Info("source folder UIDVALIDITY changed; matching by content", "folder", p.src.Name, "known", fs.recon.n)
		}
		// The target is the truth: reconcile when the journal cannot
		// account for the folder's content.
		var x *inventory
		var ids map[string]source.Identity
		gone := map[string]bool{}   // done in the journal, copy gone from the target
		shared := map[string]bool{} // another source message has the same Message-ID and date
		alike := map[string]bool{}  // ... and the same size: only the bytes tell them apart
		named := map[string]target.Stored{}
		if inventories && fs.recon == nil {
			open := 0 // intents without done: stores with an unknown outcome
			for _, m := range metas {
				if done, _, ok := e.j.Status(Key(fs.keyName, p.src.Validity, m.ID)); ok && !done {
					open++
				}
			}
			err = e.again(ctx, "read what a target folder holds", tgtAgain, func() (err error) {
				inv, _ := (*t0p).(target.Inventorier)
				x, err = e.folderInventory(ctx, inv, name, creditedTo[p.target], e.receiptValidity(fs.keyName, p.src.Validity, metas), open)
				return err
			})
			if err != nil {
				if fatal(err) || ctx.Err() != nil {
					return nil, err
				}
				e.log.Warn("could not reconcile with the target folder; trusting the journal", "folder", p.target, "err", err)
				x = nil
			}
		}
		if x != nil {
			want := map[string]bool{}
			for _, m := range metas {
				k := Key(fs.keyName, p.src.Validity, m.ID)
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
					k := Key(fs.keyName, p.src.Validity, m.ID)
					if st, ok := x.claimName(plannedName(k, unixOrZero(m.Received))); ok {
						named[m.ID] = st
						delete(want, m.ID)
					}
				}
			}
			if len(want) > 0 {
				err = e.again(ctx, "read the identities of a source folder's messages", srcAgain, func() (err error) {
					ids, err = e.identities(ctx, *s0p, p.src, want)
					return err
				})
				if err != nil {
					if fatal(err) || ctx.Err() != nil {
						return nil, fmt.Errorf("read message identities of %q: %w", p.src.Name, err)
					}
					e.log.Warn("could not read the source's message identities; matching by date and size", "folder", p.src.Name, "err", err)
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
				e.log.Warn("messages the journal credits are gone from the target; copying them again", "folder", p.target, "n", len(gone))
			}
		}
		var items []item
		var deleteOnly []string
		for _, m := range metas {
			fsum.ListedBytes += m.Size
			k := Key(fs.keyName, p.src.Validity, m.ID)
			done, flags, ok := e.j.Status(k) // memory only: a no-op re-run reads no file
			if gone[m.ID] {
				done, ok = false, false // copy it again as a new message
			}
			if ok && done {
				fsum.AlreadyThere++
				if e.o.DeleteSource {
					deleteOnly = append(deleteOnly, m.ID)
				}
				if e.o.SyncFlags && !sameFlags(flags, m.Flags) {
					ent, _ := e.j.Get(k)
					if err := e.syncFlags(ctx, *t0p, fs, k, ent, m); err != nil {
						return nil, err
					}
				}
				continue
			}
			st, found := named[m.ID]
			if id, want := ids[m.ID]; want && !alike[m.ID] && x != nil {
				st, found = x.match(id, m.Size, shared[m.ID])
			}
			if found {
				fsum.AlreadyThere++
				if !e.o.DryRun {
					if err := e.j.Done(checkpoint.Record{Op: "done", Key: k, Folder: fs.target, Size: st.Size,
						MsgID: st.MessageID, Receipt: st.Receipt, Flags: m.Flags}); err != nil {
						return nil, failure.Mark(failure.Fatal, fmt.Errorf("journal: %w", err))
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
				e.sum.skip(fsum, Failure{Folder: p.src.Name, Key: m.ID, Size: m.Size,
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
			fsum.ToCopy++
			fsum.ToCopyBytes += m.Size
		}
		if len(items) > 0 || len(deleteOnly) > 0 {
			out = append(out, folderWork{fs: fs, items: items, deleteOnly: deleteOnly})
		}
	}
	for _, sk := range srcSkipped {
		e.sum.Folders = append(e.sum.Folders, &FolderSummary{Source: sk.Name, Skipped: sk.Reason})
		e.log.Info("folder skipped", "folder", sk.Name, "reason", sk.Reason)
	}
	return out, nil
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
