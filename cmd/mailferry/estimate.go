package main

// This file estimates how long "mailferry migrate" will take, for plan:
// a warm, timed sample of the source read the way the run reads it, and a
// model of the run (workers, one worker per folder on an IMAP target, the
// store side, --max-rate and --max-bandwidth) that turns it into a time
// with a range.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/source"
	maildirtgt "github.com/mailferry/mailferry/target/maildir"
)

// The sample: after a warm-up (each session logs in, selects a folder and
// reads a few messages untimed), the sessions read chunks of consecutive
// messages, spread over the folders in proportion to what each has to
// copy, for about sampleBudget or sampleMaxMsgs messages. With several
// workers, one session reads alone for the first third of the budget (the
// rate of one worker, which an IMAP target's one-worker-per-folder rule
// makes matter), then all of them together. A session reads a folder's
// chunks before it moves to its next folder (samplePicker), as the run's
// workers do. Picking the chunks takes memory in proportion to the
// sample, not to the folders, on a source that lists in pages (IMAP).
var (
	sampleBudget  = 2500 * time.Millisecond
	sampleMaxMsgs = 5000
)

const (
	sampleMaxFolders = 8 // the folders with the most to copy
	warmMsgs         = 4
	sampleChunkBytes = 4 << 20 // a chunk of big messages is cut short
)

// storeFactorMaildir is how much longer a copy into a Maildir takes than
// reading the same messages, when the Maildir's file system could not be
// probed (probeMaildirStore).
const storeFactorMaildir = 3.0

// An IMAP target cannot be measured without storing into it, which plan
// does not do. What storing costs it is taken from runs of
// cmd/mailferry-bench against Dovecot on this project's 2-core machine
// (BENCHMARKS.md), with MULTIAPPEND commands of up to 128 messages
// (target/imap): 1.3 KB messages, 4 workers, 5,000, 200,000 and
// 1,000,000 messages in 1.8 s, 55.5 s and 259 s: about 250 us per message
// over all the workers, plus 2 ns per byte for bigger messages.
// startupSec is what any run costs (connections, folders, the journal):
// a no-op re-run of 5,000 messages takes 0.06-0.12 s. A run reads and
// stores at once, but both share the machine: the copy takes the longer
// of the two plus a quarter of the shorter. storeSpread is how sure this
// is; a faster or slower server than that Dovecot is outside it.
const (
	imapStorePerMsg  = 250 * time.Microsecond
	imapStorePerByte = 2 * time.Nanosecond
	storeSpread      = 0.3
	startupSec       = 0.3
)

// A folder is stored by one session at a time (one worker per folder on an
// IMAP target), and on Dovecot a message costs more the more the folder
// holds (its Maildir walks the folder's uidlist at each save transaction).
// The k-th message into a folder is modelled as costing imapFolderPerMsg
// + k × imapFolderGrowth seconds, so a folder of L messages takes at least
// L × imapFolderPerMsg + imapFolderGrowth × L²/2. Fitted on two chains
// measured with commands of 128 messages: 150,000 messages into a new
// folder by one session alone in 52-53 s (twice), and the 400,000-message
// INBOX of the 1,000,000-message benchmark copy in about 255 s, beside
// three other workers for its first half: 0.177 ms and 2.3 ns. (With
// commands of 32 messages the same copy took 432-1,031 s over six runs,
// and the fit was 0.4 ms and 8 ns.)
const (
	imapFolderPerMsg = 177 * time.Microsecond
	imapFolderGrowth = 2.3e-9 // seconds per message already in the folder
)

// imapStoreModel is the store side of an IMAP target: perMsg and perByte
// over all the workers; a folder's chain (one session) folderPerMsg +
// k × growth for its k-th message, plus perByte.
type imapStoreModel struct {
	perMsg, perByte, folderPerMsg, growth float64
	probed                                bool
}

// defaultIMAPStore is the model from the benchmark's Dovecot (above).
var defaultIMAPStore = imapStoreModel{
	perMsg: imapStorePerMsg.Seconds(), perByte: imapStorePerByte.Seconds(),
	folderPerMsg: imapFolderPerMsg.Seconds(), growth: imapFolderGrowth,
}

