package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"syscall"
	"testing"
	"time"
)

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func start(t *testing.T, target string, o Options) *Proxy {
	t.Helper()
	p, err := Start(target, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// exchange sends data through addr and reads its echo, with an overall
// deadline; it returns what came back and the read error.
func exchange(t *testing.T, addr string, data []byte, deadline time.Duration) ([]byte, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(deadline))
	go c.Write(data)
	got := make([]byte, len(data))
	n, err := io.ReadFull(c, got)
	return got[:n], err
}

func TestFaults(t *testing.T) {
	echo := echoServer(t)
	data := payload(8000)
	tests := []struct {
		name     string
		o        Options
		deadline time.Duration
		check    func(t *testing.T, got []byte, err error, took time.Duration)
		faults   int
	}{
		{"none", Options{}, 5 * time.Second, func(t *testing.T, got []byte, err error, _ time.Duration) {
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("echo: %d bytes, %v", len(got), err)
			}
		}, 0},
		{"reset", Options{Probability: 1, MinOffset: 1000, MaxOffset: 1000, Kinds: []Kind{Reset}}, 5 * time.Second,
			func(t *testing.T, got []byte, err error, _ time.Duration) {
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("read error %v, want connection reset", err)
				}
				if len(got) >= 1000 || !bytes.Equal(got, data[:len(got)]) {
					t.Fatalf("%d bytes before the reset at offset 1000 (both directions)", len(got))
				}
			}, 1},
		{"stall longer than the client's timeout", Options{Probability: 1, MinOffset: 10, MaxOffset: 500, Kinds: []Kind{Stall}, Stall: 3 * time.Second, MaxFaults: 1},
			300 * time.Millisecond, func(t *testing.T, got []byte, err error, took time.Duration) {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("read error %v, want a timeout", err)
				}
				if len(got) > 500 {
					t.Fatalf("%d bytes came through the stall", len(got))
				}
			}, 1},
		{"stall shorter than the client's timeout", Options{Probability: 1, MinOffset: 100, MaxOffset: 100, Kinds: []Kind{Stall}, Stall: 200 * time.Millisecond, MaxFaults: 1},
			5 * time.Second, func(t *testing.T, got []byte, err error, took time.Duration) {
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("echo: %d bytes, %v", len(got), err)
				}
				if took < 200*time.Millisecond {
					t.Fatalf("took %v, the stall is 200ms", took)
				}
			}, 1},
		{"trickle", Options{Probability: 1, MinOffset: 0, MaxOffset: 0, Kinds: []Kind{Trickle}, Trickle: 100, TrickleDelay: 2 * time.Millisecond, MaxFaults: 1},
			5 * time.Second, func(t *testing.T, got []byte, err error, took time.Duration) {
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("echo: %d bytes, %v", len(got), err)
				}
				// Both directions trickle at once, sharing the 100 bytes.
				if took < 100*time.Millisecond {
					t.Fatalf("took %v, 100 trickled bytes at 2ms, two directions, take >= 100ms", took)
				}
			}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, echo, tc.o)
			t0 := time.Now()
			got, err := exchange(t, p.Addr(), data, tc.deadline)
			tc.check(t, got, err, time.Since(t0))
			if n := p.Faults(); n != tc.faults {
				t.Fatalf("Faults() = %d, want %d (%v)", n, tc.faults, p.Log())
			}
			if p.Conns() != 1 {
				t.Fatalf("Conns() = %d", p.Conns())
			}
		})
	}
}

// run opens n connections one after another, each echoing 2,000 bytes with a
// short deadline, and returns the fault log.
func run(t *testing.T, echo string, o Options, n int) []Fault {
	t.Helper()
	p := start(t, echo, o)
	data := payload(2000)
	for i := 0; i < n; i++ {
		exchange(t, p.Addr(), data, 2*time.Second)
	}
	p.Close()
	// Which direction carries the byte at a Both offset is up to timing;
	// the plan is not.
	log := p.Log()
	for i := range log {
		log[i].Hit, log[i].Before = 0, nil
	}
	return log
}

func TestSeedDeterminesPlan(t *testing.T) {
	echo := echoServer(t)
	o := Options{Seed: 42, Probability: 0.5, MinOffset: 0, MaxOffset: 3000, Kinds: []Kind{Reset, Trickle}, Trickle: 5}
	a := run(t, echo, o, 30)
	b := run(t, echo, o, 30)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
	}
	if len(a) < 5 || len(a) > 25 {
		t.Fatalf("%d faults in 30 connections at probability 0.5", len(a))
	}
	kinds := map[Kind]int{}
	for _, f := range a {
		kinds[f.Kind]++
		if f.Offset > 4000 {
			t.Fatalf("fault %+v beyond the 4,000 bytes of the connection", f)
		}
	}
	if kinds[Reset] == 0 || kinds[Trickle] == 0 {
		t.Fatalf("kinds not mixed: %v", kinds)
	}
	o.Seed = 43
	if c := run(t, echo, o, 30); reflect.DeepEqual(a, c) {
		t.Fatalf("seeds 42 and 43 planned the same faults: %v", a)
	}
}

