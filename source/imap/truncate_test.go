package imap

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	"github.com/mailferry/mailferry/source"
)

// bodyMarker starts a FETCH body literal in the server's stream.
const bodyMarker = "BODY[] {"

// cutProxy forwards connections to addr. On the first connection, it ends
// the server→client stream at a point of the nth body literal (1-based)
// chosen by cut, with an orderly close (FIN) or a reset (RST). Later
// connections pass untouched.
type cutProxy struct {
	addr string
	nth  int
	// cut returns the stream offset to stop at, given the offset of the
	// marker, of the literal's first octet and its size (-1, -1 while the
	// literal header is incomplete); ok false: not computable yet.
	cut func(marker, start, size int) (int, bool)
	rst bool
	// marker starts the literals to count (default bodyMarker).
	marker string

	mu    sync.Mutex
	conns int
	// sent is how many octets of the literal were sent before the cut.
	sent int
}

func startCutProxy(t *testing.T, p *cutProxy) string {
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
			p.mu.Lock()
			p.conns++
			first := p.conns == 1
			p.mu.Unlock()
			go p.serve(c.(*net.TCPConn), first)
		}
	}()
	return ln.Addr().String()
}

func (p *cutProxy) serve(cli *net.TCPConn, cutThis bool) {
	marker := cmp.Or(p.marker, bodyMarker)
	srv, err := net.Dial("tcp", p.addr)
	if err != nil {
		cli.Close()
		return
	}
	deadline := time.Now().Add(20 * time.Second)
	cli.SetDeadline(deadline)
	srv.SetDeadline(deadline)
	go func() {
		io.Copy(srv, cli)
		srv.Close()
	}()
	if !cutThis {
		io.Copy(cli, srv)
		cli.Close()
		return
	}
	var seen []byte
	written := 0
	buf := make([]byte, 4096)
	for {
		n, rerr := srv.Read(buf)
		seen = append(seen, buf[:n]...)
		if at, ok := p.cutAt(seen); ok {
			if at < written {
				panic("cut point already forwarded")
			}
			if at <= len(seen) {
				cli.Write(seen[written:at])
				srv.Close()
				if p.rst {
					cli.SetLinger(0)
					cli.Close()
				} else {
					// FIN; the client still reads what it sent.
					cli.CloseWrite()
				}
				return
			}
		}
		// Hold back a partial marker so that a cut just after it is
		// still possible.
		upto := len(seen)
		for k := len(marker) - 1; k > 0; k-- {
			if bytes.HasSuffix(seen, []byte(marker[:k])) {
				upto -= k
				break
			}
		}
		if upto > written {
			if _, err := cli.Write(seen[written:upto]); err != nil {
				srv.Close()
				return
			}
			written = upto
		}
		if rerr != nil {
			cli.Close()
			return
		}
	}
}

// cutAt finds the cut offset in the stream seen so far.
func (p *cutProxy) cutAt(seen []byte) (int, bool) {
	bodyMarker := cmp.Or(p.marker, bodyMarker)
	off := 0
	for i := 0; i < p.nth; i++ {
		j := bytes.Index(seen[off:], []byte(bodyMarker))
		if j < 0 {
			return 0, false
		}
		off += j + len(bodyMarker)
	}
	marker := off - len(bodyMarker)
	start, size := -1, -1
	if end := bytes.Index(seen[off:], []byte("}\r\n")); end >= 0 {
		size, _ = strconv.Atoi(string(seen[off : off+end]))
		start = off + end + 3
	}
	at, ok := p.cut(marker, start, size)
	if ok && start >= 0 {
		p.mu.Lock()
		p.sent = max(0, at-start)
		p.mu.Unlock()
	}
	return at, ok
}