// With plan --probe-target the store side is measured (probeIMAPStore):
// the probe's messages have the mean size of those to copy, so its cost
// per message holds the bytes. A run costs more per message than the
// probe: its folders and the server's indexes grow, the source is read
// beside it and the journal written: the workers' store time is the
// probe's, all sessions together, times imapOverhead (which grows with
// the run as a Maildir's does). A folder's chain is imapProbeOne times
// the probe's one session per message, plus imapFolderGrowth per message
// already in the folder: a probe into an empty folder cannot see that
// growth (Dovecot's uidlist walk), and it did not follow the probe: three
// 1,000,000-message copies took 258-282 s while the probe's one session
// went from 0.22 to 0.31 ms per message. imapProbeOne is fitted on those
// three (the probe waits for each round of 128 before the next; the run
// keeps its pipeline full). imapProbeSpread is how sure it is.
const (
	imapProbeOne    = 0.68
	imapProbeSpread = 0.25
)

// probedIMAPStore is the model from a probe, for a run of n messages
// with p sessions storing at once (fewer than the probe's when fewer
// folders have work: the rate in between is interpolated, as the read
// sample's).
func probedIMAPStore(s *imapStoreSample, n, p int) imapStoreModel {
	all, one := s.perMsg()
	fp := imapProbeOne * one
	if p < s.Sessions && s.Sessions > 1 {
		f := float64(max(p, 1)-1) / float64(s.Sessions-1)
		all = 1 / (1/one + f*(1/all-1/one))
	}
	return imapStoreModel{perMsg: imapOverhead.at(n) * all, folderPerMsg: fp, growth: imapFolderGrowth, probed: true}
}

// total is how long the workers take to store n messages of b bytes.
func (m imapStoreModel) total(n int, b int64) float64 {
	return float64(n)*m.perMsg + float64(b)*m.perByte
}

// chain is how long one session takes to store a folder of msgs messages
// and bytes bytes (see imapFolderGrowth).
func (m imapStoreModel) chain(msgs int, bytes int64) float64 {
	k := float64(msgs)
	return k*m.folderPerMsg + m.growth*k*k/2 + float64(bytes)*m.perByte
}

// On a machine where the copy is bound by CPU (the benchmark's 2 cores run
// the server, mailferry and the file system's work), reading and storing
// do not overlap: each takes the machine's time, so a run into a Maildir
// takes the read sample's time plus the store probe's, times an overhead
// for what neither sample does (maildirOverhead). The probe stores a
// moment into small scratch directories; a big run also pays for
// directories of hundreds of thousands of files, a journal of as many
// records and the collector, a small one hardly: the overhead grows with
// the run, from small at 5,000 messages to large from 200,000 on
// (log-linear between). A run into IMAP costs more than the store probe
// of plan --probe-target the same way (imapOverhead, probedIMAPStore).
// Fitted on cmd/mailferry-bench runs (BENCHMARKS.md, eighth round):
// Maildir at 5,000 messages 0.78-1.05 times read + store in five runs; at
// 200,000 and 1,000,000, 1.11-1.32 in the last three rounds (1.45, fitted
// on older rounds, overestimated all six by 10-31 %). IMAP at 5,000,
// 1.01-1.26 times the probe in four runs alternated with plans without a
// probe (and 1.85 once); at 200,000, 1.30-1.47 in three. Measured, not
// derived. maildirSpread is how sure that is.
const (
	smallRun, largeRun = 5000, 200000
	maildirSpread      = 0.25
)

var (
	maildirOverhead = runOverhead{small: 0.9, large: 1.23}
	imapOverhead    = runOverhead{small: 1.2, large: 1.39}
)

// runOverhead is how much longer a run takes than its samples say: small
// at smallRun messages and below, large from largeRun on.
type runOverhead struct{ small, large float64 }

// at is the overhead of a run of n messages.
func (o runOverhead) at(n int) float64 {
	f := math.Log(float64(max(n, 1))/smallRun) / math.Log(float64(largeRun)/smallRun)
	f = min(max(f, 0), 1)
	return o.small + f*(o.large-o.small)
}

// defaultRate is the per-connection rate assumed when no sample could be
// measured: 2 MB/s and 50 messages/s.
const (
	defaultBytesPerSec = 2e6
	defaultMsgsPerSec  = 50
)

// readSample is what the sample measured.
type readSample struct {
	Sessions int // read together in the second part
	Folders  int
	// One session alone.
	OneMsgs  int
	OneBytes int64
	OneTime  time.Duration
	// All the sessions together.
	Msgs  int
	Bytes int64
	Time  time.Duration
	// Per chunk: messages per second, for the spread.
	chunkRates []float64
}

func (s *readSample) ok() bool { return s != nil && s.Msgs > 0 && s.Time > 0 }

