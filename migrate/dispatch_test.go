package migrate

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDispatcher(t *testing.T) {
	for _, exclusive := range []bool{true, false} {
		queues := [][]batch{make([]batch, 3), make([]batch, 9), make([]batch, 5)}
		d := newDispatcher(context.Background(), queues, exclusive)
		var mu sync.Mutex
		busy := map[int]int{}
		var maxSame, got atomic.Int32
		var wg sync.WaitGroup
		first := -1
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
					if first < 0 {
						first = f
					}
					busy[f]++
					if n := int32(busy[f]); n > maxSame.Load() {
						maxSame.Store(n)
					}
					mu.Unlock()
					got.Add(1)
					time.Sleep(time.Millisecond)
					mu.Lock()
					busy[f]--
					mu.Unlock()
					d.release(f)
				}
			}()
		}
		wg.Wait()
		if got.Load() != 17 {
			t.Fatalf("exclusive=%v: handed out %d batches, want 17", exclusive, got.Load())
		}
		if exclusive && maxSame.Load() != 1 {
			t.Fatalf("two workers in one folder at once")
		}
		if !exclusive && maxSame.Load() < 2 {
			t.Logf("non-exclusive never overlapped (timing)")
		}
		if first != 1 {
			t.Fatalf("first batch from folder %d, want the biggest (1)", first)
		}
	}
	// A cancelled run releases waiting workers.
	ctx, cancel := context.WithCancel(context.Background())
	d := newDispatcher(ctx, [][]batch{make([]batch, 2)}, true)
	_, f, _ := d.next()
	done := make(chan bool)
	go func() { _, _, ok := d.next(); done <- ok }()
	cancel()
	if <-done {
		t.Fatal("next returned a batch after cancel")
	}
	d.release(f)
}
