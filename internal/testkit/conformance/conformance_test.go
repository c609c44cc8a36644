package conformance

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	"github.com/mailferry/mailferry/target"
	imaptgt "github.com/mailferry/mailferry/target/imap"
)

// probe is a testing.TB that records failures instead of failing the test
// it runs in, so that a check can be run against a broken driver.
type probe struct {
	testing.TB // the real test: TempDir, Cleanup, Logf
	mu         sync.Mutex
	failed     bool
	skipped    bool
	msgs       []string
}

func (p *probe) Helper() {}

func (p *probe) Errorf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed = true
	p.msgs = append(p.msgs, fmt.Sprintf(format, args...))
}

func (p *probe) Error(args ...any)                 { p.Errorf("%s", fmt.Sprint(args...)) }
func (p *probe) Fatalf(format string, args ...any) { p.Errorf(format, args...); runtime.Goexit() }
func (p *probe) Fatal(args ...any)                 { p.Error(args...); runtime.Goexit() }
func (p *probe) Fail()                             { p.Errorf("Fail") }
func (p *probe) FailNow()                          { p.Fail(); runtime.Goexit() }
func (p *probe) Failed() bool                      { p.mu.Lock(); defer p.mu.Unlock(); return p.failed }
func (p *probe) Skip(args ...any)                  { p.skipped = true; runtime.Goexit() }
func (p *probe) Skipf(string, ...any)              { p.skipped = true; runtime.Goexit() }
func (p *probe) SkipNow()                          { p.skipped = true; runtime.Goexit() }

// runProbe runs check against open under a probe and returns it.
func runProbe(t *testing.T, check TargetCheck, open OpenTarget) *probe {
	p := &probe{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(p, open)
	}()
	<-done
	return p
}

func memTarget(t testing.TB) OpenTarget {
	srv := imaptest.Start(t, imaptest.Options{})
	return func(t testing.TB) target.Target {
		tg, err := imaptgt.Open(context.Background(), srv.Config())
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
}

// blindFind is an IMAP target whose Find recognises only exact copies: it
// drops the date the rewritten-copy rule needs, yet still claims Marks.
type blindFind struct{ *imaptgt.Target }

func (b blindFind) Find(ctx context.Context, d target.Delivery) (string, bool, error) {
	d.Date = time.Time{}
	return b.Target.Find(ctx, d)
}

// TestSuiteCatchesBlindFind: the suite reports a driver whose Find misses
// a copy the server rewrote, and passes the real driver.
func TestSuiteCatchesBlindFind(t *testing.T) {
	open := memTarget(t)
	if p := runProbe(t, CheckFindRewritten, open); p.failed || p.skipped {
		t.Fatalf("the real IMAP target: failed %v, skipped %v: %q", p.failed, p.skipped, p.msgs)
	}
	blind := func(t testing.TB) target.Target { return blindFind{open(t).(*imaptgt.Target)} }
	p := runProbe(t, CheckFindRewritten, blind)
	if !p.failed {
		t.Fatal("the suite passes a Find that misses a rewritten copy")
	}
	if !strings.Contains(strings.Join(p.msgs, "\n"), "rewrote") {
		t.Errorf("reported: %q", p.msgs)
	}
	// Exact copies it still finds: the other Find checks pass.
	if p := runProbe(t, CheckFindLostAnswer, blind); p.failed {
		t.Errorf("lost answer: %q", p.msgs)
	}
}

// liar claims a feature it does not have.
type liar struct{ target.Target }

func (l liar) Features() target.Features {
	f := l.Target.Features()
	f.Marks = true
	return f
}

// TestSuiteCatchesFeatureLie: a target claiming Marks without Marker, or
// hiding an ability it has, fails the Features check.
func TestSuiteCatchesFeatureLie(t *testing.T) {
	open := memTarget(t)
	p := runProbe(t, CheckTargetFeatures, func(t testing.TB) target.Target { return liar{plain{open(t)}} })
	if !p.failed || !strings.Contains(strings.Join(p.msgs, "\n"), "Marks") {
		t.Fatalf("a target claiming Marks without Marker passes: %q", p.msgs)
	}
	p = runProbe(t, CheckTargetFeatures, func(t testing.TB) target.Target { return hider{open(t).(*imaptgt.Target)} })
	if !p.failed || !strings.Contains(strings.Join(p.msgs, "\n"), "Inventory") {
		t.Fatalf("a target hiding Inventory passes: %q", p.msgs)
	}
}

// plain has only the Target methods.
type plain struct{ target.Target }

// hider has every ability of the IMAP target but declares no Inventory.
type hider struct{ *imaptgt.Target }

func (h hider) Features() target.Features {
	f := h.Target.Features()
	f.Inventory = false
	return f
}
