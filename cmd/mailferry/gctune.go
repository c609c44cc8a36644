package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Go's collector lets the heap grow to twice what survived the last cycle
// (GOGC=100), and returns freed memory to the system lazily below the
// soft limit (the budget, 256M by default). Past a few hundred thousand
// messages most of what survives is the journal's index (about 8 bytes an
// IMAP message, in pointer-free pages the collector does not scan), so
// doubling it costs memory and buys nothing: a cycle's work is the
// pointers it scans, which do not grow with the index. After every cycle
// (a finalizer re-armed each time, the usual way to hear of GC cycles) the
// tuner puts the heap goal at what survived plus gcHeadroom (or plus the
// scannable heap when that is larger: see gcPercent) once that is
// less than doubling (GOGC = 100 × headroom / live, at least
// gcMinPercent; 100 below that, so small runs are as before), and the soft
// limit gcSlack above that goal (at least gcMinLimit, at most the budget),
// so that the runtime gives back what it freed; the slack covers what the
// limit counts beside the heap (stacks, the runtime's own structures:
// about 8 MB here), so the limit does not cut into the headroom. The
// limit follows the live heap up after each cycle, so it never holds the
// heap below what it needs. A 6 MB headroom means a cycle every few
// thousand messages, at about 1 % of the CPU (measured at 200,000: 728
// cycles in 66 s, GC CPU 1 %). Not when GOGC or GOMEMLIMIT is set in the environment.
const (
	gcHeadroom   = 6 << 20
	gcMinPercent = 20
	gcSlack      = 8 << 20
	gcMinLimit   = 24 << 20
)

var gcTunerOnce sync.Once

func startGCTuner() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	gcTunerOnce.Do(func() {
		t := &gcTuner{percent: 100, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/heap:bytes"}}}
		t.arm()
	})
}

type gcTuner struct {
	percent int
	limit   int64
	sample  []metrics.Sample
}

type gcSentinel struct{ t *gcTuner }

func (t *gcTuner) arm() {
	s := &gcSentinel{t: t}
	runtime.SetFinalizer(s, func(s *gcSentinel) {
		s.t.tune()
		s.t.arm()
	})
}

// tune sets GOGC and the soft limit for the live heap of the cycle that
// just ended.
func (t *gcTuner) tune() {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	live := t.sample[0].Value.Uint64()
	var scan uint64
	if t.sample[1].Value.Kind() == metrics.KindUint64 {
		scan = t.sample[1].Value.Uint64()
	}
	p := gcPercent(live, scan)
	// A change of a few percent is not worth a stop of the world.
	if p != t.percent && (p*10 < t.percent*9 || p*10 > t.percent*11 || p == 100) {
		t.percent = p
		debug.SetGCPercent(p)
	}
	if l := gcLimit(live, t.percent, memoryBudget.Load()); l != t.limit {
		t.limit = l
		debug.SetMemoryLimit(l)
	}
}

// gcPercent is the GOGC that puts the heap goal at live + gcHeadroom, or
// live + scan when more of the heap than that holds pointers (scan: the
// scannable heap), within gcMinPercent and 100. A cycle's work is the
// pointers it scans: with a small headroom over a heap full of them (a
// Maildir source lists a folder whole: 100,000 files, 40 MB of metadata)
// the collector took a quarter of the CPU of a Maildir-to-Maildir copy; a
// headroom as large as the scannable heap keeps that at GOGC=100's cost.
func gcPercent(live, scan uint64) int {
	if live == 0 {
		return 100
	}
	room := max(uint64(gcHeadroom), scan)
	return int(min(max(100*room/live, gcMinPercent), 100))
}

// gcLimit is the soft limit for a live heap and GOGC: gcSlack above the
// heap goal, rounded up to a MiB, within gcMinLimit and budget (0: no
// budget).
func gcLimit(live uint64, percent int, budget int64) int64 {
	goal := int64(live + live*uint64(percent)/100)
	l := max((goal+gcSlack+1<<20-1)&^(1<<20-1), gcMinLimit)
	if budget > 0 {
		l = min(l, budget)
	}
	return l
}
