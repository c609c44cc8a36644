package migrate

import (
	"context"
	"sync"
)

// dispatcher hands out batches from the folder with the most batches left
// (so that big folders do not become the tail of the run). With
// preferFree, a folder no other worker is busy with comes first; only when
// every folder with work left is busy do workers share one (the least
// busy): a single-folder account (POP3) still gets every worker.
type dispatcher struct {
	mu         sync.Mutex
	queues     [][]batch
	busy       []int
	preferFree bool
	ctx        context.Context
}

func newDispatcher(ctx context.Context, queues [][]batch, preferFree bool) *dispatcher {
	d := &dispatcher{ctx: ctx, queues: queues, busy: make([]int, len(queues)), preferFree: preferFree}
	return d
}

// next returns a batch and its folder's index; ok is false when there is
// nothing left (or the run is stopping).
func (d *dispatcher) next() (b batch, folder int, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil {
		return batch{}, -1, false
	}
	best := -1
	for i, q := range d.queues {
		if len(q) == 0 {
			continue
		}
		if best < 0 || d.better(i, best) {
			best = i
		}
	}
	if best < 0 {
		return batch{}, -1, false
	}
	b = d.queues[best][0]
	d.queues[best] = d.queues[best][1:]
	d.busy[best]++
	return b, best, true
}

// better reports whether folder i should go before folder j.
func (d *dispatcher) better(i, j int) bool {
	if d.preferFree && d.busy[i] != d.busy[j] {
		return d.busy[i] < d.busy[j]
	}
	return len(d.queues[i]) > len(d.queues[j])
}

// release marks the folder free again.
func (d *dispatcher) release(folder int) {
	if folder < 0 {
		return
	}
	d.mu.Lock()
	d.busy[folder]--
	d.mu.Unlock()
}