// rate is the aggregate messages and bytes per second of p sessions:
// measured for one and for Sessions, in between interpolated, beyond that
// no faster.
func (s *readSample) rate(p int) (msgs, bytes float64) {
	allM, allB := float64(s.Msgs)/s.Time.Seconds(), float64(s.Bytes)/s.Time.Seconds()
	if s.OneTime <= 0 || s.OneMsgs == 0 || s.Sessions <= 1 {
		return allM, allB
	}
	// One session alone is at least as fast as its share of all of them
	// (a short first phase on a busy machine can say less).
	oneM := max(float64(s.OneMsgs)/s.OneTime.Seconds(), allM/float64(s.Sessions))
	oneB := max(float64(s.OneBytes)/s.OneTime.Seconds(), allB/float64(s.Sessions))
	if p <= 1 {
		return oneM, oneB
	}
	if p >= s.Sessions {
		return allM, allB
	}
	f := float64(p-1) / float64(s.Sessions-1)
	return oneM + f*(allM-oneM), oneB + f*(allB-oneB)
}

// folderWork is what one folder has to copy.
type folderWork struct {
	Msgs  int
	Bytes int64
}

// estimateInput is the run to estimate.
type estimateInput struct {
	Folders      []folderWork
	Workers      int
	IMAPTarget   bool // one worker per folder at a time (see migrate's dispatcher)
	MaxRate      float64
	MaxBandwidth int64
	Listing      time.Duration // the listing (and the target's inventory), which the run does while it copies
	// Store is what storing into a scratch Maildir on the target's file
	// system measured (a Maildir target; nil otherwise).
	Store *storeSample
	// IMAPStore is what storing into scratch folders of an IMAP target
	// measured (plan --probe-target; nil otherwise).
	IMAPStore *imapStoreSample
}

func (in estimateInput) totals() (msgs int, bytes int64) {
	for _, f := range in.Folders {
		msgs += f.Msgs
		bytes += f.Bytes
	}
	return msgs, bytes
}

// runEstimate is the estimate: Mid, and Low–High the range it is likely in.
type runEstimate struct {
	Mid, Low, High time.Duration
	// LimitedBy is "--max-rate" or "--max-bandwidth" when that limit, not
	// the servers, sets the time; Floor is the time the limit alone takes.
	LimitedBy string
	Floor     time.Duration
}

// readTime is how long p sessions take to read n messages of b bytes:
// the mean of what the message rate and the byte rate say (the sample's
// messages may be smaller or larger than those to copy; the cost is part
// per message, part per byte), and how far apart the two are (relative).
func readTime(s *readSample, n int, b int64, p int) (t float64, disagree float64) {
	rm, rb := s.rate(p)
	var byMsgs, byBytes float64
	if rm > 0 {
		byMsgs = float64(n) / rm
	}
	if rb > 0 {
		byBytes = float64(b) / rb
	}
	t = (byMsgs + byBytes) / 2
	if t > 0 {
		disagree = math.Abs(byMsgs-byBytes) / 2 / t
	}
	return t, disagree
}

