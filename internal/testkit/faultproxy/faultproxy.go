// Package faultproxy is a TCP proxy for tests that injects network faults
// between a client and a server, in either direction: a reset (RST), an
// orderly close (FIN toward both peers), a half-close (FIN toward one peer
// while the other direction keeps flowing), a cut (the receiver gets
// exactly N bytes, then FIN), a stall (nothing forwarded for a while, after
// which the data arrives late) and a trickle (one byte at a time). Where
// and whether a connection gets a fault is drawn from a random source
// seeded with Options.Seed and the connection's accept number, so the same
// seed plans the same faults for the n-th connection.
//
// A fault's direction says whose byte count places it and which direction
// it hits: Up (client to server), Down (server to client) or Both (the
// bytes of both directions counted together; the fault hits the direction
// that carries the byte at the offset, and a stall or trickle both).
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Kind is a kind of fault.
type Kind int

const (
	// Reset aborts the connection with a TCP RST toward both peers.
	Reset Kind = iota
	// Stall stops forwarding the hit direction(s) for Options.Stall; the
	// data held back is delivered after it, if both ends still want it.
	Stall
	// Trickle forwards Options.Trickle bytes of the hit direction(s) one at
	// a time, each after Options.TrickleDelay.
	Trickle
	// Close sends a FIN toward both peers at the offset; what either sends
	// afterwards is read and dropped, so neither sees a reset.
	Close
	// HalfClose sends a FIN toward the receiver of the hit direction only
	// and drops what its sender still sends that way; the other direction
	// keeps flowing until one of its ends closes.
	HalfClose
	// Cut ends the hit direction after exactly the offset: its receiver
	// gets those bytes, then a FIN (a transfer closed in its middle); the
	// sender's connection is closed at once, so a sender still sending
	// sees a reset.
	Cut
)

// Kinds lists every kind.
var Kinds = []Kind{Reset, Stall, Trickle, Close, HalfClose, Cut}

