package migrate

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestDispatcherSpreadsOverFolders(t *testing.T) {
	d := newDispatcher(context.Background(), [][]batch{make([]batch, 3), make([]batch, 9), make([]batch, 5)}, false)
	var order []int
	for i := 0; i < 3; i++ {
		_, f, ok := d.next(-1)
		if !ok {
			t.Fatal("no batch")
		}
		order = append(order, f)
	}
	// Three workers start on three different folders, the biggest first.
	if order[0] != 1 || order[1] != 2 || order[2] != 0 {
		t.Fatalf("order %v, want [1 2 0]", order)
	}
	// All busy: a fourth worker shares the folder with the most left.
	if _, f, _ := d.next(-1); f != 1 {
		t.Fatalf("fourth worker got folder %d, want 1", f)
	}
}

func TestDispatcherExclusive(t *testing.T) {
	d := newDispatcher(context.Background(), [][]batch{make([]batch, 2), make([]batch, 2)}, true)
	_, f1, _ := d.next(-1)
	_, f2, _ := d.next(-1)
	if f1 == f2 {
		t.Fatal("two workers in one folder")
	}
	got := make(chan int)
	go func() { _, f, _ := d.next(-1); got <- f }()
	select {
	case f := <-got:
		t.Fatalf("a third worker got folder %d while both are busy", f)
	case <-time.After(20 * time.Millisecond):
	}
	d.release(f2)
	if f := <-got; f != f2 {
		t.Fatalf("after release got folder %d, want %d", f, f2)
	}
}

func TestDispatcherHandsOutEverythingOnce(t *testing.T) {
	for _, prefer := range []bool{true, false} {
		d := newDispatcher(context.Background(), [][]batch{make([]batch, 3), make([]batch, 9), make([]batch, 5)}, prefer)
		var mu sync.Mutex
		n := 0
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					_, f, ok := d.next(-1)
					if !ok {
						return
					}
					mu.Lock()
					n++
					mu.Unlock()
					d.release(f)
				}
			}()
		}
		wg.Wait()
		if n != 17 {
			t.Fatalf("handed out %d, want 17", n)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := newDispatcher(ctx, [][]batch{make([]batch, 2)}, true)
	cancel()
	if _, _, ok := d.next(-1); ok {
		t.Fatal("a batch after cancel")
	}
}

func TestDispatcherKeepsAWorkerOnItsFolder(t *testing.T) {
	for _, exclusive := range []bool{false, true} {
		d := newDispatcher(context.Background(), [][]batch{make([]batch, 3), make([]batch, 9), make([]batch, 5)}, exclusive)
		_, f, _ := d.next(-1)
		if f != 1 {
			t.Fatalf("exclusive=%v: first batch from folder %d, want 1", exclusive, f)
		}
		d.release(f)
		// Folder 0 has fewer batches than folder 1 but is where the
		// worker was: switching would cost a SELECT on each side.
		for i := 0; i < 3; i++ {
			if _, got, _ := d.next(0); got != 0 {
				t.Fatalf("exclusive=%v: worker on folder 0 moved to %d with batches left there", exclusive, got)
			}
			d.release(0)
		}
		// Folder 0 is empty now: the worker moves on to the biggest.
		if _, got, _ := d.next(0); got != 1 {
			t.Fatalf("exclusive=%v: after folder 0 ran dry got %d, want 1", exclusive, got)
		}
	}
	// With exclusive, a folder another worker holds is not shared.
	d := newDispatcher(context.Background(), [][]batch{make([]batch, 3), make([]batch, 9)}, true)
	_, a, _ := d.next(-1) // folder 1
	if _, b, _ := d.next(a); b == a {
		t.Fatalf("a second worker asking for folder %d got it while it is busy", a)
	}
}
