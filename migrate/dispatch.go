package migrate

import (
	"context"
	"sync"
)

// dispatcher hands out batches: from the folder with the most batches left
// (so that big folders do not become the tail of the run), and, when
// exclusive, never from a folder another worker is busy with.
type dispatcher struct {
	mu        sync.Mutex
	cond      *sync.Cond
	queues    [][]batch
	busy      []bool
	exclusive bool
	done      bool
}

func newDispatcher(ctx context.Context, queues [][]batch, exclusive bool) *dispatcher {
	d := &dispatcher{queues: queues, busy: make([]bool, len(queues)), exclusive: exclusive}
	d.cond = sync.NewCond(&d.mu)
	context.AfterFunc(ctx, func() {
		d.mu.Lock()
		d.done = true
		d.mu.Unlock()
		d.cond.Broadcast()
	})
	return d
}

// next returns a batch and its folder's index, waiting while every folder
// with work left is busy; ok is false when there is nothing left (or the
// run is stopping).
func (d *dispatcher) next() (b batch, folder int, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for !d.done {
		best, left := -1, false
		for i, q := range d.queues {
			if len(q) == 0 {
				continue
			}
			left = true
			if d.exclusive && d.busy[i] {
				continue
			}
			if best < 0 || len(q) > len(d.queues[best]) {
				best = i
			}
		}
		if !left {
			return batch{}, -1, false
		}
		if best >= 0 {
			b = d.queues[best][0]
			d.queues[best] = d.queues[best][1:]
			d.busy[best] = true
			return b, best, true
		}
		d.cond.Wait()
	}
	return batch{}, -1, false
}

// release marks the folder free again.
func (d *dispatcher) release(folder int) {
	if folder < 0 {
		return
	}
	d.mu.Lock()
	d.busy[folder] = false
	d.mu.Unlock()
	d.cond.Broadcast()
}
