package imap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/target"
)

func TestParseQuota(t *testing.T) {
	for _, c := range []struct {
		line string
		want quotaRoot
		ok   bool
	}{
		{`* QUOTA INBOX (STORAGE 10 100)`, quotaRoot{"INBOX", 10 << 10, 100 << 10}, true},
		{`* QUOTA "User quota" (MESSAGE 1 5 STORAGE 7 9)`, quotaRoot{"User quota", 7 << 10, 9 << 10}, true},
		{`* quota "a \"b\"" (storage 0 1)`, quotaRoot{`a "b"`, 0, 1 << 10}, true},
		{`* QUOTA "" (MESSAGE 1 2)`, quotaRoot{}, false},
		{`* QUOTA INBOX (STORAGE 1 0)`, quotaRoot{}, false},
		{`* QUOTAROOT INBOX INBOX`, quotaRoot{}, false},
	} {
		got, ok := parseQuota(c.line)
		if ok != c.ok || got != c.want {
			t.Errorf("parseQuota(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

func TestParseStatusLimit(t *testing.T) {
	for _, c := range []struct {
		line string
		want int64
		ok   bool
	}{
		{`* STATUS INBOX (APPENDLIMIT 1048576)`, 1048576, true},
		{`* STATUS "A b" (MESSAGES 3 APPENDLIMIT 10)`, 10, true},
		{`* STATUS INBOX (APPENDLIMIT NIL)`, 0, false},
		{`* STATUS INBOX (MESSAGES 3)`, 0, false},
		{`* LIST () "." INBOX`, 0, false},
	} {
		got, ok := parseStatusLimit(c.line)
		if ok != c.ok || got != c.want {
			t.Errorf("parseStatusLimit(%q) = %d, %v; want %d, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

// TestQuotaClassification: a refused APPEND is over quota by its code, its
// text, or (a plain NO) by GETQUOTAROOT when the message does not fit; a
// quota root covering the account makes it ErrAccountFull.
func TestQuotaClassification(t *testing.T) {
	const size = 4000
	roots := func(rs ...quotaRoot) quotaLookup {
		return func(context.Context, string) ([]quotaRoot, error) { return rs, nil }
	}
	full := func(name string) quotaRoot { return quotaRoot{name, 99 << 10, 100 << 10} }
	room := func(name string) quotaRoot { return quotaRoot{name, 10 << 10, 100 << 10} }
	no := func(code imap.ResponseCode, text string) error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	const (
		rejected = iota
		folder
		account
	)
	for _, c := range []struct {
		name   string
		folder string
		err    error
		lookup quotaLookup
		want   int
	}{
		{"plain NO, account root full", "Sent", no("", "Mailbox is full"), roots(full("INBOX")), account},
		{"plain NO, Dovecot's root full", "INBOX", no("", "Mailbox is full"), roots(full("User quota")), account},
		{"plain NO, the folder's own root full", "Archive/2024", no("", "Mailbox is full"), roots(room("INBOX"), full("INBOX.Archive")), folder},
		{"plain NO, room left", "Sent", no("", "Mailbox is full"), roots(room("INBOX")), rejected},
		{"plain NO, no QUOTA", "Sent", no("", "Mailbox is full"), nil, rejected},
		{"plain NO, lookup fails", "Sent", no("", "Mailbox is full"), func(context.Context, string) ([]quotaRoot, error) {
			return nil, errors.New("BAD")
		}, rejected},
		{"TOOBIG", "Sent", no(imap.ResponseCodeTooBig, "too big"), roots(full("INBOX")), rejected},
		{"Cyrus' text, no QUOTA", "Sent", no("", "Over quota"), nil, folder},
		{"Cyrus' text, account root (rounded usage)", "Sent", no("", "Over quota"), roots(room("INBOX")), account},
		{"OVERQUOTA, folder root", "Lists", no(imap.ResponseCodeOverQuota, "full"), roots(full("INBOX.Lists")), folder},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := &Target{names: imapconn.Names{Delim: '.', Prefix: "INBOX."}}
			d := target.Delivery{Folder: c.folder, Size: size}
			err := tg.appendErr(context.Background(), d, c.err, c.lookup)
			var got int
			switch {
			case failure.KindOf(err) == failure.Quota && errors.Is(err, target.ErrAccountFull):
				got = account
			case failure.KindOf(err) == failure.Quota && errors.Is(err, target.ErrFolderFull):
				got = folder
			case failure.KindOf(err) == failure.Message:
				var r *target.Rejected
				if !errors.As(err, &r) {
					t.Fatalf("refused without Rejected: %v", err)
				}
				got = rejected
			default:
				t.Fatalf("unexpected: %v (kind %v)", err, failure.KindOf(err))
			}
			if got != c.want {
				t.Errorf("got %d, want %d: %v", got, c.want, err)
			}
		})
	}
}

// TestPipeQuotaRoot: over the store session, a plain NO is followed by a
// GETQUOTAROOT on that same session, which decides; a refusal that says
// over quota reuses the root already found full.
func TestPipeQuotaRoot(t *testing.T) {
	var usage atomic.Int64
	var lookups atomic.Int32
	f := &fakeMulti{caps: " QUOTA", answer: func(appendReq, int) string { return "NO Mailbox is full" }}
	f.other = func(tag, line string) string {
		if !strings.HasPrefix(line, "GETQUOTAROOT ") {
			return tag + " BAD unknown\r\n"
		}
		lookups.Add(1)
		return fmt.Sprintf("* QUOTAROOT Sent \"\"\r\n* QUOTA \"\" (STORAGE %d 100)\r\n%s OK done\r\n", usage.Load(), tag)
	}
	p := dialPipe(t, f.start(t))
	tg := &Target{names: imapconn.Names{Delim: '/'}}
	ctx := context.Background()
	send := func() error {
		b := fakeBody(3)
		d := target.Delivery{Folder: "Sent", Size: int64(len(b))}
		wait, err := p.send(ctx, "Sent", d, nil, bytes.NewReader(b), func(err error) error {
			return tg.appendErr(ctx, d, err, p.quotaLookup())
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = wait()
		return err
	}
	usage.Store(100)
	if err := send(); failure.KindOf(err) != failure.Quota || !errors.Is(err, target.ErrAccountFull) {
		t.Errorf("full account: %v (kind %v)", err, failure.KindOf(err))
	}
	usage.Store(1)
	if err := send(); failure.KindOf(err) != failure.Message {
		t.Errorf("room left: %v (kind %v)", err, failure.KindOf(err))
	}
	if n := lookups.Load(); n != 2 {
		t.Errorf("%d GETQUOTAROOT, want 2", n)
	}
	// Said over quota: the root found full before still is, no lookup.
	f.mu.Lock()
	f.answer = func(appendReq, int) string { return "NO Over quota" }
	f.mu.Unlock()
	for range 3 {
		if err := send(); failure.KindOf(err) != failure.Quota || !errors.Is(err, target.ErrAccountFull) {
			t.Errorf("over quota again: %v (kind %v)", err, failure.KindOf(err))
		}
	}
	if n := lookups.Load(); n != 2 {
		t.Errorf("%d GETQUOTAROOT, want still 2", n)
	}
	if err := p.broken(); err != nil {
		t.Errorf("the session broke: %v", err)
	}
}

// TestRefusedMultiAppendThenSingles: the messages of a refused MULTIAPPEND
// say ErrNotStored, and when sent again (as the engine does, without a
// lookup) they go as single APPENDs on the same session.
func TestRefusedMultiAppendThenSingles(t *testing.T) {
	f := &fakeMulti{}
	f.answer = func(req appendReq, first int) string {
		if len(req.msgs) > 1 {
			return "NO Over quota"
		}
		return okUIDs(req, first)
	}
	p := dialPipe(t, f.start(t))
	n := 2 * maxMulti
	_, errs := sendAll(t, p, n, func(int) string { return "INBOX" })
	for i, err := range errs {
		if !errors.Is(err, target.ErrNotStored) || !failure.Retryable(err) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	f.mu.Lock()
	before := len(f.reqs)
	f.mu.Unlock()
	receipts, errs := sendAll(t, p, n, func(int) string { return "INBOX" })
	for i := range n {
		if errs[i] != nil || receipts[i] == "" {
			t.Errorf("resent %d: %q, %v", i, receipts[i], errs[i])
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.reqs[before:] {
		if len(r.msgs) != 1 {
			t.Fatalf("a resent message went in a MULTIAPPEND of %d", len(r.msgs))
		}
	}
	if len(f.reqs)-before != n {
		t.Errorf("%d APPENDs for %d messages", len(f.reqs)-before, n)
	}
}

type limitSession struct {
	*rwSession
	limit uint32
}

func (l *limitSession) AppendLimit() uint32 { return l.limit }

// countConn counts the bytes a client writes.
type countConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// TestAppendLimit: a message over the server's APPENDLIMIT is refused as a
// message failure before a byte of it is sent, on both store paths, and
// the session stays.
func TestAppendLimit(t *testing.T) {
	const limit = 1 << 20
	for _, caps := range []struct {
		name string
		set  imap.CapSet
	}{{"main-session", capsPlain}, {"store-session", capsLiteral}} {
		t.Run(caps.name, func(t *testing.T) {
			srv := startRW(t, caps.set, nil)
			srv.limit.Store(limit)
			var sent atomic.Int64
			cfg := srv.config()
			dial := cfg.Dialer
			cfg.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return countConn{c, &sent}, nil
			}
			ctx := context.Background()
			tg, err := Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			small := fakeBody(1)
			if _, err := store(ctx, tg, delivery("INBOX", small, "<m1@x>"), small); err != nil {
				t.Fatal(err)
			}
			if l, err := tg.AppendLimit(ctx, "INBOX"); err != nil || l != limit {
				t.Errorf("AppendLimit = %d, %v", l, err)
			}
			big := append(bytes.Repeat([]byte("x"), 2<<20), "\r\n"...)
			d := delivery("INBOX", big, "<big@x>")
			dials := srv.dials.Load()
			for name, do := range map[string]func() error{
				"Send": func() error { _, err := store(ctx, tg, d, big); return err },
				"Put":  func() error { _, err := tg.Put(ctx, d, bytes.NewReader(big)); return err },
			} {
				before := sent.Load()
				err := do()
				var r *target.Rejected
				if failure.KindOf(err) != failure.Message || !errors.As(err, &r) ||
					r.Reason != fmt.Sprintf("larger than the server's APPENDLIMIT (%d > %d bytes)", len(big), limit) {
					t.Errorf("%s: %v (kind %v)", name, err, failure.KindOf(err))
				}
				if n := sent.Load() - before; n > 0 {
					t.Errorf("%s: %d bytes sent for a refused message", name, n)
				}
			}
			if _, err := store(ctx, tg, delivery("INBOX", small, "<m2@x>"), small); err != nil {
				t.Fatal(err)
			}
			if n := srv.dials.Load() - dials; n != 0 {
				t.Errorf("%d new connections", n)
			}
		})
	}
}