func TestSurvivedFaultRearms(t *testing.T) {
	echo := echoServer(t)
	p := start(t, echo, Options{Probability: 1, MinOffset: 500, MaxOffset: 500, Kinds: []Kind{Trickle}, Trickle: 1})
	if got, err := exchange(t, p.Addr(), payload(2000), 5*time.Second); err != nil || len(got) != 2000 {
		t.Fatalf("echo: %d bytes, %v", len(got), err)
	}
	want := []int64{500, 1001, 1502, 2003, 2504, 3005, 3506}
	var got []int64
	for _, f := range p.Log() {
		if f.Conn != 0 || f.Kind != Trickle || f.Dir != Both {
			t.Fatalf("fault %v", f)
		}
		got = append(got, f.Offset)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fault offsets %v, want %v", got, want)
	}
}

func TestMaxFaults(t *testing.T) {
	echo := echoServer(t)
	log := run(t, echo, Options{Probability: 1, MaxOffset: 100, Kinds: []Kind{Reset}, MaxFaults: 3}, 10)
	if len(log) != 3 {
		t.Fatalf("%d faults, MaxFaults 3: %v", len(log), log)
	}
}

func TestCloseAbortsStalledConnections(t *testing.T) {
	echo := echoServer(t)
	p := start(t, echo, Options{Probability: 1, Kinds: []Kind{Stall}, Stall: time.Hour})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs on a stalled connection")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 10)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client read after Close: %v, want EOF or reset", err)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{Probability: 2}, {MinOffset: 10, MaxOffset: 5}, {MinOffset: -1}, {Offsets: map[Direction][2]int64{Up: {5, 1}}}} {
		if p, err := Start("127.0.0.1:1", o); err == nil {
			p.Close()
			t.Errorf("Start accepted %+v", o)
		}
	}
}

// pair connects a client through a proxy with o to a server socket the test
// holds, so each side can be watched.
func pair(t *testing.T, o Options) (client, server net.Conn, p *Proxy) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p = start(t, ln.Addr().String(), o)
	client, err = net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []net.Conn{client, server} {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		t.Cleanup(func() { c.Close() })
	}
	return client, server, p
}

// readN reads until n bytes or an error.
func readN(c net.Conn, n int) ([]byte, error) {
	b := make([]byte, n)
	k, err := io.ReadFull(c, b)
	return b[:k], err
}