// estimateRun turns a sample into the time of the run. The copy reads
// with min(workers, batches) sessions; on an IMAP target a folder has one
// worker at a time, so the run takes at least as long as its largest
// folder at one worker's rate, and no more sessions than folders with work
// run at once. The store side multiplies (storeFactor). --max-rate and
// --max-bandwidth set a floor: the run cannot be faster than they let it.
func estimateRun(in estimateInput, s *readSample) runEstimate {
	n, b := in.totals()
	var est runEstimate
	if n == 0 {
		est.Mid, est.Low, est.High = in.Listing, in.Listing, in.Listing
		return est
	}
	w := max(in.Workers, 1)
	var copySec, disagree float64
	uStat := 0.1
	if s.ok() {
		busy := busyFolders(in.Folders)
		p := w
		if in.IMAPTarget {
			p = min(w, busy)
		}
		copySec, disagree = readTime(s, n, b, p)
		if in.IMAPTarget {
			for _, f := range in.Folders {
				if t, d := readTime(s, f.Msgs, f.Bytes, 1); t > copySec {
					copySec, disagree = t, d
				}
			}
		}
		uStat = chunkSpread(s.chunkRates)
	} else {
		byBytes := float64(b) / defaultBytesPerSec
		byMsgs := float64(n) / defaultMsgsPerSec
		copySec = max(byBytes, byMsgs) / float64(w)
		disagree = 0.5 // a guess, not a measurement
	}
	spread := storeSpread
	switch {
	case in.IMAPTarget:
		m, p := defaultIMAPStore, min(w, busyFolders(in.Folders)) // sessions storing at once
		if in.IMAPStore.ok() {
			m, spread = probedIMAPStore(in.IMAPStore, n, p), imapProbeSpread
		}
		storeSec := m.total(n, b)
		if p == 1 && !m.probed {
			storeSec *= 1.6 // one worker stores with one session, on one core
		}
		for _, f := range in.Folders {
			storeSec = max(storeSec, m.chain(f.Msgs, f.Bytes))
		}
		copySec = max(copySec, storeSec) + min(copySec, storeSec)/4
	case in.Store.ok() && s.ok():
		// Measured both: a worker reads and stores each message, the
		// workers share the machine.
		st := in.Store.Time.Seconds()
		storeSec := (float64(n)/(float64(in.Store.Msgs)/st) + float64(b)/(float64(in.Store.Bytes)/st)) / 2
		// Reading and storing share the machine (see runOverheadAt).
		copySec = (copySec + storeSec) * maildirOverhead.at(n)
		spread = maildirSpread
	default:
		copySec *= storeFactorMaildir
	}
	u := math.Sqrt(disagree*disagree + uStat*uStat + spread*spread)
	low, high := copySec/(1+u), copySec*(1+u)
	// Connections, folders and the journal cost a run a fraction of a
	// second whatever its size (see startupSec).
	copySec, low, high = copySec+startupSec, low+startupSec, high+startupSec

	var floor float64
	if in.MaxRate > 0 {
		if f := float64(n) / in.MaxRate; f > floor {
			floor, est.LimitedBy = f, "--max-rate"
		}
	}
	if in.MaxBandwidth > 0 {
		if f := float64(b) / float64(in.MaxBandwidth); f > floor {
			floor, est.LimitedBy = f, "--max-bandwidth"
		}
	}
	if floor > 0 {
		est.Floor = secs(floor)
		if floor < copySec {
			est.LimitedBy = "" // the servers are slower than the limit
		}
		copySec, low, high = max(copySec, floor), max(low, floor), max(high, floor)
	}
	// The run lists while it copies (the plan streams, migrate/plan.go):
	// the listing overlaps the copy, as reading and storing do.
	lst := in.Listing.Seconds()
	overlap := func(c float64) time.Duration { return secs(max(c, lst) + min(c, lst)/4) }
	est.Mid, est.Low, est.High = overlap(copySec), overlap(low), overlap(high)
	return est
}

// busyFolders counts the folders with messages to copy.
func busyFolders(fs []folderWork) int {
	n := 0
	for _, f := range fs {
		if f.Msgs > 0 {
			n++
		}
	}
	return n
}

// chunkSpread is the relative standard error of the mean chunk rate (a
// few chunks say little; many agreeing ones, much), at least 5 %.
func chunkSpread(rates []float64) float64 {
	if len(rates) < 2 {
		return 0.3
	}
	var sum, sq float64
	for _, r := range rates {
		sum += r
	}
	mean := sum / float64(len(rates))
	for _, r := range rates {
		sq += (r - mean) * (r - mean)
	}
	if mean <= 0 {
		return 0.3
	}
	se := math.Sqrt(sq/float64(len(rates)-1)) / math.Sqrt(float64(len(rates))) / mean
	return min(max(se, 0.05), 0.5)
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// sampleChunkRef is one chunk of the sample: consecutive messages of one
// folder; key orders the chunks of the sample so that one cut short by
// the budget still covers the folders in proportion.
type sampleChunkRef struct {
	folder source.Folder
	ids    []string
	key    float64
}

// sampleFolder is a folder of the sample: its warm-up chunk and its
// chunks, taken in order by whichever session reads the folder.
type sampleFolder struct {
	warm   sampleChunkRef
	chunks []sampleChunkRef
	next   int
}

// sampleChunkSize is the run's batch size (migrate.BatchSizeFor): a batch
// costs an EXAMINE and a SEARCH beside its FETCH.
func sampleChunkSize(toCopy, workers int) int {
	return migrate.BatchSizeFor(toCopy, workers)
}

// planSample picks the chunks: the folders with the most to copy (at most
// sampleMaxFolders); from each, chunks evenly spaced through the folder,
// as many as its share of what is to copy. A source that lists in pages
// (source.Pager) is not listed whole, which at 400,000 messages in a
// folder cost more memory than the copy itself: pagedChunks reads a page
// at each chunk. Other sources (local, or POP3) are listed with List.
func planSample(ctx context.Context, s source.Source, sum *migrate.Summary, workers int) ([]*sampleFolder, error) {
	folders, err := s.Folders(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]source.Folder{}
	for _, f := range folders {
		byName[f.Name] = f
	}
	type cand struct {
		f      source.Folder
		toCopy int
	}
	var cands []cand
	total := 0
	for _, fs := range sum.Folders {
		if f, ok := byName[fs.Source]; ok && fs.Skipped == "" && fs.ToCopy > 0 {
			cands = append(cands, cand{f, fs.ToCopy})
			total += fs.ToCopy
		}
	}
	size := sampleChunkSize(total, workers)
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].toCopy > cands[j].toCopy })
	cands = cands[:min(len(cands), sampleMaxFolders)]
	pg, paged := s.(source.Pager)
	paged = paged && s.Features().Pages
	var out []*sampleFolder
	for _, c := range cands {
		// want is the folder's share of the sample's chunks.
		want := max(1, int(math.Round(float64(sampleMaxMsgs/size)*float64(c.toCopy)/float64(max(total, 1)))))
		var sf *sampleFolder
		if paged {
			sf, err = pagedChunks(ctx, pg, c.f, max(c.f.Messages, c.toCopy), want, size)
		} else {
			var metas []source.Meta
			if metas, err = s.List(ctx, c.f); err == nil {
				sf = listedChunks(c.f, metas, want, size)
			}
		}
		if err != nil || sf == nil {
			continue
		}
		out = append(out, sf)
	}
	return out, nil
}

