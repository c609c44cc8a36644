package imap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	srcimap "github.com/mailferry/mailferry/source/imap"
	"github.com/mailferry/mailferry/target"
)

func TestParseAppendUID(t *testing.T) {
	for _, tc := range []struct {
		args string
		n    int
		v    uint32
		uids []imap.UID
	}{
		{"7 12", 1, 7, []imap.UID{12}},
		{"7 10:12", 3, 7, []imap.UID{10, 11, 12}},
		{"7 12:10", 3, 7, []imap.UID{10, 11, 12}},
		{"7 4,9:10", 3, 7, []imap.UID{4, 9, 10}},
		{"7 10:12", 2, 0, nil}, // more UIDs than messages
		{"7 10:11", 3, 0, nil}, // fewer
		{"7 1:4294967295", 3, 0, nil},
		{"x 10", 1, 0, nil},
		{"7", 1, 0, nil},
		{"7 0", 1, 0, nil},
	} {
		v, uids := parseAppendUID(tc.args, tc.n)
		if v != tc.v || fmt.Sprint(uids) != fmt.Sprint(tc.uids) {
			t.Errorf("parseAppendUID(%q, %d) = %d %v, want %d %v", tc.args, tc.n, v, uids, tc.v, tc.uids)
		}
	}
}

// appendReq is one APPEND command as a fake server parsed it.
type appendReq struct {
	tag, mailbox string
	msgs         []fakeMsg
}

type fakeMsg struct {
	flags, date string
	body        []byte
	binary      bool // sent as a literal8
}

// fakeMulti is a scripted IMAP server with LITERAL+ and MULTIAPPEND that
// parses what it gets strictly and answers APPENDs with answer(req, uid of
// its first message).
type fakeMulti struct {
	mu       sync.Mutex
	reqs     []appendReq
	selects  []string
	nextUID  int
	answer   func(req appendReq, first int) string // status after the tag; "CLOSE" hangs up
	discard  bool                                  // keep no request (benchmarks)
	caps     string                                // more capabilities (" BINARY")
	parseErr error
	// other answers the commands it does not know (nil: BAD).
	other func(tag, line string) string
}

var (
	appendHead = regexp.MustCompile(`^(\S+) APPEND ("(?:[^"\\]|\\.)*"|[^ ]+)(.*)$`)
	msgHead    = regexp.MustCompile(`^ (\([^)]*\))( "[^"]+")? (~?)\{(\d+)\+\}$`)
)

func (f *fakeMulti) start(t testing.TB) imapconn.Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f.nextUID = 100
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("* OK [CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND UIDPLUS AUTH=PLAIN SASL-IR" + f.caps + "] fake\r\n"))
		r := bufio.NewReader(c)
		fail := func(err error) {
			f.mu.Lock()
			f.parseErr = err
			f.mu.Unlock()
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			tag, rest, _ := strings.Cut(line, " ")
			cmd, _, _ := strings.Cut(rest, " ")
			switch strings.ToUpper(cmd) {
			case "AUTHENTICATE":
				c.Write([]byte(tag + " OK logged in\r\n"))
			case "CAPABILITY":
				c.Write([]byte("* CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND UIDPLUS" + f.caps + "\r\n" + tag + " OK\r\n"))
			case "SELECT":
				f.mu.Lock()
				f.selects = append(f.selects, strings.TrimPrefix(rest, "SELECT "))
				f.mu.Unlock()
				c.Write([]byte("* 0 EXISTS\r\n" + tag + " OK [READ-WRITE] selected\r\n"))
			case "LOGOUT":
				c.Write([]byte("* BYE bye\r\n" + tag + " OK\r\n"))
				return
			case "APPEND":
				m := appendHead.FindStringSubmatch(line)
				if m == nil {
					fail(fmt.Errorf("bad APPEND line %q", line))
					return
				}
				req := appendReq{tag: m[1], mailbox: m[2]}
				head := m[3]
				for {
					mh := msgHead.FindStringSubmatch(head)
					if mh == nil {
						fail(fmt.Errorf("bad message head %q", head))
						return
					}
					n, _ := strconv.Atoi(mh[4])
					body := make([]byte, n)
					if _, err := io.ReadFull(r, body); err != nil {
						return
					}
					req.msgs = append(req.msgs, fakeMsg{flags: mh[1], date: strings.TrimSpace(mh[2]), body: body, binary: mh[3] == "~"})
					head, err = r.ReadString('\n')
					if err != nil {
						return
					}
					head = strings.TrimRight(head, "\r\n")
					if head == "" {
						break
					}
				}
				f.mu.Lock()
				if !f.discard {
					f.reqs = append(f.reqs, req)
				}
				first := f.nextUID
				ans := f.answer(req, first)
				if strings.HasPrefix(ans, "OK") {
					f.nextUID += len(req.msgs)
				}
				f.mu.Unlock()
				if ans == "CLOSE" {
					return
				}
				c.Write([]byte("* 1 EXISTS\r\n" + req.tag + " " + ans + "\r\n"))
			default:
				if f.other != nil {
					c.Write([]byte(f.other(tag, rest)))
					continue
				}
				c.Write([]byte(tag + " BAD unknown\r\n"))
			}
		}
	}()
	return imapconn.Config{Addr: ln.Addr().String(), Security: imapconn.None, User: "u", Password: "p", Timeout: 3 * time.Second}
}