// TestTruncatedLiteral: a connection that ends inside a body literal,
// whether in order (FIN, which go-imap's literal reader reports as io.EOF)
// or by a reset, fails Fetch with a retryable error; the partial body is
// never delivered as a message, and a second Fetch (the engine's retry on
// a fresh connection) delivers every message whole.
func TestTruncatedLiteral(t *testing.T) {
	const big = 22044
	bodies := []string{
		"Message-ID: <1@x>\r\nSubject: one\r\n\r\nfirst\r\n",
		"Message-ID: <2@x>\r\nSubject: two\r\n\r\n" + strings.Repeat("0123456789abcde\r\n", big/17-3),
		"Message-ID: <3@x>\r\nSubject: three\r\n\r\nthird\r\n",
	}
	bodies[1] += strings.Repeat("z", big-len(bodies[1]))
	servers := []struct {
		name string
		// start returns the server's address and INBOX.
		start func(t *testing.T) (string, source.Folder)
	}{
		{"memserver", func(t *testing.T) (string, source.Folder) {
			srv := imaptest.Start(t, imaptest.Options{})
			for i, b := range bodies {
				_, err := srv.User.Append("INBOX", lit{bytes.NewReader([]byte(b))}, &imap.AppendOptions{Time: time.Date(2020, 1, 1, 0, 0, i, 0, time.UTC)})
				if err != nil {
					t.Fatal(err)
				}
			}
			return srv.Addr, source.Folder{Name: "INBOX"}
		}},
		// The body arrives before the UID: the spool path.
		{"body-first", func(t *testing.T) (string, source.Folder) {
			m := map[uint32]string{}
			for i, b := range bodies {
				m[uint32(i+1)] = b
			}
			return fakeServer(t, m), source.Folder{Name: "INBOX", Validity: 7}
		}},
	}
	cuts := []struct {
		name   string
		cut    func(marker, start, size int) (int, bool)
		inBody bool // the literal's header arrived
	}{
		{"in the header", func(m, _, _ int) (int, bool) { return m + len(bodyMarker) + 1, true }, false},
		{"after the first octet", func(_, s, _ int) (int, bool) { return s + 1, s >= 0 }, true},
		{"in the middle", func(_, s, n int) (int, bool) { return s + n/2, s >= 0 }, true},
		{"one octet short", func(_, s, n int) (int, bool) { return s + n - 1, s >= 0 }, true},
	}
	fns := []struct {
		name string
		// lenient ignores the read error, as a careless caller would.
		lenient bool
	}{{"strict fn", false}, {"lenient fn", true}}
	for _, sv := range servers {
		for _, cut := range cuts {
			for _, rst := range []bool{false, true} {
				for _, fnk := range fns {
					mode := "FIN"
					if rst {
						mode = "RST"
					}
					t.Run(fmt.Sprintf("%s/%s/%s/%s", sv.name, cut.name, mode, fnk.name), func(t *testing.T) {
						addr, f := sv.start(t)
						p := &cutProxy{addr: addr, nth: 2, cut: cut.cut, rst: rst}
						cfg := imapconn.Config{Addr: startCutProxy(t, p), Security: imapconn.None,
							User: imaptest.User, Password: imaptest.Password, Timeout: 5 * time.Second}
						s := openSrc(t, cfg)
						ids := []string{"1", "2", "3"}
						whole := map[string]int{}
						fn := func(m source.Meta, r io.Reader) error {
							b, err := io.ReadAll(r)
							i, _ := strconv.Atoi(m.ID)
							if err == nil {
								if string(b) != bodies[i-1] {
									t.Errorf("message %s delivered without error with %d of %d octets", m.ID, len(b), len(bodies[i-1]))
								}
								whole[m.ID]++
							} else if fnk.lenient {
								return nil
							}
							return err
						}
						err := s.Fetch(context.Background(), f, ids, fn)
						if err == nil {
							t.Fatalf("Fetch through a cut connection: no error (delivered whole: %v)", whole)
						}
						if !failure.Retryable(err) {
							t.Errorf("error %q (%v) is not retryable", err, failure.KindOf(err))
						}
						if k := failure.KindOf(err); cut.inBody && k != failure.Temporary {
							t.Errorf("error %q is %v, want temporary", err, k)
						}
						// A reset may discard what the client has not read yet.
						if whole["2"] != 0 || whole["3"] != 0 || (!rst && whole["1"] != 1) {
							t.Errorf("delivered whole: %v, want only message 1", whole)
						}
						if cut.inBody && !rst {
							p.mu.Lock()
							want := fmt.Sprintf("got %d of %d octets: unexpected EOF", p.sent, big)
							p.mu.Unlock()
							if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), want) {
								t.Errorf("error %q, want io.ErrUnexpectedEOF and %q", err, want)
							}
						}
						t.Logf("error: %v", err)
						// The retry, on a new connection, gets every message whole.
						clear(whole)
						if err := s.Fetch(context.Background(), f, ids, fn); err != nil {
							t.Fatalf("second Fetch: %v", err)
						}
						if len(whole) != 3 {
							t.Errorf("second Fetch delivered %v", whole)
						}
					})
				}
			}
		}
	}
}