// listedChunks is the sample of a folder listed whole: its first
// messages to warm up, then k chunks of size consecutive messages, the
// middle of each of k equal parts of the rest (fewer if the folder is
// small; one chunk of what there is if it is smaller than size).
func listedChunks(f source.Folder, metas []source.Meta, k, size int) *sampleFolder {
	if len(metas) == 0 {
		return nil
	}
	w := min(warmMsgs, len(metas))
	sf := &sampleFolder{warm: sampleChunkRef{folder: f, ids: ids(metas[:w])}}
	rest := metas[w:]
	k = min(k, len(rest)/size)
	for i := 0; i < k; i++ {
		at := min((2*i+1)*len(rest)/(2*k), len(rest)-size)
		sf.chunks = append(sf.chunks, sampleChunkRef{folder: f, ids: ids(rest[at : at+size]), key: (float64(i) + 0.5) / float64(k)})
	}
	if k == 0 && len(rest) > 0 {
		sf.chunks = append(sf.chunks, sampleChunkRef{folder: f, ids: ids(rest), key: 0.5})
	}
	return sf
}

// pagedChunks is listedChunks for a Pager, in memory bounded by the
// sample (a page of about size messages at a time), not by the folder.
// n is how many messages the folder holds (its STATUS count).
//
// The first page gives the warm-up and the folder's first UID. IMAP's
// cursors are UIDs (ListPage lists from that UID on), so each chunk is
// the page at a UID: the middle of each of k equal parts of the UIDs from
// after the warm-up to the last one (lastUID). With gaps in the UIDs the
// parts are equal in UIDs, not in messages, which a sample can live with:
// deletions spread over the folder change little; after a long run of
// deleted UIDs the chunks that fell into it come from the messages just
// after it (chunks never overlap).
// A Pager whose cursors are not numbers is read page by page to the last
// chunk, keeping only the chunks' messages (slower, as bounded).
func pagedChunks(ctx context.Context, pg source.Pager, f source.Folder, n, k, size int) (*sampleFolder, error) {
	first, next, err := pg.ListPage(ctx, f, "", warmMsgs+size)
	if err != nil || len(first) == 0 {
		return nil, err
	}
	if next == "" { // the whole folder
		return listedChunks(f, first, k, size), nil
	}
	w := min(warmMsgs, len(first))
	sf := &sampleFolder{warm: sampleChunkRef{folder: f, ids: ids(first[:w])}}
	n = max(n, len(first))
	k = max(1, min(k, (n-w)/size))
	lo, ok1 := uidOf(first[0].ID)
	from, ok2 := uidOf(next)
	if len(first) > w {
		from, ok2 = uidOf(first[w].ID)
	}
	if !ok1 || !ok2 {
		return walkChunks(ctx, pg, f, sf, first[w:], next, n-w, k, size)
	}
	hi, err := lastUID(ctx, pg, f, lo, n, size)
	if err != nil {
		return nil, err
	}
	if hi < from {
		return sf, nil
	}
	span := hi - from + 1
	after := from // the UID after the chunk before: chunks do not overlap
	for i := 0; i < k; i++ {
		at := from + uint64(2*i+1)*span/uint64(2*k)
		at = max(min(at, hi+1-min(uint64(size), hi+1)), after)
		if at > hi {
			break
		}
		metas, _, err := pg.ListPage(ctx, f, strconv.FormatUint(at, 10), size)
		if err != nil {
			return nil, err
		}
		metas = metas[:min(len(metas), size)]
		if len(metas) == 0 {
			continue
		}
		c := sampleChunkRef{folder: f, ids: ids(metas), key: (float64(i) + 0.5) / float64(k)}
		if u, ok := uidOf(c.ids[len(c.ids)-1]); ok {
			after = u + 1
		}
		sf.chunks = append(sf.chunks, c)
	}
	return sf, nil
}