func okUIDs(req appendReq, first int) string {
	if len(req.msgs) == 1 {
		return fmt.Sprintf("OK [APPENDUID 9 %d] done", first)
	}
	return fmt.Sprintf("OK [APPENDUID 9 %d:%d] done", first, first+len(req.msgs)-1)
}

func fakeBody(i int) []byte {
	return []byte(fmt.Sprintf("Message-ID: <m%d@x>\r\nSubject: %d\r\n\r\nbody %d\r\n%s\r\n", i, i, i, strings.Repeat("z", i*37%500)))
}

// sendAll sends n messages to the folders given by folderOf, waiting the
// way the engine does (oldest first, at most depth in flight).
func sendAll(t *testing.T, p *appendPipe, n int, folderOf func(int) string) ([]string, []error) {
	t.Helper()
	ctx := context.Background()
	var waits []func() (string, error)
	receipts, errs := make([]string, n), make([]error, n)
	next := 0
	drain := func() {
		receipts[next], errs[next] = waits[next]()
		next++
	}
	date := time.Date(2024, 3, 9, 8, 7, 6, 0, time.FixedZone("", -5*3600))
	for i := 0; i < n; i++ {
		if len(waits)-next >= p.depth() {
			drain()
		}
		b := fakeBody(i)
		folder := folderOf(i)
		d := target.Delivery{Folder: folder, Size: int64(len(b)), Date: date.Add(time.Duration(i) * time.Minute)}
		flags := []imap.Flag{imap.FlagSeen}
		if i%3 == 0 {
			flags = append(flags, "$Label1")
		}
		wait, err := p.send(ctx, folder, d, flags, bytes.NewReader(b), func(err error) error {
			return failure.Mark(failure.Message, err)
		})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		waits = append(waits, wait)
	}
	for next < n {
		drain()
	}
	return receipts, errs
}

