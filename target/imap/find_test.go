package imap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	"github.com/mailferry/mailferry/target"
)

// rwServer is go-imap's in-memory server with a hand on what it stores
// (rewrite), on whether it stores at all (refuse), and counting the
// connections and the SELECT, SEARCH and FETCH commands it gets.
type rwServer struct {
	Addr     string
	User     *imapmemserver.User
	dials    atomic.Int32
	fetches  atomic.Int32
	selects  atomic.Int32
	searches atomic.Int32
	mu       sync.Mutex
	rewrite  func([]byte) []byte
	refuse   error
	// limit, when set before the first session, is announced as
	// APPENDLIMIT=limit.
	limit atomic.Uint32
}

func startRW(t testing.TB, caps imap.CapSet, rewrite func([]byte) []byte) *rwServer {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(imaptest.User, imaptest.Password)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	s := &rwServer{User: u, rewrite: rewrite}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess := &rwSession{SessionIMAP4rev2: mem.NewSession().(imapserver.SessionIMAP4rev2), s: s}
			if l := s.limit.Load(); l > 0 {
				return &limitSession{sess, l}, nil, nil
			}
			return sess, nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       nopLog{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *rwServer) config() imapconn.Config {
	return imapconn.Config{Addr: s.Addr, Security: imapconn.None, User: imaptest.User, Password: imaptest.Password,
		Timeout: 5 * time.Second, Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			s.dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
}

func (s *rwServer) setRefuse(err error) {
	s.mu.Lock()
	s.refuse = err
	s.mu.Unlock()
}

type nopLog struct{}

func (nopLog) Printf(string, ...interface{}) {}

type rwSession struct {
	imapserver.SessionIMAP4rev2
	s *rwServer
}

func (r *rwSession) Append(mailbox string, lit imap.LiteralReader, opts *imap.AppendOptions) (*imap.AppendData, error) {
	b, err := io.ReadAll(lit)
	if err != nil {
		return nil, err
	}
	r.s.mu.Lock()
	rw, refuse := r.s.rewrite, r.s.refuse
	r.s.mu.Unlock()
	if refuse != nil {
		return nil, refuse
	}
	if rw != nil {
		b = rw(b)
	}
	return r.SessionIMAP4rev2.Append(mailbox, bytes.NewReader(b), opts)
}

func (r *rwSession) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, opts *imap.FetchOptions) error {
	r.s.fetches.Add(1)
	return r.SessionIMAP4rev2.Fetch(w, numSet, opts)
}

func (r *rwSession) Select(mailbox string, opts *imap.SelectOptions) (*imap.SelectData, error) {
	r.s.selects.Add(1)
	return r.SessionIMAP4rev2.Select(mailbox, opts)
}

func (r *rwSession) Search(kind imapserver.NumKind, crit *imap.SearchCriteria, opts *imap.SearchOptions) (*imap.SearchData, error) {
	r.s.searches.Add(1)
	return r.SessionIMAP4rev2.Search(kind, crit, opts)
}

// xHeaders does what Cyrus does to 8-bit header bytes.
func xHeaders(b []byte) []byte {
	out := bytes.Clone(b)
	end := bytes.Index(out, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(out)
	}
	for i := range end {
		if out[i] >= 0x80 {
			out[i] = 'X'
		}
	}
	return out
}

// addReceived adds a header line of the server's own, and Cyrus' X.
func addReceived(b []byte) []byte {
	return append([]byte("Received: from mailferry by test.example with IMAP; Wed, 2 Dec 2026 17:00:00 +0000\r\n"), xHeaders(b)...)
}

var (
	capsPlain   = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapNamespace: {}}
	capsLiteral = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapNamespace: {}, imap.CapLiteralPlus: {}}
)