// readAll reads until an error, which it returns (io.EOF for a FIN).
func readAll(c net.Conn) ([]byte, error) {
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
	}
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// TestKindsAndDirections injects each kind in each direction at byte 1,000
// of a 5,000-byte transfer and checks what the sender and the receiver of
// that direction observe. With Up or Down, 3,000 bytes first go the other
// way, which must not move the fault.
func TestKindsAndDirections(t *testing.T) {
	const at, size = 1000, 5000
	data := payload(size)
	for _, kind := range Kinds {
		for _, dir := range []Direction{Up, Down, Both} {
			t.Run(kind.String()+"/"+dir.String(), func(t *testing.T) {
				o := Options{Probability: 1, MinOffset: at, MaxOffset: at, Kinds: []Kind{kind}, Directions: []Direction{dir},
					Stall: 400 * time.Millisecond, Trickle: 100, TrickleDelay: 3 * time.Millisecond, Drain: 2 * time.Second, MaxFaults: 1}
				client, server, p := pair(t, o)
				// snd sends the faulted direction; Both is driven from the client.
				snd, rcv, hit := client, server, Up
				if dir == Down {
					snd, rcv, hit = server, client, Down
				}
				if dir != Both {
					go rcv.Write(payload(3000))
					if got, err := readN(snd, 3000); err != nil {
						t.Fatalf("the other direction before the fault: %d bytes, %v", len(got), err)
					}
				}
				go snd.Write(data)
				t0 := time.Now()
				switch kind {
				case Reset:
					got, err := readAll(rcv)
					if !isReset(err) || len(got) > at || !bytes.Equal(got, data[:len(got)]) {
						t.Fatalf("receiver: %d bytes, %v; want <= %d, then a reset", len(got), err, at)
					}
					if _, err := readAll(snd); !isReset(err) {
						t.Fatalf("sender: %v, want a reset", err)
					}
				case Close:
					got, err := readAll(rcv)
					if err != io.EOF || !bytes.Equal(got, data[:at]) {
						t.Fatalf("receiver: %d bytes, %v; want %d, then EOF", len(got), err, at)
					}
					if got, err := readAll(snd); err != io.EOF || len(got) != 0 {
						t.Fatalf("sender: %d bytes, %v; want EOF", len(got), err)
					}
				case HalfClose:
					got, err := readAll(rcv)
					if err != io.EOF || !bytes.Equal(got, data[:at]) {
						t.Fatalf("receiver: %d bytes, %v; want %d, then EOF", len(got), err, at)
					}
					// The other direction still flows, until its sender closes.
					rcv.Write([]byte("pong"))
					if got, err := readN(snd, 4); err != nil || string(got) != "pong" {
						t.Fatalf("the other direction after a half-close: %q, %v", got, err)
					}
					rcv.Close()
					if got, err := readAll(snd); err != io.EOF || len(got) != 0 {
						t.Fatalf("sender after the receiver closed: %d bytes, %v; want EOF", len(got), err)
					}
				case Cut:
					got, err := readAll(rcv)
					if err != io.EOF || !bytes.Equal(got, data[:at]) {
						t.Fatalf("receiver: %d bytes, %v; want exactly %d, then EOF", len(got), err, at)
					}
					rcv.Write([]byte("pong"))
					if got, err := readAll(snd); len(got) != 0 || !(err == io.EOF || isReset(err)) {
						t.Fatalf("sender: %q, %v; want its connection closed", got, err)
					}
				case Stall:
					if got, err := readN(rcv, at); err != nil || !bytes.Equal(got, data[:at]) {
						t.Fatalf("before the stall: %d bytes, %v", len(got), err)
					}
					// With Both, the 1,001st byte may still be on its way.
					for dir == Both && p.Faults() == 0 && time.Since(t0) < 2*time.Second {
						time.Sleep(time.Millisecond)
					}
					t1 := time.Now()
					rcv.Write([]byte("pong"))
					if got, err := readN(snd, 4); err != nil || string(got) != "pong" {
						t.Fatalf("the other direction: %q, %v", got, err)
					}
					late := time.Since(t1) > 300*time.Millisecond
					if late != (dir == Both) {
						t.Fatalf("the other direction took %v (stalled too: %v)", time.Since(t1), dir == Both)
					}
					got, err := readN(rcv, size-at)
					if err != nil || !bytes.Equal(got, data[at:]) {
						t.Fatalf("after the stall: %d bytes, %v", len(got), err)
					}
					if d := time.Since(t1); d < 350*time.Millisecond {
						t.Fatalf("the rest came after %v, the stall is 400ms", d)
					}
				case Trickle:
					if dir != Both {
						rcv.Write([]byte("pong"))
						if got, err := readN(snd, 4); err != nil || string(got) != "pong" || time.Since(t0) > 200*time.Millisecond {
							t.Fatalf("the other direction: %q, %v after %v", got, err, time.Since(t0))
						}
					}
					if got, err := readN(rcv, size); err != nil || !bytes.Equal(got, data) {
						t.Fatalf("trickled transfer: %d bytes, %v", len(got), err)
					}
					if d := time.Since(t0); d < 300*time.Millisecond {
						t.Fatalf("took %v, 100 bytes at 3ms take 300ms", d)
					}
				}
				log := p.Log()
				if len(log) != 1 {
					t.Fatalf("faults %v, want one", log)
				}
				f := log[0]
				if f.Kind != kind || f.Dir != dir || f.Hit != hit || f.Offset != at || !bytes.Equal(f.Before, data[at-64:at]) {
					t.Fatalf("fault %v, want %s %s@%d hitting %s", f, kind, dir, at, hit)
				}
			})
		}
	}
}

// TestOffsetsPerDirection: a fault placed by one direction's range fires
// at that direction's count.
func TestOffsetsPerDirection(t *testing.T) {
	o := Options{Probability: 1, MinOffset: 100000, MaxOffset: 100000, Offsets: map[Direction][2]int64{Up: {10, 10}},
		Kinds: []Kind{Cut}, Directions: []Direction{Up}}
	client, server, p := pair(t, o)
	go client.Write(payload(100))
	got, err := readAll(server)
	if err != io.EOF || len(got) != 10 {
		t.Fatalf("server: %d bytes, %v; want 10, then EOF", len(got), err)
	}
	if log := p.Log(); len(log) != 1 || log[0].Offset != 10 || log[0].Hit != Up {
		t.Fatalf("faults %v", log)
	}
}
