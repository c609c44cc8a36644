package imap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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

func identities(t *testing.T, s *Source, f source.Folder) []source.Identity {
	t.Helper()
	var out []source.Identity
	if err := s.Identities(context.Background(), f, func(id source.Identity) error {
		out = append(out, id)
		return nil
	}); err != nil {
		t.Fatalf("Identities: %v", err)
	}
	return out
}

func TestIdentities(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	msgs := []struct{ raw, msgID string }{
		{"Message-ID: <a@x>\r\nSubject: plain\r\n\r\nbody\r\n", "<a@x>"},
		{"Subject: none\r\n\r\nno id\r\n", ""},
		{"Subject: folded\r\nMessage-ID:\r\n <folded@x>  \r\n\r\nbody\r\n", "<folded@x>"},
		{"message-id: <twin@x>\r\n\r\none\r\n", "<twin@x>"},
		{"Message-Id: <twin@x>\r\n\r\ntwo, longer\r\n", "<twin@x>"},
		{"Subject: body mentions it\r\n\r\nMessage-ID: <not-a-header@x>\r\n", ""},
	}
	if err := srv.User.Create("F", nil); err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		_, err := srv.User.Append("F", lit{bytes.NewReader([]byte(m.raw))}, &imap.AppendOptions{Time: time.Date(2021, 3, 4, 5, 6, i, 0, time.FixedZone("", 3600))})
		if err != nil {
			t.Fatal(err)
		}
	}
	s := openSrc(t, srv.Config())
	f := folder(t, s, "F")
	ids := identities(t, s, f)
	metas, err := s.List(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(msgs) || len(metas) != len(msgs) {
		t.Fatalf("%d identities, %d metas, want %d", len(ids), len(metas), len(msgs))
	}
	for i, id := range ids {
		m := metas[i]
		if id.ID != m.ID || id.Size != m.Size || !id.Date.Equal(m.Received) || id.MessageID != msgs[i].msgID {
			t.Errorf("identity %d = %+v, want ID %s size %d date %v Message-ID %q", i, id, m.ID, m.Size, m.Received, msgs[i].msgID)
		}
	}
	// An empty folder has none, and is not an error.
	if got := identities(t, s, folder(t, s, "INBOX")); len(got) != 0 {
		t.Errorf("INBOX: %v", got)
	}
	// A stale validity is reported as List reports it.
	stale := f
	stale.Validity++
	var vc *ValidityChangedError
	if err := s.Identities(context.Background(), stale, func(source.Identity) error { return nil }); !errors.As(err, &vc) {
		t.Errorf("Identities with a stale validity = %v", err)
	}
	// fn's error stops it and is returned as is; the session recovers.
	boom := errors.New("boom")
	n := 0
	err = s.Identities(context.Background(), f, func(source.Identity) error { n++; return boom })
	if err != boom || n != 1 {
		t.Errorf("Identities with failing fn = %v after %d calls", err, n)
	}
	if got := identities(t, s, f); len(got) != len(msgs) {
		t.Errorf("after fn failed: %d identities", len(got))
	}
}

// TestIdentitiesCut: a connection closed in order inside a header literal
// fails Identities with a temporary error; the next call is whole.
func TestIdentitiesCut(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	load(t, srv, "F", 5)
	p := &cutProxy{addr: srv.Addr, nth: 3, marker: ")] {",
		cut: func(_, start, n int) (int, bool) { return start + n/2, start >= 0 }}
	cfg := srv.Config()
	cfg.Addr = startCutProxy(t, p)
	s := openSrc(t, cfg)
	f := folder(t, s, "F")
	n := 0
	err := s.Identities(context.Background(), f, func(source.Identity) error { n++; return nil })
	if !errors.Is(err, io.ErrUnexpectedEOF) || !failure.Is(err, failure.Temporary) || n != 2 {
		t.Fatalf("Identities through a cut = %v (%v) after %d identities", err, failure.KindOf(err), n)
	}
	if got := identities(t, s, f); len(got) != 5 {
		t.Errorf("after the cut: %d identities", len(got))
	}
}

// TestIdentitiesBodyFirst: a server that sends the header literal before
// the UID (which beta.8 drops from a UID FETCH) loses no message.
func TestIdentitiesBodyFirst(t *testing.T) {
	bodies := map[uint32]string{1: "Message-ID: <1@x>\r\n\r\n", 2: "Subject: no id\r\n\r\n", 3: "Message-ID: <3@x>\r\n\r\n"}
	s := openSrc(t, imapconn.Config{Addr: fakeServer(t, bodies), Security: imapconn.None, User: "u", Password: "p", Timeout: 5 * time.Second})
	got := identities(t, s, source.Folder{Name: "INBOX", Validity: 7})
	want := "1 <1@x>|2 |3 <3@x>"
	var parts []string
	for _, id := range got {
		parts = append(parts, id.ID+" "+id.MessageID)
	}
	if strings.Join(parts, "|") != want {
		t.Errorf("identities %q, want %q", strings.Join(parts, "|"), want)
	}
}

