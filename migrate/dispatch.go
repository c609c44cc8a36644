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
//
// While the plan is still being made (streaming, see plan.go), the planner
// pushes batches as it plans them and waits while limit messages are
// queued and some worker is at work; workers wait for batches until the
// planner closes the dispatcher.
type dispatcher struct {
	mu         sync.Mutex
	cond       *sync.Cond
	queues     [][]batch
	busy       []int
	exclusive  bool
	ctx        context.Context
	closed     bool // no more pushes
	limit      int  // push waits while queued >= limit (0: never)
	queued     int  // messages (and deletions) waiting in queues
	active     int  // workers with sessions (see expect)
	connecting int  // workers that will be active once connected
}

// newDispatcher returns a dispatcher of the given batches, closed: nothing
// more is pushed.
func newDispatcher(ctx context.Context, queues [][]batch, exclusive bool) *dispatcher {
	d := newStreamDispatcher(ctx, len(queues), exclusive, 0)
	for i, q := range queues {
		d.queues[i] = q
		for _, b := range q {
			d.queued += weight(b)
		}
	}
	d.closed = true
	return d
}

// newStreamDispatcher returns an empty dispatcher of n folders that the
// planner fills with push and ends with close.
func newStreamDispatcher(ctx context.Context, n int, exclusive bool, limit int) *dispatcher {
	d := &dispatcher{ctx: ctx, queues: make([][]batch, n), busy: make([]int, n), exclusive: exclusive, limit: limit}
	d.cond = sync.NewCond(&d.mu)
	context.AfterFunc(ctx, func() {
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	return d
}

func weight(b batch) int { return len(b.items) + len(b.deleteOnly) }

// push queues batches of folder i. It waits while the queues hold limit
// messages or more and a worker is at work (or connecting) to take them
// (with none, it never waits: the plan must go on for a worker to get
// sessions).
func (d *dispatcher) push(folder int, bs []batch) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.limit > 0 && d.queued >= d.limit && d.active+d.connecting > 0 && d.ctx.Err() == nil {
		d.cond.Wait()
	}
	if err := d.ctx.Err(); err != nil {
		return err
	}
	d.queues[folder] = append(d.queues[folder], bs...)
	for _, b := range bs {
		d.queued += weight(b)
	}
	if testHookQueued != nil {
		testHookQueued(d.queued)
	}
	d.cond.Broadcast()
	return nil
}

// testHookQueued sees the number of queued messages after each push.
var testHookQueued func(int)

// close says nothing more will be pushed.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.cond.Broadcast()
	d.mu.Unlock()
}

// expect says n workers are connecting; each then calls connected or
// failed. join counts a worker at work that was not expected, leave one
// that stops.
func (d *dispatcher) expect(n int) { d.count(n, 0) }
func (d *dispatcher) connected()   { d.count(-1, 1) }
func (d *dispatcher) failed()      { d.count(-1, 0) }
func (d *dispatcher) join()        { d.count(0, 1) }
func (d *dispatcher) leave()       { d.count(0, -1) }

func (d *dispatcher) count(connecting, active int) {
	d.mu.Lock()
	d.connecting += connecting
	d.active += active
	d.cond.Broadcast()
	d.mu.Unlock()
}

// next returns a batch and its folder's index; ok is false when there is
// nothing left (or the run is stopping). prev is the folder of the
// worker's last batch (-1: none): while it has batches the worker stays
// on it, since a switch costs a SELECT on each side, and a server such as
// Dovecot takes 0.4 s to open a folder of 400,000 messages.
func (d *dispatcher) next(prev int) (b batch, folder int, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.ctx.Err() == nil {
		best, left := -1, true
		if prev >= 0 && prev < len(d.queues) && len(d.queues[prev]) > 0 && (!d.exclusive || d.busy[prev] == 0) {
			best = prev
		} else {
			best, left = d.pick()
		}
		if !left && d.closed {
			return batch{}, -1, false
		}
		if best >= 0 {
			b = d.queues[best][0]
			d.queues[best][0] = batch{}
			d.queues[best] = d.queues[best][1:]
			if len(d.queues[best]) == 0 {
				d.queues[best] = nil // let the backing array go
			}
			d.busy[best]++
			d.queued -= weight(b)
			d.cond.Broadcast() // the planner may go on
			return b, best, true
		}
		d.cond.Wait()
	}
	return batch{}, -1, false
}

// pick returns the folder to take a batch from: the least busy (with
// exclusive, a free one), and of those the one with the most batches; -1
// when none can be taken now. left says whether any batch is queued.
func (d *dispatcher) pick() (best int, left bool) {
	best = -1
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
	return best, left
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