func (k Kind) String() string {
	switch k {
	case Reset:
		return "reset"
	case Stall:
		return "stall"
	case Trickle:
		return "trickle"
	case Close:
		return "close"
	case HalfClose:
		return "halfclose"
	case Cut:
		return "cut"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Direction is a direction of a connection's traffic.
type Direction int

const (
	// Both counts the bytes of both directions together.
	Both Direction = iota
	// Up is client to server.
	Up
	// Down is server to client.
	Down
)

func (d Direction) String() string {
	switch d {
	case Both:
		return "both"
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// Options configure a proxy. The zero value forwards without faults.
type Options struct {
	// Seed seeds the fault plan.
	Seed uint64
	// Probability is the chance that a connection gets a fault (0..1);
	// a connection that survives its fault (stall, trickle) gets another
	// one with the same chance, MinOffset..MaxOffset bytes later.
	Probability float64
	// MinOffset and MaxOffset bound the byte offset, counted in the
	// fault's direction, where a connection's fault starts; uniform in
	// between.
	MinOffset, MaxOffset int64
	// Offsets replaces MinOffset..MaxOffset for the faults placed by one
	// direction ({min, max}): the upload of an IMAP source is a trickle
	// of commands, its download the mail.
	Offsets map[Direction][2]int64
	// Kinds to choose from, uniformly (repeat a kind to weight it);
	// default Reset, Stall and Trickle.
	Kinds []Kind
	// Directions to choose from, uniformly (repeat one to weight it);
	// default Both.
	Directions []Direction
	// Stall is how long a stall lasts (default 5 s); after it the
	// connection forwards again if both ends still want it.
	Stall time.Duration
	// Trickle is how many bytes a trickle fault forwards one at a time
	// (default 200) in each hit direction, TrickleDelay the pause before
	// each (default 1 ms).
	Trickle      int
	TrickleDelay time.Duration
	// Drain bounds how long a closed or cut connection waits for its
	// peers' own FIN before it is closed outright (default 10 s).
	Drain time.Duration
	// MaxFaults stops injecting after this many faults (0: no limit).
	MaxFaults int
}

// Fault is one injected fault.
type Fault struct {
	Conn   int       // accept number of the connection, from 0
	Kind   Kind      // what was done
	Dir    Direction // whose byte count placed it
	Hit    Direction // the direction carrying the byte at the offset (Up or Down)
	Offset int64     // bytes forwarded in Dir (Both: both) before it
	// Before is up to the last 64 bytes forwarded in Hit before the
	// fault, to tell which message it landed in.
	Before []byte
}

func (f Fault) String() string {
	return fmt.Sprintf("conn %d %s %s@%d (hit %s) after %q", f.Conn, f.Kind, f.Dir, f.Offset, f.Hit, f.Before)
}

// Proxy forwards connections from Addr to the target.
type Proxy struct {
	target string
	o      Options
	ln     net.Listener
	wg     sync.WaitGroup
	done   chan struct{}

	mu     sync.Mutex
	conns  int
	bytes  [2]int64 // forwarded by finished connections, up and down
	faults []Fault
	links  map[*link]struct{}
	closed bool
}

// Start listens on 127.0.0.1:0 and forwards every connection to target.
func Start(target string, o Options) (*Proxy, error) {
	if o.Probability < 0 || o.Probability > 1 {
		return nil, fmt.Errorf("faultproxy: probability %v outside 0..1", o.Probability)
	}
	if o.MinOffset < 0 || o.MaxOffset < o.MinOffset {
		return nil, fmt.Errorf("faultproxy: offset range %d..%d is empty", o.MinOffset, o.MaxOffset)
	}
	for d, r := range o.Offsets {
		if r[0] < 0 || r[1] < r[0] {
			return nil, fmt.Errorf("faultproxy: %s offset range %d..%d is empty", d, r[0], r[1])
		}
	}
	if len(o.Kinds) == 0 {
		o.Kinds = []Kind{Reset, Stall, Trickle}
	}
	if len(o.Directions) == 0 {
		o.Directions = []Direction{Both}
	}
	if o.Stall <= 0 {
		o.Stall = 5 * time.Second
	}
	if o.Trickle <= 0 {
		o.Trickle = 200
	}
	if o.TrickleDelay <= 0 {
		o.TrickleDelay = time.Millisecond
	}
	if o.Drain <= 0 {
		o.Drain = 10 * time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{target: target, o: o, ln: ln, done: make(chan struct{}), links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Faults is the number of faults injected so far.
func (p *Proxy) Faults() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.faults)
}

// Log lists the faults injected so far, in the order they happened.
func (p *Proxy) Log() []Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Fault(nil), p.faults...)
}

// Conns is the number of connections accepted so far.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

// Bytes is what the finished connections forwarded in each direction, to
// size the offsets of a fault plan.
func (p *Proxy) Bytes() (up, down int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bytes[0], p.bytes[1]
}

// Close stops listening, aborts every open connection and waits for the
// forwarding goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	// Unlocked: a link records its faults (p.mu) under its own lock.
	p.mu.Unlock()
	for _, l := range links {
		l.close(false)
	}
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// plan is a connection's next fault.
type plan struct {
	armed  bool
	kind   Kind
	dir    Direction
	offset int64 // in dir's byte count
}

// next draws the next fault of a connection from its random source r:
// whether there is one, its kind, direction, and offset from now.
func (p *Proxy) next(r *rand.Rand) plan {
	if p.o.Probability == 0 || r.Float64() >= p.o.Probability {
		return plan{}
	}
	f := plan{armed: true, kind: p.o.Kinds[r.IntN(len(p.o.Kinds))], dir: p.o.Directions[0]}
	if len(p.o.Directions) > 1 { // a single direction draws nothing: old seeds keep their plans
		f.dir = p.o.Directions[r.IntN(len(p.o.Directions))]
	}
	lo, hi := p.o.MinOffset, p.o.MaxOffset
	if r, ok := p.o.Offsets[f.dir]; ok {
		lo, hi = r[0], r[1]
	}
	f.offset = lo
	if span := hi - lo; span > 0 {
		f.offset += r.Int64N(span + 1)
	}
	return f
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		n := p.conns
		p.conns++
		l := &link{p: p, id: n, client: c.(*net.TCPConn), done: make(chan struct{})}
		l.rng = rand.New(rand.NewPCG(p.o.Seed, uint64(n)))
		l.plan = p.next(l.rng)
		p.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go l.run()
	}
}

// record counts a fault unless MaxFaults is reached; it reports whether
// the fault may be injected.
func (p *Proxy) record(f Fault) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || (p.o.MaxFaults > 0 && len(p.faults) >= p.o.MaxFaults) {
		return false
	}
	p.faults = append(p.faults, f)
	return true
}

// Directions of a link are indexed up = 0, down = 1.
const (
	up   = 0
	down = 1
)

func dirOf(i int) Direction {
	if i == up {
		return Up
	}
	return Down
}

// half is the state of one direction of a link.
type half struct {
	n           int64 // bytes forwarded
	stallUntil  time.Time
	trickleLeft int
	ended       bool   // nothing more is forwarded; what arrives is dropped
	tail        []byte // the last bytes forwarded, for Fault.Before
}

// link is one proxied connection.
type link struct {
	p      *Proxy
	id     int
	client *net.TCPConn
	server *net.TCPConn

	rng       *rand.Rand // the connection's fault plan
	mu        sync.Mutex
	plan      plan
	h         [2]half
	closeOnce sync.Once
	done      chan struct{} // closed with the link
}

func (l *link) run() {
	defer l.p.wg.Done()
	defer func() {
		l.mu.Lock()
		n := [2]int64{l.h[up].n, l.h[down].n}
		l.mu.Unlock()
		l.p.mu.Lock()
		delete(l.p.links, l)
		l.p.bytes[0] += n[0]
		l.p.bytes[1] += n[1]
		l.p.mu.Unlock()
	}()
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", l.p.target)
	if err != nil {
		l.client.SetLinger(0)
		l.client.Close()
		return
	}
	l.mu.Lock()
	l.server = c.(*net.TCPConn)
	l.mu.Unlock()
	select {
	case <-l.done: // closed while dialing
		c.Close()
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.pump(up) }()
	go func() { defer wg.Done(); l.pump(down) }()
	wg.Wait()
	l.close(false)
}

// ends are the source and destination of direction i.
func (l *link) ends(i int) (src, dst *net.TCPConn) {
	if i == up {
		return l.client, l.server
	}
	return l.server, l.client
}

// close closes both ends; with reset, as a TCP RST.
func (l *link) close(reset bool) {
	l.closeOnce.Do(func() {
		close(l.done)
		l.mu.Lock()
		srv := l.server
		l.mu.Unlock()
		for _, c := range []*net.TCPConn{l.client, srv} {
			if c == nil {
				continue
			}
			if reset {
				c.SetLinger(0)
			}
			c.Close()
		}
	})
}

// passFIN ends direction i after its sender's FIN: a FIN to its receiver.
func (l *link) passFIN(i int) {
	l.mu.Lock()
	was := l.h[i].ended
	l.h[i].ended = true
	l.mu.Unlock()
	if !was {
		l.fin(i)
	}
}

// fin sends the FIN of direction i.
func (l *link) fin(i int) {
	_, dst := l.ends(i)
	dst.CloseWrite()
}

func (l *link) ended(i int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.h[i].ended
}

var errStop = errors.New("faultproxy: direction stopped by a fault")

// pump forwards direction i until its source ends. A FIN is passed on as
// a FIN; any other failure closes the whole link.
func (l *link) pump(i int) {
	src, dst := l.ends(i)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if werr := l.forward(i, dst, buf[:n]); werr != nil {
				if werr != errStop && !l.ended(i) {
					l.close(false)
				}
				return
			}
		}
		if err != nil {
			switch {
			case l.ended(i):
				// Dropping after a fault: any end is fine.
			case errors.Is(err, io.EOF):
				l.passFIN(i)
			default:
				l.close(false)
			}
			return
		}
	}
}

