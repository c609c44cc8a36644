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
	return p.Log()
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
	want := []Fault{{0, Trickle, 500}, {0, Trickle, 1001}, {0, Trickle, 1502}, {0, Trickle, 2003}, {0, Trickle, 2504}, {0, Trickle, 3005}, {0, Trickle, 3506}}
	if got := p.Log(); !reflect.DeepEqual(got, want) {
		t.Fatalf("faults %v, want %v", got, want)
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
	for _, o := range []Options{{Probability: 2}, {MinOffset: 10, MaxOffset: 5}, {MinOffset: -1}} {
		if p, err := Start("127.0.0.1:1", o); err == nil {
			p.Close()
			t.Errorf("Start accepted %+v", o)
		}
	}
}