// lastUID finds the last UID of a folder whose first is lo and which
// holds n messages, with pages of size: where it is if the UIDs have no
// gaps (one page, the usual case), else doubling the distance from lo
// until a page is past the end, then halving back. A page that ends the
// folder (next cursor "") with messages in it has the last one.
func lastUID(ctx context.Context, pg source.Pager, f source.Folder, lo uint64, n, size int) (uint64, error) {
	const top = 1<<32 - 1
	below, above := lo, uint64(0) // below: a UID in the folder; above: a cursor past its end (0: none yet)
	x := lo + uint64(max(n-size, 0))
	for range 80 {
		metas, next, err := pg.ListPage(ctx, f, strconv.FormatUint(x, 10), size)
		if err != nil {
			return 0, err
		}
		last, ok := uint64(0), len(metas) > 0
		if ok {
			last, ok = uidOf(metas[len(metas)-1].ID)
		}
		switch {
		case ok && next == "":
			return last, nil
		case ok:
			below = max(below, last)
		case next == "":
			above = x
		default:
			below = max(below, x)
		}
		if above == 0 {
			x = min(below+(below-lo)+uint64(size), top)
			if x == top {
				above = top
			}
		}
		if above != 0 {
			if above-below <= 1 {
				return below, nil
			}
			x = below + (above-below)/2
			if x == below {
				x++
			}
		}
	}
	return below, nil
}

// walkChunks is pagedChunks for cursors that are not UIDs: it reads the
// folder's pages in turn (the first, rest, is read), keeping only the
// messages of the k chunks, placed as listedChunks places them in the
// n messages after the warm-up, and stops after the last chunk.
func walkChunks(ctx context.Context, pg source.Pager, f source.Folder, sf *sampleFolder, rest []source.Meta, next string, n, k, size int) (*sampleFolder, error) {
	at := func(i int) int { return min((2*i+1)*n/(2*k), n-size) }
	var cur []source.Meta
	pos, i := 0, 0
	for {
		for _, m := range rest {
			if i < k && pos >= at(i) {
				cur = append(cur, m)
				if len(cur) == size {
					sf.chunks = append(sf.chunks, sampleChunkRef{folder: f, ids: ids(cur), key: (float64(i) + 0.5) / float64(k)})
					cur, i = nil, i+1
				}
			}
			pos++
		}
		if i >= k || next == "" {
			break
		}
		var err error
		if rest, next, err = pg.ListPage(ctx, f, next, max(size, 1000)); err != nil {
			return nil, err
		}
	}
	if len(cur) > 0 {
		sf.chunks = append(sf.chunks, sampleChunkRef{folder: f, ids: ids(cur), key: (float64(i) + 0.5) / float64(k)})
	}
	return sf, nil
}

// uidOf reads an IMAP UID (a message ID or a cursor).
func uidOf(s string) (uint64, bool) {
	u, err := strconv.ParseUint(s, 10, 32)
	return u, err == nil && u > 0
}

// ids are the IDs of metas, cut after sampleChunkBytes (at least one).
func ids(metas []source.Meta) []string {
	var out []string
	var b int64
	for _, m := range metas {
		if len(out) > 0 && b+m.Size > sampleChunkBytes {
			break
		}
		out = append(out, m.ID)
		b += m.Size
	}
	return out
}

// fetchChunk reads a chunk, returning its messages and bytes.
func fetchChunk(ctx context.Context, s source.Source, c sampleChunkRef) (int, int64, error) {
	var n int
	var b int64
	err := s.Fetch(ctx, c.folder, c.ids, func(_ source.Meta, r io.Reader) error {
		k, err := io.Copy(io.Discard, r)
		n++
		b += k
		return err
	})
	return n, b, err
}

// samplePicker hands the sessions of sampleSource their chunks. A session
// stays on its folder while the folder has chunks and then moves to the
// one of its folders whose next chunk comes first in the sample's order,
// as the run's workers keep to a folder while it has batches (migrate's
// dispatcher): each move costs the IMAP source an EXAMINE, up to 0.4 s on
// Dovecot for a folder of 400,000 messages, which a sample that
// alternated folders at every chunk counted against the read rate (347
// messages/s per connection where the copy read 900). limit is the share
// of a session's chunks (of all its folders, not of each: a folder left
// is not come back to) that may be read, for the first session's part
// alone. A session so moves at most (its folders - 1) times.
type samplePicker struct {
	mu    sync.Mutex
	mine  [][]*sampleFolder // session i's folders
	cur   []*sampleFolder   // the folder session i is on (nil: none)
	limit float64
}