// TestIdentitiesIncomplete: a server that answers for fewer messages than
// EXAMINE counted makes Identities fail rather than leave one out.
func TestIdentitiesIncomplete(t *testing.T) {
	bodies := map[uint32]string{1: "Message-ID: <1@x>\r\n\r\n", 2: "Message-ID: <2@x>\r\n\r\n", 4: "Message-ID: <4@x>\r\n\r\n"}
	s := openSrc(t, imapconn.Config{Addr: fakeServer(t, bodies), Security: imapconn.None, User: "u", Password: "p", Timeout: 5 * time.Second})
	n := 0
	err := s.Identities(context.Background(), source.Folder{Name: "INBOX", Validity: 7}, func(source.Identity) error { n++; return nil })
	if err == nil || !strings.Contains(err.Error(), "answered for 2 of its 3 messages") {
		t.Errorf("Identities = %v after %d identities, want an error", err, n)
	}
}

// TestIdentitiesStreams: a folder of 3,000 messages takes one FETCH, and
// fn sees the first identity while the server's answer is still held back
// at its 100th response (nothing collects the folder first).
func TestIdentitiesStreams(t *testing.T) {
	const n = 3000
	srv := imaptest.Start(t, imaptest.Options{})
	load(t, srv, "Big", n)
	release := make(chan struct{})
	p := &gateProxy{addr: srv.Addr, marker: "* 100 FETCH", release: release}
	cfg := srv.Config()
	cfg.Addr = p.start(t)
	s := openSrc(t, cfg)
	f := folder(t, s, "Big")
	var once sync.Once
	i := 0
	err := s.Identities(context.Background(), f, func(id source.Identity) error {
		once.Do(func() { close(release) })
		i++
		if want := fmt.Sprintf("<%d@x>", i-1); id.ID != fmt.Sprint(i) || id.MessageID != want {
			return fmt.Errorf("identity %d = %+v, want Message-ID %s", i, id, want)
		}
		return nil
	})
	if err != nil || i != n {
		t.Fatalf("Identities = %v after %d identities", err, i)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.timedOut {
		t.Error("fn was not called before the whole answer arrived")
	}
	if p.fetches != 1 {
		t.Errorf("%d FETCH commands, want 1", p.fetches)
	}
}

// gateProxy forwards connections to addr, counts the client's FETCH
// commands, and holds the server's stream back at the first marker until
// release is closed (or 15 s passed: timedOut).
type gateProxy struct {
	addr    string
	marker  string
	release chan struct{}

	mu       sync.Mutex
	fetches  int
	timedOut bool
}

func (p *gateProxy) start(t *testing.T) string {
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
			go p.serve(c)
		}
	}()
	return ln.Addr().String()
}

func (p *gateProxy) serve(cli net.Conn) {
	defer cli.Close()
	srv, err := net.Dial("tcp", p.addr)
	if err != nil {
		return
	}
	defer srv.Close()
	deadline := time.Now().Add(20 * time.Second)
	cli.SetDeadline(deadline)
	srv.SetDeadline(deadline)
	go func() {
		r := bufio.NewReader(cli)
		for {
			line, err := r.ReadString('\n')
			if f := strings.Fields(line); len(f) > 1 && (strings.EqualFold(f[1], "FETCH") || strings.EqualFold(f[1], "UID") && len(f) > 2 && strings.EqualFold(f[2], "FETCH")) {
				p.mu.Lock()
				p.fetches++
				p.mu.Unlock()
			}
			if _, werr := io.WriteString(srv, line); werr != nil || err != nil {
				srv.Close()
				return
			}
		}
	}()
	var seen []byte
	written := 0
	gated := false
	buf := make([]byte, 32<<10)
	for {
		n, rerr := srv.Read(buf)
		seen = append(seen, buf[:n]...)
		upto := len(seen)
		if !gated {
			if i := bytes.Index(seen[written:], []byte(p.marker)); i >= 0 {
				cli.Write(seen[written : written+i])
				written += i
				select {
				case <-p.release:
				case <-time.After(15 * time.Second):
					p.mu.Lock()
					p.timedOut = true
					p.mu.Unlock()
				}
				gated = true
			} else {
				for k := len(p.marker) - 1; k > 0; k-- {
					if bytes.HasSuffix(seen, []byte(p.marker[:k])) {
						upto -= k
						break
					}
				}
			}
		}
		if upto > written {
			if _, err := cli.Write(seen[written:upto]); err != nil {
				return
			}
			written = upto
		}
		if gated {
			// Past the gate: keep memory flat.
			seen, written = seen[:0], 0
		}
		if rerr != nil {
			return
		}
	}
}
