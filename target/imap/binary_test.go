package imap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	srcimap "github.com/mailferry/mailferry/source/imap"
	"github.com/mailferry/mailferry/target"
)

func nulBody(i int) []byte {
	return []byte(fmt.Sprintf("Message-ID: <n%d@x>\r\nSubject: %d\r\n\r\nNUL \x00 here\r\n\x00\x00%d\r\n", i, i, i))
}

// TestSendBinaryLiteral8: with BINARY, the messages marked Binary go as
// literal8 ~{n+} and the others as {n+}, in one MULTIAPPEND, byte for byte.
func TestSendBinaryLiteral8(t *testing.T) {
	f := &fakeMulti{answer: okUIDs, caps: " BINARY"}
	p := dialPipe(t, f.start(t))
	ctx := context.Background()
	var waits []func() (string, error)
	var sent [][]byte
	for i := range 9 {
		b, bin := fakeBody(i), i%3 == 1
		if bin {
			b = nulBody(i)
		}
		sent = append(sent, b)
		d := target.Delivery{Folder: "INBOX", Size: int64(len(b)), Binary: bin}
		w, err := p.send(ctx, "INBOX", d, nil, bytes.NewReader(b), func(err error) error { return err })
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		waits = append(waits, w)
	}
	for i, w := range waits {
		if r, err := w(); err != nil || r != fmt.Sprintf("9:%d", 100+i) {
			t.Fatalf("message %d: %q, %v", i, r, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.parseErr != nil {
		t.Fatal(f.parseErr)
	}
	if len(f.reqs) != 1 || len(f.reqs[0].msgs) != 9 {
		t.Fatalf("%d commands, want one MULTIAPPEND of 9", len(f.reqs))
	}
	for i, m := range f.reqs[0].msgs {
		if m.binary != (i%3 == 1) {
			t.Errorf("message %d: literal8 %v", i, m.binary)
		}
		if !bytes.Equal(m.body, sent[i]) {
			t.Errorf("message %d: body differs: %q", i, m.body)
		}
	}
}

// TestSendBinaryWithoutBINARY: a message marked Binary is refused without
// a byte written when the server lacks BINARY; the session goes on.
func TestSendBinaryWithoutBINARY(t *testing.T) {
	f := &fakeMulti{answer: okUIDs}
	p := dialPipe(t, f.start(t))
	ctx := context.Background()
	var waits []func() (string, error)
	for i := range 3 {
		b := fakeBody(i)
		d := target.Delivery{Folder: "INBOX", Size: int64(len(b))}
		if i == 1 {
			b = nulBody(i)
			d = target.Delivery{Folder: "INBOX", Size: int64(len(b)), Binary: true}
		}
		w, err := p.send(ctx, "INBOX", d, nil, bytes.NewReader(b), func(err error) error { return err })
		if i == 1 {
			var rej *target.Rejected
			if !errors.As(err, &rej) || failure.KindOf(err) != failure.Message {
				t.Fatalf("Binary without BINARY: %v (kind %v)", err, failure.KindOf(err))
			}
			continue
		}
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		waits = append(waits, w)
	}
	for i, w := range waits {
		if _, err := w(); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.reqs {
		for _, m := range r.msgs {
			n++
			if m.binary || bytes.IndexByte(m.body, 0) >= 0 {
				t.Errorf("a NUL message was sent: %q", m.body)
			}
		}
	}
	if n != 2 || f.parseErr != nil {
		t.Fatalf("server got %d messages (%v), want 2", n, f.parseErr)
	}
}

// TestBinaryMemServer: against go-imap's server, AppendsBinary is true only
// with BINARY and LITERAL+ (the store session); then Send and Put store a
// NUL message exactly; otherwise both refuse it without an APPEND.
func TestBinaryMemServer(t *testing.T) {
	base := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapNamespace: {}}
	with := func(cs ...imap.Cap) imap.CapSet {
		out := imap.CapSet{}
		for c := range base {
			out[c] = struct{}{}
		}
		for _, c := range cs {
			out[c] = struct{}{}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		caps imap.CapSet
		ok   bool
	}{
		{"BINARY and LITERAL+", with(imap.CapBinary, imap.CapLiteralPlus), true},
		{"LITERAL+ only", with(imap.CapLiteralPlus), false},
		{"BINARY only", with(imap.CapBinary), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := imaptest.Start(t, imaptest.Options{Caps: tc.caps})
			ctx := context.Background()
			tg := open(t, srv)
			if got := tg.AppendsBinary(); got != tc.ok {
				t.Fatalf("AppendsBinary() = %v", got)
			}
			b0, b1 := nulBody(0), nulBody(1)
			d0, d1 := delivery("INBOX", b0, "<n0@x>"), delivery("INBOX", b1, "<n1@x>")
			d0.Binary, d1.Binary = true, true
			var r0, r1 string
			wait, err := tg.Send(ctx, d0, bytes.NewReader(b0))
			if err == nil {
				r0, err = wait()
			}
			if err == nil {
				r1, err = tg.Put(ctx, d1, bytes.NewReader(b1))
			}
			if !tc.ok {
				var rej *target.Rejected
				if !errors.As(err, &rej) || failure.KindOf(err) != failure.Message {
					t.Fatalf("store without BINARY: %v (kind %v)", err, failure.KindOf(err))
				}
				if _, err := tg.Put(ctx, d1, bytes.NewReader(b1)); !errors.As(err, &rej) {
					t.Fatalf("Put without BINARY: %v", err)
				}
				if srv.Appends != 0 {
					t.Fatalf("%d APPENDs reached the server", srv.Appends)
				}
				return
			}
			if err != nil || r0 == "" || r1 == "" || r0 == r1 {
				t.Fatalf("stores: %q %q %v", r0, r1, err)
			}
			if tg.AppendsBinary() != true {
				t.Error("AppendsBinary() false once the store session is up")
			}
			src, err := srcimap.Open(ctx, srv.Config())
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			metas, err := src.List(ctx, mailbox.Folder{Name: "INBOX"})
			if err != nil || len(metas) != 2 {
				t.Fatalf("INBOX: %d messages, %v", len(metas), err)
			}
			var got [][]byte
			for _, m := range metas {
				err := src.Fetch(ctx, mailbox.Folder{Name: "INBOX"}, []string{m.ID}, func(_ mailbox.Meta, r io.Reader) error {
					b, err := io.ReadAll(r)
					got = append(got, b)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if len(got) != 2 || !bytes.Equal(got[0], b0) || !bytes.Equal(got[1], b1) {
				t.Fatalf("stored %q", got)
			}
		})
	}
}