// newSamplePicker starts session i on its first folder (the last it
// warmed up), with no limit.
func newSamplePicker(mine [][]*sampleFolder) *samplePicker {
	p := &samplePicker{mine: mine, cur: make([]*sampleFolder, len(mine)), limit: 1}
	for i, fs := range mine {
		if len(fs) > 0 {
			p.cur[i] = fs[0]
		}
	}
	return p
}

func (p *samplePicker) setLimit(l float64) {
	p.mu.Lock()
	p.limit = l
	p.mu.Unlock()
}

// take is session i's next chunk; false when its folders have none left
// within the limit.
func (p *samplePicker) take(i int) (sampleChunkRef, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	read, all := 0, 0
	for _, f := range p.mine[i] {
		read, all = read+f.next, all+len(f.chunks)
	}
	if float64(read) >= p.limit*float64(all) {
		return sampleChunkRef{}, false
	}
	best := p.cur[i]
	if best == nil || best.next >= len(best.chunks) {
		best = nil
		for _, f := range p.mine[i] {
			if f.next < len(f.chunks) && (best == nil || f.chunks[f.next].key < best.chunks[best.next].key) {
				best = f
			}
		}
	}
	if best == nil {
		return sampleChunkRef{}, false
	}
	p.cur[i] = best
	best.next++
	return best.chunks[best.next-1], true
}

