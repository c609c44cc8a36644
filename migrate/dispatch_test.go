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
		_, f, ok := d.next()
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
	if _, f, _ := d.next(); f != 1 {
		t.Fatalf("fourth worker got folder %d, want 1", f)
	}
}

func TestDispatcherExclusive(t *testing.T) {
	d := newDispatcher(context.Background(), [][]batch{make([]batch, 2), make([]batch, 2)}, true)
	_, f1, _ := d.next()
	_, f2, _ := d.next()
	if f1 == f2 {
		t.Fatal("two workers in one folder")
	}
	got := make(chan int)
	go func() { _, f, _ := d.next(); got <- f }()
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
					_, f, ok := d.next()
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
	if _, _, ok := d.next(); ok {
		t.Fatal("a batch after cancel")
	}
}
