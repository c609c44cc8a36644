// Package faultproxy is a TCP proxy for tests that injects network faults
// between a client and a server: it resets a connection (RST, via
// SetLinger(0) and Close), stalls it (forwards nothing for a while, longer
// than the client's timeout) or trickles it (one byte per millisecond for a
// while). Where and whether a connection gets a fault is drawn from a
// random source seeded with Options.Seed and the connection's accept
// number, so the same seed plans the same faults for the n-th connection.
//
// The byte offset of a fault counts the bytes forwarded in both directions
// of the connection, so a fault lands in a login, a command, a download or
// an upload alike.
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
	// Reset aborts the connection with a TCP RST on both sides.
	Reset Kind = iota
	// Stall stops forwarding in both directions for Options.Stall.
	Stall
	// Trickle forwards Options.Trickle bytes one at a time, each after
	// Options.TrickleDelay.
	Trickle
)

func (k Kind) String() string {
	switch k {
	case Reset:
		return "reset"
	case Stall:
		return "stall"
	case Trickle:
		return "trickle"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Options configure a proxy. The zero value forwards without faults.
type Options struct {
	// Seed seeds the fault plan.
	Seed uint64
	// Probability is the chance that a connection gets a fault (0..1);
	// a connection that survives its fault (stall, trickle) gets another
	// one with the same chance, MinOffset..MaxOffset bytes later.
	Probability float64
	// MinOffset and MaxOffset bound the byte offset (both directions
	// counted) where a connection's fault starts; uniform in between.
	MinOffset, MaxOffset int64
	// Kinds to choose from, uniformly (repeat a kind to weight it);
	// default Reset, Stall and Trickle.
	Kinds []Kind
	// Stall is how long a stall lasts (default 5 s); after it the
	// connection forwards again if both ends still want it.
	Stall time.Duration
	// Trickle is how many bytes a trickle fault forwards one at a time
	// (default 200), TrickleDelay the pause before each (default 1 ms).
	Trickle      int
	TrickleDelay time.Duration
	// MaxFaults stops injecting after this many faults (0: no limit).
	MaxFaults int
}

// Fault is one injected fault.
type Fault struct {
	Conn   int   // accept number of the connection, from 0
	Kind   Kind  // what was done
	Offset int64 // bytes forwarded on the connection before it
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
	if len(o.Kinds) == 0 {
		o.Kinds = []Kind{Reset, Stall, Trickle}
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
	for l := range p.links {
		l.close(false)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// next draws the next fault of a connection from its random source r:
// whether there is one, its kind, and its offset from the previous one.
func (p *Proxy) next(r *rand.Rand) (Kind, int64, bool) {
	if p.o.Probability == 0 || r.Float64() >= p.o.Probability {
		return 0, 0, false
	}
	kind := p.o.Kinds[r.IntN(len(p.o.Kinds))]
	off := p.o.MinOffset
	if span := p.o.MaxOffset - p.o.MinOffset; span > 0 {
		off += r.Int64N(span + 1)
	}
	return kind, off, true
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
		l.kind, l.offset, l.armed = p.next(l.rng)
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

// link is one proxied connection.
type link struct {
	p      *Proxy
	id     int
	client *net.TCPConn
	server *net.TCPConn

	rng         *rand.Rand // the connection's fault plan
	mu          sync.Mutex
	n           int64 // bytes forwarded, both directions
	kind        Kind
	offset      int64
	armed       bool
	stallUntil  time.Time
	trickleLeft int
	closeOnce   sync.Once
	done        chan struct{} // closed with the link
}

func (l *link) run() {
	defer l.p.wg.Done()
	defer func() {
		l.p.mu.Lock()
		delete(l.p.links, l)
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
	go func() { defer wg.Done(); l.pump(l.server, l.client) }()
	go func() { defer wg.Done(); l.pump(l.client, l.server) }()
	wg.Wait()
	l.close(false)
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

var errReset = errors.New("faultproxy: connection reset")

// pump copies src to dst until either fails, then closes both ends.
func (l *link) pump(dst, src *net.TCPConn) {
	defer l.close(false)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if werr := l.forward(dst, buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// forward writes p to dst, injecting the planned fault where the byte
// count crosses its offset.
func (l *link) forward(dst *net.TCPConn, p []byte) error {
	for len(p) > 0 {
		if err := l.waitStall(); err != nil {
			return err
		}
		l.mu.Lock()
		if l.trickleLeft > 0 {
			l.trickleLeft--
			l.n++
			l.mu.Unlock()
			if err := l.sleep(l.p.o.TrickleDelay); err != nil {
				return err
			}
			if _, err := dst.Write(p[:1]); err != nil {
				return err
			}
			p = p[1:]
			continue
		}
		chunk := int64(len(p))
		fire := false
		if l.armed && l.n+chunk > l.offset {
			chunk = l.offset - l.n
			if chunk < 0 {
				chunk = 0
			}
			fire = chunk == 0
		}
		if !fire {
			l.n += chunk
			l.mu.Unlock()
			if _, err := dst.Write(p[:chunk]); err != nil {
				return err
			}
			p = p[chunk:]
			continue
		}
		kind, off := l.kind, l.n
		// A connection that survives its fault (stall, trickle) gets the
		// next one drawn from its own random source.
		if kind == Reset {
			l.armed = false
		} else {
			l.kind, l.offset, l.armed = l.p.next(l.rng)
			l.offset += off + 1
		}
		l.mu.Unlock()
		if !l.p.record(Fault{Conn: l.id, Kind: kind, Offset: off}) {
			// MaxFaults reached: no more faults on this connection.
			l.mu.Lock()
			l.armed = false
			l.mu.Unlock()
			continue
		}
		switch kind {
		case Reset:
			l.close(true)
			return errReset
		case Stall:
			l.mu.Lock()
			l.stallUntil = time.Now().Add(l.p.o.Stall)
			l.mu.Unlock()
		case Trickle:
			l.mu.Lock()
			l.trickleLeft = l.p.o.Trickle
			l.mu.Unlock()
		}
	}
	return nil
}

// waitStall blocks while the link is stalled.
func (l *link) waitStall() error {
	l.mu.Lock()
	until := l.stallUntil
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