// forward writes p to dst, injecting the planned fault where the byte
// count crosses its offset.
func (l *link) forward(i int, dst *net.TCPConn, p []byte) error {
	h := &l.h[i]
	for len(p) > 0 {
		if err := l.waitStall(i); err != nil {
			return err
		}
		l.mu.Lock()
		if h.ended {
			l.mu.Unlock()
			return nil
		}
		chunk := int64(len(p))
		fire := false
		if f := l.plan; f.armed && (f.dir == Both || f.dir == dirOf(i)) {
			if left := f.offset - l.count(f.dir); chunk >= left {
				chunk = max(left, 0)
				fire = chunk == 0
			}
		}
		if !fire {
			// A trickle goes byte by byte; a fault due at the next byte
			// fires first (with Both, the other direction's trickle
			// may still be pending when it is due).
			trickle := h.trickleLeft > 0
			if trickle {
				h.trickleLeft--
				chunk = 1
			}
			// Counted now, under the lock that placed the fault: with
			// Both, the other direction must not overshoot it.
			h.n += chunk
			l.mu.Unlock()
			if trickle {
				if err := l.sleep(l.p.o.TrickleDelay); err != nil {
					return err
				}
			}
			if err := l.write(i, dst, p[:chunk]); err != nil {
				return err
			}
			p = p[chunk:]
			continue
		}
		// Disarm, record and stop the directions the fault ends under the
		// same lock: with Both the other direction must not fire it too,
		// and nothing may slip through before a reset or close.
		f := l.plan
		fault := Fault{Conn: l.id, Kind: f.kind, Dir: f.dir, Hit: dirOf(i), Offset: l.count(f.dir), Before: append([]byte(nil), h.tail...)}
		// A connection that survives its fault (stall, trickle) gets the
		// next one drawn from its own random source, placed from now.
		l.plan = plan{}
		if f.kind == Stall || f.kind == Trickle {
			l.plan = l.p.next(l.rng)
			l.plan.offset += l.count(l.plan.dir) + 1
		}
		if !l.p.record(fault) {
			// MaxFaults reached: no more faults on this connection.
			l.plan = plan{}
			l.mu.Unlock()
			continue
		}
		// The directions a stall or trickle hits.
		hit := []int{i}
		if f.dir == Both {
			hit = []int{up, down}
		}
		switch f.kind {
		case Reset, Close, Cut:
			l.h[up].ended, l.h[down].ended = true, true
		case HalfClose:
			h.ended = true
		case Stall:
			for _, j := range hit {
				l.h[j].stallUntil = time.Now().Add(l.p.o.Stall)
			}
		case Trickle:
			for _, j := range hit {
				l.h[j].trickleLeft = l.p.o.Trickle
			}
		}
		l.mu.Unlock()
		if err := l.inject(i, f.kind); err != nil {
			return err
		}
	}
	return nil
}