// store stores as the engine does: Send and wait where the target
// pipelines, which (with LITERAL+) goes over the store session.
func store(ctx context.Context, tg *Target, d target.Delivery, body []byte) (string, error) {
	wait, err := tg.Send(ctx, d, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	return wait()
}

func taken(receipts ...string) func(string) bool {
	return func(r string) bool {
		for _, x := range receipts {
			if r == x {
				return true
			}
		}
		return false
	}
}

// TestFindRewritten: the server changes every message on the way in (as
// Cyrus does with 8-bit header bytes, plus a header line of its own); the
// answer to a store is treated as lost and Find must still recognise the
// stored copy, once per source message: byte-identical twins both count,
// and a message with the same Message-ID but another date is not ours.
func TestFindRewritten(t *testing.T) {
	for _, rw := range []struct {
		name string
		f    func([]byte) []byte
	}{{"8bit-to-X", xHeaders}, {"added-header", addReceived}} {
		for _, caps := range []struct {
			name string
			set  imap.CapSet
		}{{"main-session", capsPlain}, {"store-session", capsLiteral}} {
			t.Run(rw.name+"/"+caps.name, func(t *testing.T) { testFindRewritten(t, rw.f, caps.set) })
		}
	}
}

func testFindRewritten(t *testing.T, rewrite func([]byte) []byte, caps imap.CapSet) {
	srv := startRW(t, caps, rewrite)
	ctx := context.Background()
	tg, err := Open(ctx, srv.config())
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	folder, err := tg.Ensure(ctx, mailbox.Folder{Name: "Box"})
	if err != nil {
		t.Fatal(err)
	}
	// Something older with the same Message-ID and date: below the mark.
	body := []byte("Message-ID: <rw@x>\r\nFrom: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\nSubject: Grüße aus Köln\r\n\r\nHallo\r\n")
	d := delivery(folder, body, "<rw@x>")
	noID := []byte("From: a@example.org\r\nSubject: Ärger ohne Message-ID\r\n\r\nno id\r\n")
	dn := delivery(folder, noID, "")

	put := func(d target.Delivery, body []byte) (mark, receipt string) {
		t.Helper()
		mark, err := tg.Mark(ctx, folder)
		if err != nil || mark == "" {
			t.Fatalf("Mark = %q, %v", mark, err)
		}
		r, err := store(ctx, tg, d, body)
		if err != nil || r == "" {
			t.Fatalf("store: %q, %v", r, err)
		}
		return mark, r
	}
	find := func(what string, d target.Delivery, mark string, tk func(string) bool, want string) {
		t.Helper()
		d.Mark, d.Taken = mark, tk
		r, ok, err := tg.Find(ctx, d)
		if err != nil || ok != (want != "") || r != want {
			t.Errorf("%s: Find = %q, %v, %v; want %q", what, r, ok, err, want)
		}
	}

	m1, r1 := put(d, body)
	if caps.Has(imap.CapLiteralPlus) && (tg.pipe == nil || tg.c != nil) {
		t.Fatalf("not stored over the store session alone (pipe %v, main %v)", tg.pipe != nil, tg.c != nil)
	}
	find("rewritten, with the mark", d, m1, nil, r1)
	find("rewritten, without a mark", d, "", nil, r1)
	find("rewritten, taken", d, m1, taken(r1), "")

	// Another message with the same Message-ID, stored at another date.
	other := d
	other.Date = d.Date.Add(time.Hour)
	find("same Message-ID, other date", other, m1, nil, "")
	find("same Message-ID, other date, no mark", other, "", nil, "")
	bigger := delivery(folder, append(bytes.Clone(body), bytes.Repeat([]byte("x"), 8000)...), "<rw@x>")
	find("same Message-ID and date, much smaller copy", bigger, m1, nil, "")

	// Twins: the same bytes from two source messages, stored in turn.
	m2, r2 := put(d, body)
	find("second twin, with its mark", d, m2, taken(r1), r2)
	find("second twin, with the first mark", d, m1, taken(r1), r2)
	find("second twin, without a mark", d, "", taken(r1), r2)
	find("both twins taken", d, m1, taken(r1, r2), "")

	// Without a Message-ID the mark is needed.
	m3, r3 := put(dn, noID)
	find("no Message-ID, with the mark", dn, m3, nil, r3)
	find("no Message-ID, without a mark", dn, "", nil, "")
	later := dn
	later.Date = dn.Date.Add(time.Second)
	find("no Message-ID, other date", later, m3, nil, "")

	// A mark of a folder since re-created (another UIDVALIDITY) is ignored.
	var v, u uint32
	fmt.Sscanf(m1, "%d:%d", &v, &u)
	find("stale validity", d, fmt.Sprintf("%d:%d", v+1, 1<<30), taken(r1), r2)
}

// TestFindExactBeforeRewritten: a byte-exact copy wins over a rewritten
// twin, and the rewritten rule needs no hash (a server that keeps bytes).
func TestFindExactBeforeRewritten(t *testing.T) {
	srv := startRW(t, capsPlain, nil)
	ctx := context.Background()
	tg, err := Open(ctx, srv.config())
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	body := []byte("Message-ID: <ex@x>\r\nSubject: Grüße\r\n\r\nx\r\n")
	d := delivery("INBOX", body, "<ex@x>")
	mark, _ := tg.Mark(ctx, "INBOX")
	srv.mu.Lock()
	srv.rewrite = xHeaders
	srv.mu.Unlock()
	rRewritten, err := tg.Put(ctx, d, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	srv.rewrite = nil
	srv.mu.Unlock()
	rExact, err := tg.Put(ctx, d, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	d.Mark = mark
	if r, ok, err := tg.Find(ctx, d); !ok || err != nil || r != rExact {
		t.Errorf("Find = %q, %v, %v; want the exact copy %q (not %q)", r, ok, err, rExact, rRewritten)
	}
}

// TestMark: the mark is "uidvalidity:uidnext" and a lower bound for what
// is stored next, whatever the sessions do: with the main session logged
// out while the store session works, Mark costs no new connection.
func TestMark(t *testing.T) {
	srv := startRW(t, capsLiteral, nil)
	ctx := context.Background()
	tg, err := Open(ctx, srv.config())
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if _, err := tg.Ensure(ctx, mailbox.Folder{Name: "Box"}); err != nil {
		t.Fatal(err)
	}
	status := func(folder string) string {
		sd, err := srv.User.Status(folder, &imap.StatusOptions{UIDValidity: true, UIDNext: true})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d:%d", sd.UIDValidity, sd.UIDNext)
	}
	mark := func(folder, want string) {
		t.Helper()
		m, err := tg.Mark(ctx, folder)
		if err != nil || m != want {
			t.Errorf("Mark(%q) = %q, %v; want %q", folder, m, err, want)
		}
	}
	mark("Box", status("Box")) // a fresh target: STATUS
	for i := range 3 {
		b := fakeBody(i)
		if _, err := store(ctx, tg, delivery("Box", b, ""), b); err != nil {
			t.Fatal(err)
		}
	}
	if tg.c != nil || tg.pipe == nil {
		t.Fatal("the main session is not logged out while storing")
	}
	dials := srv.dials.Load()
	mark("Box", status("Box"))     // receipts
	mark("INBOX", status("INBOX")) // the store session SELECTs it
	mark("Box", status("Box"))
	if n := srv.dials.Load(); n != dials {
		t.Errorf("Mark dialled %d new connections", n-dials)
	}
	// Another session stores: the mark stays a lower bound.
	before, _ := tg.Mark(ctx, "Box")
	if _, err := srv.User.Append("Box", bytes.NewReader(fakeBody(9)), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	b := fakeBody(10)
	r, err := store(ctx, tg, delivery("Box", b, ""), b)
	if err != nil {
		t.Fatal(err)
	}
	var mv, mn, rv, rn uint32
	fmt.Sscanf(before, "%d:%d", &mv, &mn)
	fmt.Sscanf(r, "%d:%d", &rv, &rn)
	if mv != rv || rn < mn {
		t.Errorf("stored as %s after the mark %s", r, before)
	}
	mark("Nope", "")
	if fs, _ := tg.Folders(ctx); len(fs) != 2 {
		t.Errorf("Mark created a folder: %v", fs)
	}
}

// TestInventoryCensus: Census and one streamed FETCH over a folder of a few
// thousand messages, with and without Message-ID, folded ones included.
func TestInventoryCensus(t *testing.T) {
	srv := startRW(t, capsPlain, nil)
	ctx := context.Background()
	const n = 3000
	if err := srv.User.Create("Big", nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.User.Create("Empty", nil); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	wantID := func(i int) string {
		if i%10 == 3 {
			return ""
		}
		return fmt.Sprintf("<inv%d@example.org>", i)
	}
	sizes := map[int]int64{}
	for i := range n {
		var b strings.Builder
		switch id := wantID(i); {
		case id == "":
		case i%7 == 0:
			fmt.Fprintf(&b, "Message-Id:\r\n  %s  \r\n", id)
		default:
			fmt.Fprintf(&b, "Message-ID: %s\r\n", id)
		}
		fmt.Fprintf(&b, "Subject: %d\r\n\r\n%s\r\n", i, strings.Repeat("b", i%300))
		sizes[i] = int64(b.Len())
		if _, err := srv.User.Append("Big", bytes.NewReader([]byte(b.String())), &imap.AppendOptions{Time: base.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	tg, err := Open(ctx, srv.config())
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	for _, tc := range []struct {
		folder string
		want   int
	}{{"Big", n}, {"Empty", 0}, {"Nope", 0}} {
		c, err := tg.Census(ctx, tc.folder)
		if err != nil || c.Messages != tc.want || (tc.folder != "Nope") != (c.Validity != 0) {
			t.Errorf("Census(%q) = %+v, %v; want %d messages", tc.folder, c, err, tc.want)
		}
	}
	if fs, _ := tg.Folders(ctx); len(fs) != 3 {
		t.Errorf("Census created a folder: %v", fs)
	}
	c, _ := tg.Census(ctx, "Big")
	fetches := srv.fetches.Load()
	start := time.Now()
	seen := map[string]bool{}
	err = tg.Inventory(ctx, "Big", func(s target.Stored) error {
		var v, uid uint32
		if _, err := fmt.Sscanf(s.Receipt, "%d:%d", &v, &uid); err != nil || v != c.Validity || seen[s.Receipt] {
			t.Fatalf("receipt %q (validity %d)", s.Receipt, c.Validity)
		}
		seen[s.Receipt] = true
		i := int(uid) - 1
		if s.MessageID != wantID(i) || s.Size != sizes[i] || !s.Date.Equal(base.Add(time.Duration(i)*time.Minute)) {
			t.Errorf("message %d: %+v; want %q, %d octets", i, s, wantID(i), sizes[i])
		}
		return nil
	})
	if err != nil || len(seen) != n {
		t.Fatalf("Inventory: %d messages, %v", len(seen), err)
	}
	t.Logf("Inventory of %d messages: %v", n, time.Since(start))
	if f := srv.fetches.Load() - fetches; f != 1 {
		t.Errorf("Inventory sent %d FETCH commands, want 1", f)
	}
	for _, folder := range []string{"Empty", "Nope"} {
		if err := tg.Inventory(ctx, folder, func(target.Stored) error { return errors.New("called") }); err != nil {
			t.Errorf("Inventory(%q): %v", folder, err)
		}
	}
	stopErr := errors.New("enough")
	calls := 0
	err = tg.Inventory(ctx, "Big", func(target.Stored) error { calls++; return stopErr })
	if !errors.Is(err, stopErr) || calls != 1 {
		t.Errorf("Inventory stopped by fn: %v after %d calls", err, calls)
	}
	if c, err := tg.Census(ctx, "Big"); err != nil || c.Messages != n {
		t.Errorf("Census after a stopped Inventory: %+v, %v", c, err)
	}
}

// TestRefusedKeepsSession: a store refused with a tagged NO is an answer:
// the session stays (no new login per refused message), and Cyrus' "NO
// Over quota" without a response code is over quota.
func TestRefusedKeepsSession(t *testing.T) {
	for _, caps := range []struct {
		name string
		set  imap.CapSet
	}{{"main-session", capsPlain}, {"store-session", capsLiteral}} {
		t.Run(caps.name, func(t *testing.T) {
			srv := startRW(t, caps.set, nil)
			ctx := context.Background()
			tg, err := Open(ctx, srv.config())
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			b := fakeBody(1)
			d := delivery("INBOX", b, "<m1@x>")
			if _, err := store(ctx, tg, d, b); err != nil {
				t.Fatal(err)
			}
			dials := srv.dials.Load()
			srv.setRefuse(&imap.Error{Type: imap.StatusResponseTypeNo, Text: "Over quota"})
			for i := range 20 {
				_, err := store(ctx, tg, d, b)
				if failure.KindOf(err) != failure.Quota || !errors.Is(err, target.ErrFolderFull) {
					t.Fatalf("refused store %d: %v (kind %v)", i, err, failure.KindOf(err))
				}
			}
			srv.setRefuse(&imap.Error{Type: imap.StatusResponseTypeNo, Text: "Message contains bare newlines"})
			if _, err := store(ctx, tg, d, b); failure.KindOf(err) != failure.Message {
				t.Errorf("refused message: %v (kind %v)", err, failure.KindOf(err))
			}
			srv.setRefuse(nil)
			if _, err := store(ctx, tg, d, b); err != nil {
				t.Fatal(err)
			}
			if n := srv.dials.Load() - dials; n != 0 {
				t.Errorf("%d new connections for 21 refused stores", n)
			}
		})
	}
}
