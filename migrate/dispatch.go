package migrate

import (
	"context"
	"sync"
)

// dispatcher hands out batches from the folder with the most batches left
// (so that big folders do not become the tail of the run). With exclusive
// (IMAP targets), a folder is worked on by one worker at a time: a server
// such as Dovecot serialises the stores into one folder anyway, and keeps
// a folder a session has SELECTed open, while a second appender makes each
// session re-sync after the other's saves. A worker with no free folder
// waits. Without exclusive (Maildir targets), workers share folders.
type dispatcher struct {
	mu        sync.Mutex
	cond      *sync.Cond
	queues    [][]batch
	busy      []int
	exclusive bool
	ctx       context.Context
}

func newDispatcher(ctx context.Context, queues [][]batch, exclusive bool) *dispatcher {
	d := &dispatcher{ctx: ctx, queues: queues, busy: make([]int, len(queues)), exclusive: exclusive}
	d.cond = sync.NewCond(&d.mu)
	context.AfterFunc(ctx, func() {
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	return d
}

// next returns a batch and its folder's index; ok is false when there is
// nothing left (or the run is stopping).
func (d *dispatcher) next() (b batch, folder int, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.ctx.Err() == nil {
		best, left := -1, false
		for i, q := range d.queues {
			if len(q) == 0 {
				continue
			}
			left = true
			if d.exclusive && d.busy[i] > 0 {
				continue
			}
			if best < 0 || d.busy[i] < d.busy[best] || d.busy[i] == d.busy[best] && len(q) > len(d.queues[best]) {
				best = i
			}
		}
		if !left {
			return batch{}, -1, false
		}
		if best >= 0 {
			b = d.queues[best][0]
			d.queues[best] = d.queues[best][1:]
			d.busy[best]++
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
	d.busy[folder]--
	d.cond.Broadcast()
	d.mu.Unlock()
}
