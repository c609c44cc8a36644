// Package pop3script replays POP3 transcripts from a fake server, for the
// tests of the POP3 client (internal/pop3conn) and source (source/pop3):
// exact bytes, stalls, closes and resets at chosen points.
package pop3script

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Server starts a fake POP3 server on 127.0.0.1 that replays a script, a
// POP3 transcript:
//
//	"S: text"  the server sends text + CRLF
//	"R: bytes" the server sends the bytes as they are (no CRLF added)
//	"C: line"  the server expects this line from the client
//	"STALL"    the server stops answering (until the client hangs up)
//	"CLOSE"    the server closes the connection
//	"FIN"      the server ends its side in order (half-close), then waits
//	"RST"      the server resets the connection
//
// After the last step the server waits for the client to hang up.
func Server(t testing.TB, steps ...string) (addr string, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			ch <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		for i, s := range steps {
			switch {
			case strings.HasPrefix(s, "S: "):
				if _, err := io.WriteString(c, s[3:]+"\r\n"); err != nil {
					ch <- fmt.Errorf("step %d: %w", i, err)
					return
				}
			case strings.HasPrefix(s, "R: "):
				if _, err := io.WriteString(c, s[3:]); err != nil {
					ch <- fmt.Errorf("step %d: %w", i, err)
					return
				}
			case strings.HasPrefix(s, "C: "):
				l, err := r.ReadString('\n')
				if err != nil {
					ch <- fmt.Errorf("step %d: want %q, read error %v", i, s[3:], err)
					return
				}
				if got := strings.TrimRight(l, "\r\n"); got != s[3:] {
					ch <- fmt.Errorf("step %d: client sent %q, want %q", i, got, s[3:])
					return
				}
			case s == "STALL":
				io.Copy(io.Discard, r)
				ch <- nil
				return
			case s == "CLOSE":
				ch <- nil
				return
			case s == "FIN":
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, r)
				ch <- nil
				return
			case s == "RST":
				c.(*net.TCPConn).SetLinger(0)
				ch <- nil
				return
			default:
				ch <- fmt.Errorf("bad step %q", s)
				return
			}
		}
		io.Copy(io.Discard, r) // until the client closes
		ch <- nil
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), ch
}

// Wait fails the test if the script server reported an error.
func Wait(t testing.TB, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("script server did not finish")
	}
}

// LoginUserPass is a greeting, CAPA and USER/PASS login of bob/hunter2.
var LoginUserPass = []string{
	"S: +OK ready",
	"C: CAPA",
	"S: +OK",
	"S: USER",
	"S: UIDL",
	"S: TOP",
	"S: RESP-CODES",
	"S: .",
	"C: USER bob",
	"S: +OK",
	"C: PASS hunter2",
	"S: +OK logged in",
	"C: CAPA",
	"S: +OK",
	"S: USER",
	"S: UIDL",
	"S: TOP",
	"S: RESP-CODES",
	"S: .",
}

// WithPipelining adds PIPELINING to the CAPA answers of steps.
func WithPipelining(steps []string) []string {
	var out []string
	for _, s := range steps {
		if s == "S: RESP-CODES" {
			out = append(out, "S: PIPELINING")
		}
		out = append(out, s)
	}
	return out
}

// Concat joins step lists.
func Concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