// count is the bytes forwarded in d; l.mu held.
func (l *link) count(d Direction) int64 {
	switch d {
	case Up:
		return l.h[up].n
	case Down:
		return l.h[down].n
	}
	return l.h[up].n + l.h[down].n
}

// write forwards b in direction i unless a fault has ended it meanwhile.
func (l *link) write(i int, dst *net.TCPConn, b []byte) error {
	h := &l.h[i]
	l.mu.Lock()
	if h.ended {
		l.mu.Unlock()
		return nil
	}
	if len(b) >= 64 {
		h.tail = append(h.tail[:0], b[len(b)-64:]...)
	} else {
		h.tail = append(h.tail, b...)
		if len(h.tail) > 64 {
			h.tail = append(h.tail[:0], h.tail[len(h.tail)-64:]...)
		}
	}
	l.mu.Unlock()
	_, err := dst.Write(b)
	return err
}

// inject does to the connections what a fault of kind k in direction i
// does, once forward has stopped the directions it ends. It returns
// errStop when direction i is not read any more; a direction that is
// ended but still read drops what arrives.
func (l *link) inject(i int, k Kind) error {
	o := 1 - i
	switch k {
	case Reset:
		l.close(true)
		return errStop
	case Close:
		l.fin(i)
		l.fin(o)
		l.drainBy(up, down)
	case HalfClose:
		l.fin(i)
	case Cut:
		// The receiver gets a FIN after exactly the bytes forwarded; the
		// sender's connection goes at once.
		src, rcv := l.ends(i)
		l.fin(i)
		src.Close()
		rcv.SetReadDeadline(time.Now().Add(l.p.o.Drain))
		return errStop
	}
	return nil
}

// drainBy bounds how long the sources of the given directions are still
// read (and dropped) after a fault closed them.
func (l *link) drainBy(dirs ...int) {
	for _, i := range dirs {
		src, _ := l.ends(i)
		src.SetReadDeadline(time.Now().Add(l.p.o.Drain))
	}
}

// waitStall blocks while direction i is stalled.
func (l *link) waitStall(i int) error {
	l.mu.Lock()
	until := l.h[i].stallUntil
	l.mu.Unlock()
	if d := time.Until(until); d > 0 {
		return l.sleep(d)
	}
	return nil
}

// sleep waits d, or fails when the link or the proxy closes.
func (l *link) sleep(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-l.done:
		return io.ErrClosedPipe
	case <-l.p.done:
		return io.ErrClosedPipe
	}
}