// sampleSource measures reading the source with up to workers sessions
// (see sampleBudget). Each session keeps to its own folders, as the run's
// workers mostly do (on an IMAP target, one worker per folder): a session's
// first look at a big folder (the server loads its index) is paid once in
// a run but would weigh on a sample of a few seconds, so every session
// reads the start of each of its folders before the timing starts. first
// is an open session (it is used, not closed); the others are opened here
// and closed. A source that refuses a second session is measured with
// those it gave.
func sampleSource(ctx context.Context, first source.Source, open source.Opener, sum *migrate.Summary, workers int) (*readSample, error) {
	folders, err := planSample(ctx, first, sum, workers)
	if err != nil || len(folders) == 0 {
		return nil, err
	}
	nChunks := 0
	for _, f := range folders {
		nChunks += len(f.chunks)
	}
	sessions := []source.Source{first}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 1; i < min(workers, nChunks); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := open(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			sessions = append(sessions, s)
			mu.Unlock()
		}()
	}
	wg.Wait()
	defer func() {
		for _, s := range sessions[1:] {
			s.Close()
		}
	}()
	// mine[i] are the folders session i reads: folder j goes to session
	// j mod sessions (and with fewer folders than sessions, session i
	// reads folder i mod folders).
	mine := make([][]*sampleFolder, len(sessions))
	for j, f := range folders {
		mine[j%len(sessions)] = append(mine[j%len(sessions)], f)
	}
	for i := range mine {
		if len(mine[i]) == 0 {
			mine[i] = []*sampleFolder{folders[i%len(folders)]}
		}
	}
	// Warm-up, untimed, the session's first folder last: it stays
	// selected for the timed part.
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := len(mine[i]) - 1; j >= 0; j-- {
				fetchChunk(ctx, s, mine[i][j].warm)
			}
		}()
	}
	wg.Wait()

	rs := &readSample{Sessions: len(sessions), Folders: len(folders)}
	pick := newSamplePicker(mine)
	take := pick.take
	// read has the sessions read chunks until the budget is spent; it
	// returns the messages, bytes and the time until the last session
	// finished.
	read := func(ss []source.Source, budget time.Duration) (int, int64, time.Duration, error) {
		start := time.Now()
		deadline := start.Add(budget)
		var n int
		var b int64
		var firstErr error
		for i, s := range ss {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) && ctx.Err() == nil {
					c, ok := take(i)
					if !ok {
						return
					}
					t0 := time.Now()
					cn, cb, err := fetchChunk(ctx, s, c)
					d := time.Since(t0)
					mu.Lock()
					n, b = n+cn, b+cb
					if err != nil && firstErr == nil {
						firstErr = err
					}
					if err == nil && d > 0 {
						rs.chunkRates = append(rs.chunkRates, float64(cn)/d.Seconds())
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
		wg.Wait()
		return n, b, time.Since(start), firstErr
	}
	budget := sampleBudget
	if len(sessions) > 1 {
		pick.setLimit(1.0 / 3) // leave the rest to all the sessions
		n, b, d, err := read(sessions[:1], budget/3)
		if err != nil {
			return nil, err
		}
		pick.setLimit(1)
		rs.OneMsgs, rs.OneBytes, rs.OneTime = n, b, d
		budget -= budget / 3
	}
	n, b, d, err := read(sessions, budget)
	if err != nil {
		return nil, err
	}
	rs.Msgs, rs.Bytes, rs.Time = n, b, d
	if len(sessions) == 1 || n == 0 {
		// One session, or the first one read the whole sample alone.
		rs.Sessions = 1
		if n == 0 {
			rs.Msgs, rs.Bytes, rs.Time = rs.OneMsgs, rs.OneBytes, rs.OneTime
		}
		rs.OneMsgs, rs.OneBytes, rs.OneTime = rs.Msgs, rs.Bytes, rs.Time
	}
	if !rs.ok() {
		return nil, nil
	}
	return rs, nil
}

// storeSample is what storing into a scratch Maildir measured.
type storeSample struct {
	Sessions int
	Msgs     int
	Bytes    int64
	Time     time.Duration
}

func (s *storeSample) ok() bool { return s != nil && s.Msgs > 0 && s.Time > 0 }

// probeShare: the store probes (a Maildir target's, probeMaildirStore,
// and an IMAP target's, probeIMAPStore) store at most 1/probeShare of the
// messages to copy, or their minimum (maildirProbeMin files,
// imapProbeMinRounds batches). Deleting the scratch messages costs the
// file system or the server work that lands on the copy after the plan:
// a 5,000-message copy into Dovecot right after a probe of 9,000
// messages took 2.6-3.0 s, against 1.0-1.4 s after a plan without one.
const probeShare = 8

// storeBudget is how long probeMaildirStore stores, at most
// 1/probeShare of the messages to copy or maildirProbeMin.
var (
	storeBudget     = 1500 * time.Millisecond
	maildirProbeMin = 1024
)

// probeMaildirStore measures what a Maildir target costs, which a read
// sample cannot tell (the file system's fsyncs are most of it): workers
// sessions store messages of size bytes the way the run does (Sends with
// their fsyncs in flight, then their waits) into a scratch Maildir made beside
// root, on the same file system, for about storeBudget; the scratch
// Maildir is removed. Nothing is written into root.
func probeMaildirStore(ctx context.Context, root string, workers, toCopy int, size int64) (*storeSample, error) {
	parent := filepath.Dir(filepath.Clean(root))
	for {
		if fi, err := os.Stat(parent); err == nil && fi.IsDir() {
			break
		}
		up := filepath.Dir(parent)
		if up == parent {
			return nil, fmt.Errorf("no directory to probe the Maildir target's file system in")
		}
		parent = up
	}
	dir, err := os.MkdirTemp(parent, ".mailferry-plan-probe-")
	if err != nil {
		return nil, fmt.Errorf("probe the Maildir target's file system: %w", err)
	}
	defer os.RemoveAll(dir)
	size = min(max(size, 200), 4<<20)
	// Deleting the scratch files costs the file system work that lands on
	// the copy after the plan (see probeShare): a share of the run.
	most := max(toCopy/probeShare, maildirProbeMin)
	body := probeBody(size)
	var mu sync.Mutex
	var g errgroup.Group
	ss := &storeSample{}
	for i := 0; i < max(workers, 1); i++ {
		g.Go(func() error {
			// One folder per worker, as the engine spreads its workers
			// over folders: one directory shared by all of them measured
			// half the rate the copy then had.
			n, d, err := storeFor(ctx, filepath.Join(dir, fmt.Sprintf("Maildir-%d", i)), body, storeBudget, most/max(workers, 1))
			mu.Lock()
			defer mu.Unlock()
			ss.Sessions++
			ss.Msgs += n
			ss.Bytes += int64(n) * size
			ss.Time = max(ss.Time, d)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return ss, nil
}

// storeFor is one session of probeMaildirStore: a round of Sends (as
// many as the target keeps in flight) and their waits, untimed, then
// timed rounds for budget (at least one). It returns the messages stored
// in the timed rounds and their time.
func storeFor(ctx context.Context, root string, body []byte, budget time.Duration, limit int) (int, time.Duration, error) {
	t, err := maildirtgt.Open(ctx, root, maildirtgt.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, 0, err
	}
	defer t.Close()
	depth := t.Features().Pipeline
	if _, err := storeRound(ctx, t, "INBOX", body, depth); err != nil {
		return 0, 0, err
	}
	n, start := 0, time.Now()
	for n == 0 || time.Since(start) < budget && ctx.Err() == nil && n < limit {
		k, err := storeRound(ctx, t, "INBOX", body, depth)
		n += k
		if err != nil {
			return n, time.Since(start), err
		}
	}
	return n, time.Since(start), nil
}