func dialPipe(t testing.TB, cfg imapconn.Config) *appendPipe {
	t.Helper()
	s, err := imapconn.DialRaw(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := newAppendPipe(s)
	t.Cleanup(func() { p.close() })
	return p
}

// TestMultiAppend: consecutive messages of one folder go as MULTIAPPEND
// commands of at most maxMulti messages, byte for byte, with their flags
// and dates; each gets its UID from the uid-set; a folder change SELECTs
// the new folder and starts a new command.
func TestMultiAppend(t *testing.T) {
	f := &fakeMulti{answer: okUIDs}
	p := dialPipe(t, f.start(t))
	if !p.multi {
		t.Fatal("MULTIAPPEND not seen")
	}
	n := maxMulti + 8 + 5
	folderOf := func(i int) string {
		if i < maxMulti+8 {
			return "INBOX"
		}
		return "Déjà vu"
	}
	receipts, errs := sendAll(t, p, n, folderOf)
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("message %d: %v", i, errs[i])
		}
		if want := fmt.Sprintf("9:%d", 100+i); receipts[i] != want {
			t.Errorf("receipt %d = %q, want %q", i, receipts[i], want)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.parseErr != nil {
		t.Fatal(f.parseErr)
	}
	if got := fmt.Sprint(f.selects); got != `[INBOX "D&AOk-j&AOA- vu"]` {
		t.Errorf("SELECTs = %s", got)
	}
	var sizes []int
	i := 0
	for _, req := range f.reqs {
		sizes = append(sizes, len(req.msgs))
		for _, m := range req.msgs {
			if !bytes.Equal(m.body, fakeBody(i)) {
				t.Errorf("message %d: body differs", i)
			}
			wantFlags := `(\Seen)`
			if i%3 == 0 {
				wantFlags = `(\Seen $Label1)`
			}
			if m.flags != wantFlags {
				t.Errorf("message %d: flags %s, want %s", i, m.flags, wantFlags)
			}
			wantDate := fmt.Sprintf(`"%s"`, time.Date(2024, 3, 9, 8, 7, 6, 0, time.FixedZone("", -5*3600)).Add(time.Duration(i)*time.Minute).Format(dateTimeLayout))
			if m.date != wantDate {
				t.Errorf("message %d: date %s, want %s", i, m.date, wantDate)
			}
			i++
		}
	}
	if fmt.Sprint(sizes) != fmt.Sprint([]int{maxMulti, 8, 5}) {
		t.Errorf("commands of %v messages, want [%d 8 5]", sizes, maxMulti)
	}
}

// TestMultiAppendRefused: a refused MULTIAPPEND fails each of its messages
// with a retryable error (none was stored; the engine sends each again
// alone); a refused single APPEND gives the caller's message error; the
// commands after a refused one are not affected.
func TestMultiAppendRefused(t *testing.T) {
	f := &fakeMulti{}
	f.answer = func(req appendReq, first int) string {
		if len(f.reqs) == 1 || len(req.msgs) == 1 {
			return "NO [OVERQUOTA] full"
		}
		return okUIDs(req, first)
	}
	p := dialPipe(t, f.start(t))
	n := 2*maxMulti + 1
	receipts, errs := sendAll(t, p, n, func(int) string { return "INBOX" })
	for i := range n {
		switch {
		case i < maxMulti:
			if errs[i] == nil || !failure.Retryable(errs[i]) || !errors.Is(errs[i], target.ErrNotStored) {
				t.Errorf("message %d of the refused MULTIAPPEND: %v", i, errs[i])
			}
		case i < 2*maxMulti:
			if errs[i] != nil || receipts[i] != fmt.Sprintf("9:%d", 100+i-maxMulti) {
				t.Errorf("message %d: %q, %v", i, receipts[i], errs[i])
			}
		default:
			if failure.KindOf(errs[i]) != failure.Message {
				t.Errorf("refused single APPEND: %v", errs[i])
			}
		}
	}
}

// TestMultiAppendHangUp: the server goes away after a command: every
// message without an answer has an unknown, retryable outcome, and the
// pipe reports itself broken.
func TestMultiAppendHangUp(t *testing.T) {
	f := &fakeMulti{answer: func(appendReq, int) string { return "CLOSE" }}
	p := dialPipe(t, f.start(t))
	_, errs := sendAll(t, p, 5, func(int) string { return "INBOX" })
	for i, err := range errs {
		if err == nil || !failure.Retryable(err) {
			t.Errorf("message %d: %v", i, err)
		}
	}
	if p.broken() == nil {
		t.Error("pipe not broken")
	}
}

// TestSendBadBody: a body shorter or longer than announced never ends its
// command (the server stores nothing of it) and breaks the session.
func TestSendBadBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		body io.Reader
	}{
		{"short", strings.NewReader("abc")},
		{"long", strings.NewReader(strings.Repeat("x", 50))},
		{"failing", io.MultiReader(strings.NewReader("ab"), errReader{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeMulti{answer: okUIDs}
			p := dialPipe(t, f.start(t))
			ctx := context.Background()
			good := fakeBody(1)
			wait, err := p.send(ctx, "INBOX", target.Delivery{Folder: "INBOX", Size: int64(len(good))}, nil, bytes.NewReader(good), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.send(ctx, "INBOX", target.Delivery{Folder: "INBOX", Size: 10}, nil, tc.body, nil); err == nil {
				t.Fatal("bad body accepted")
			}
			if _, err := wait(); err == nil || !failure.Retryable(err) {
				t.Errorf("message before the bad one: %v (want unknown outcome)", err)
			}
			time.Sleep(50 * time.Millisecond)
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.reqs) != 0 {
				t.Errorf("the server got %d complete commands", len(f.reqs))
			}
		})
	}
}

// TestSendRawMemServer stores through the raw pipe into go-imap's own
// server (LITERAL+, no MULTIAPPEND), which parses the commands strictly:
// bytes, flags, dates and folder names must come back as sent.
func TestSendRawMemServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps imap.CapSet
	}{
		{"IMAP4rev1", imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapNamespace: {}, imap.CapLiteralPlus: {}}},
		// Folder names go in UTF-8 then, as go-imap sends them on the
		// session that created the folders (imapmemserver takes both forms).
		{"IMAP4rev2", imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}, imap.CapLiteralPlus: {}}},
	} {
		t.Run(tc.name, func(t *testing.T) { testSendRawMemServer(t, tc.caps) })
	}
}

func testSendRawMemServer(t *testing.T, caps imap.CapSet) {
	srv := imaptest.Start(t, imaptest.Options{Caps: caps})
	ctx := context.Background()
	tg := open(t, srv)
	date := time.Date(2023, 12, 31, 23, 59, 58, 0, time.FixedZone("", 3600))
	var waits []func() (string, error)
	var bodies [][]byte
	folders := []string{"INBOX", "Déjà vu/R&D"}
	for i := 0; i < 12; i++ {
		b := fakeBody(i)
		bodies = append(bodies, b)
		d := delivery(folders[i%2], b, "", `\Seen`, "$Work")
		d.Date = date
		wait, err := tg.Send(ctx, d, bytes.NewReader(b))
		if err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		waits = append(waits, wait)
	}
	if tg.pipe == nil || tg.pipe.multi {
		t.Fatalf("stores did not go over the raw pipe without MULTIAPPEND (pipe %v)", tg.pipe)
	}
	seen := map[string]bool{}
	for i, w := range waits {
		r, err := w()
		if err != nil || r == "" || seen[r] {
			t.Fatalf("message %d: receipt %q, %v", i, r, err)
		}
		seen[r] = true
	}
	if srv.Appends != 12 {
		t.Errorf("server counted %d APPENDs", srv.Appends)
	}
	src, err := srcimap.Open(ctx, srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for fi, folder := range folders {
		metas, err := src.List(ctx, mailbox.Folder{Name: folder})
		if err != nil || len(metas) != 6 {
			t.Fatalf("folder %q: %d messages, %v", folder, len(metas), err)
		}
		for k, m := range metas {
			i := 2*k + fi
			if !m.Received.Equal(date) {
				t.Errorf("%q message %d: date %v", folder, k, m.Received)
			}
			if fmt.Sprint(lower(m.Flags)) != `[$work \seen]` {
				t.Errorf("%q message %d: flags %v", folder, k, m.Flags)
			}
			err := src.Fetch(ctx, mailbox.Folder{Name: folder}, []string{m.ID}, func(_ mailbox.Meta, r io.Reader) error {
				got, err := io.ReadAll(r)
				if !bytes.Equal(got, bodies[i]) {
					t.Errorf("%q message %d: body differs", folder, k)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestStoreSessionConnections: once the store session is up, the main
// session is logged out (one connection per worker while storing); when a
// second session cannot be opened (a per-user connection limit), stores go
// over the main session instead of failing.
func TestStoreSessionConnections(t *testing.T) {
	caps := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapNamespace: {}, imap.CapLiteralPlus: {}}
	for _, limit := range []int{0, 1} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			srv := imaptest.Start(t, imaptest.Options{Caps: caps})
			cfg := srv.Config()
			var mu sync.Mutex
			var open []net.Conn
			cfg.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
				mu.Lock()
				defer mu.Unlock()
				live := 0
				for _, c := range open {
					if c.(*trackConn).closed.Load() == 0 {
						live++
					}
				}
				if limit > 0 && live >= limit {
					return nil, errors.New("too many connections")
				}
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				tc := &trackConn{Conn: c}
				open = append(open, tc)
				return tc, nil
			}
			ctx := context.Background()
			tg, err := Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			for i := 0; i < 5; i++ {
				b := fakeBody(i)
				wait, err := tg.Send(ctx, delivery("INBOX", b, ""), bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				if r, err := wait(); err != nil || r == "" {
					t.Fatalf("message %d: %q, %v", i, r, err)
				}
			}
			if limit > 0 {
				if tg.pipe != nil || !tg.noPipe {
					t.Error("no fallback to the main session")
				}
			} else if tg.pipe == nil || tg.c != nil {
				t.Errorf("store session %v, main session %v: want only the store session", tg.pipe != nil, tg.c != nil)
			}
			if srv.Appends != 5 {
				t.Errorf("%d APPENDs", srv.Appends)
			}
		})
	}
}

type trackConn struct {
	net.Conn
	closed atomic.Int32
}

func (c *trackConn) Close() error {
	c.closed.Store(1)
	return c.Conn.Close()
}
