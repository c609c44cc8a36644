package imap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	"github.com/mailferry/mailferry/source"
)

type lit struct{ *bytes.Reader }

func (l lit) Size() int64 { return l.Reader.Size() }

func load(t testing.TB, srv *imaptest.Server, folder string, n int) [][]byte {
	t.Helper()
	if folder != "INBOX" {
		if err := srv.User.Create(folder, nil); err != nil {
			t.Fatal(err)
		}
	}
	var bodies [][]byte
	for i := 0; i < n; i++ {
		b := []byte(fmt.Sprintf("Message-ID: <%d@x>\r\nSubject: m%d\r\n\r\n%s\r\n", i, i, strings.Repeat("x", i%50)))
		flags := []imap.Flag{}
		if i%2 == 0 {
			flags = append(flags, imap.FlagSeen)
		}
		_, err := srv.User.Append(folder, lit{bytes.NewReader(b)}, &imap.AppendOptions{
			Flags: flags, Time: time.Date(2020, 1, 1, 0, 0, i, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	return bodies
}

func openSrc(t testing.TB, cfg imapconn.Config) *Source {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func folder(t testing.TB, s *Source, name string) source.Folder {
	t.Helper()
	fs, err := s.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no folder %q in %v", name, fs)
	return source.Folder{}
}

func TestListAndFetch(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	bodies := load(t, srv, "Work", 150)
	s := openSrc(t, srv.Config())
	f := folder(t, s, "Work")
	ctx := context.Background()
	metas, err := s.List(ctx, f)
	if err != nil || len(metas) != 150 {
		t.Fatalf("List: %d, %v", len(metas), err)
	}
	for i, m := range metas {
		if m.ID != strconv.Itoa(i+1) || m.Size != int64(len(bodies[i])) || m.Received.Second() != i%60 {
			t.Fatalf("meta %d = %+v", i, m)
		}
		if seen := slices.Contains(m.Flags, `\Seen`); seen != (i%2 == 0) {
			t.Fatalf("meta %d flags %q", i, m.Flags)
		}
	}
	// Every other message, plus two that do not exist, in order.
	var ids []string
	for i := 1; i <= 150; i += 2 {
		ids = append(ids, strconv.Itoa(i))
	}
	ids = append(ids, "9999", "x")
	var got []string
	err = s.Fetch(ctx, f, ids, func(m source.Meta, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		i, _ := strconv.Atoi(m.ID)
		if !bytes.Equal(b, bodies[i-1]) || m.Size != int64(len(b)) {
			t.Errorf("message %s: body %q, size %d", m.ID, b, m.Size)
		}
		got = append(got, m.ID)
		return nil
	})
	var ve *source.VanishedError
	if !errors.As(err, &ve) || !slices.Equal(ve.IDs, []string{"x", "9999"}) {
		t.Errorf("Fetch error = %v, want vanished 9999 and x", err)
	}
	if !slices.Equal(got, ids[:len(ids)-2]) {
		t.Errorf("delivered %v, want %v", got, ids[:len(ids)-2])
	}
	// The source never marks messages \Seen.
	metas2, _ := s.List(ctx, f)
	for i := range metas2 {
		if !slices.Equal(metas2[i].Flags, metas[i].Flags) {
			t.Fatalf("flags changed by Fetch: %v -> %v", metas[i].Flags, metas2[i].Flags)
		}
	}
	// fn's error stops Fetch and is returned; the session recovers.
	boom := errors.New("boom")
	n := 0
	err = s.Fetch(ctx, f, ids[:10], func(source.Meta, io.Reader) error { n++; return boom })
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("Fetch with failing fn = %v after %d calls", err, n)
	}
	n = 0
	if err := s.Fetch(ctx, f, []string{"3", "1", "2"}, func(m source.Meta, _ io.Reader) error {
		got = append(got[:0], m.ID)
		n++
		return nil
	}); err != nil || n != 3 {
		t.Errorf("Fetch after failure = %v (%d)", err, n)
	}
}

func TestChunks(t *testing.T) {
	u := func(xs ...imap.UID) []imap.UID { return xs }
	tests := []struct {
		in   []imap.UID
		n    int
		want [][]imap.UID
	}{
		{u(1, 2, 3, 4, 5), 2, [][]imap.UID{u(1, 2), u(3, 4), u(5)}},
		{u(3, 1, 2), 64, [][]imap.UID{u(3), u(1, 2)}},
		{u(), 64, nil},
		{u(5, 5), 64, [][]imap.UID{u(5), u(5)}},
	}
	for _, tt := range tests {
		if got := chunks(tt.in, tt.n); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("chunks(%v, %d) = %v, want %v", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestValidityChanged(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	load(t, srv, "F", 2)
	s := openSrc(t, srv.Config())
	f := folder(t, s, "F")
	f.Validity++
	_, err := s.List(context.Background(), f)
	var ve *ValidityChangedError
	if !errors.As(err, &ve) || ve.New != f.Validity-1 {
		t.Errorf("List = %v, want ValidityChangedError", err)
	}
}

func TestDelete(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	load(t, srv, "INBOX", 5)
	s := openSrc(t, srv.Config())
	f := folder(t, s, "INBOX")
	ctx := context.Background()
	if err := s.Delete(ctx, f, []string{"2", "4"}); err != nil {
		t.Fatal(err)
	}
	metas, err := s.List(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range metas {
		ids = append(ids, m.ID)
	}
	if !slices.Equal(ids, []string{"1", "3", "5"}) {
		t.Errorf("after Delete: %v", ids)
	}
	// Without UIDPLUS, Delete refuses.
	srv2 := imaptest.Start(t, imaptest.Options{Caps: imap.CapSet{imap.CapIMAP4rev1: {}}})
	load(t, srv2, "INBOX", 1)
	s2 := openSrc(t, srv2.Config())
	if err := s2.Delete(ctx, folder(t, s2, "INBOX"), []string{"1"}); err == nil {
		t.Error("Delete without UIDPLUS: no error")
	}
	if m, _ := s2.List(ctx, folder(t, s2, "INBOX")); len(m) != 1 || slices.Contains(m[0].Flags, `\Deleted`) {
		t.Errorf("Delete without UIDPLUS changed the folder: %v", m)
	}
}

func BenchmarkList(b *testing.B) {
	srv := imaptest.Start(b, imaptest.Options{})
	load(b, srv, "Big", 50000)
	s := openSrc(b, srv.Config())
	f := folder(b, s, "Big")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := s.List(context.Background(), f)
		if err != nil || len(m) != 50000 {
			b.Fatal(len(m), err)
		}
	}
}

// fakeServer answers a scripted IMAP session in which the body literal of
// each FETCH response comes BEFORE its UID (legal, and what beta.8 drops
// when fetching by UID).
func fakeServer(t *testing.T, bodies map[uint32]string) string {
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
			go serveFake(c, bodies)
		}
	}()
	return ln.Addr().String()
}

func serveFake(c net.Conn, bodies map[uint32]string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	defer w.Flush()
	fmt.Fprintf(w, "* OK [CAPABILITY IMAP4rev1 UIDPLUS] fake\r\n")
	w.Flush()
	// uid i+1 is at seq i+1
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		tag, cmd := f[0], strings.ToUpper(f[1])
		switch {
		case cmd == "LOGIN":
			fmt.Fprintf(w, "%s OK logged in\r\n", tag)
		case cmd == "LIST":
			fmt.Fprintf(w, "* LIST () \"/\" \"\"\r\n%s OK\r\n", tag)
		case cmd == "SELECT" || cmd == "EXAMINE":
			fmt.Fprintf(w, "* %d EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n%s OK [READ-ONLY] done\r\n", len(bodies), tag)
		case cmd == "SEARCH":
			// SEARCH UID a,b,c -> sequence numbers = UIDs here
			set := strings.TrimSpace(f[len(f)-1])
			var out []string
			for _, p := range strings.Split(set, ",") {
				a, b, _ := strings.Cut(p, ":")
				lo, _ := strconv.Atoi(a)
				hi := lo
				if b != "" {
					hi, _ = strconv.Atoi(b)
				}
				for i := lo; i <= hi; i++ {
					if _, ok := bodies[uint32(i)]; ok {
						out = append(out, strconv.Itoa(i))
					}
				}
			}
			fmt.Fprintf(w, "* SEARCH %s\r\n%s OK\r\n", strings.Join(out, " "), tag)
		case cmd == "FETCH":
			set := f[2]
			for _, p := range strings.Split(set, ",") {
				a, b, _ := strings.Cut(p, ":")
				lo, _ := strconv.Atoi(a)
				hi := lo
				if b == "*" {
					hi = len(bodies)
				} else if b != "" {
					hi, _ = strconv.Atoi(b)
				}
				for i := lo; i <= hi; i++ {
					body, ok := bodies[uint32(i)]
					if !ok {
						continue // a message the server does not answer for
					}
					fmt.Fprintf(w, "* %d FETCH (BODY[] {%d}\r\n%s FLAGS (\\Seen) INTERNALDATE \"01-Jan-2020 00:00:00 +0000\" RFC822.SIZE %d UID %d)\r\n",
						i, len(body), body, len(body), i)
				}
			}
			fmt.Fprintf(w, "%s OK\r\n", tag)
		case cmd == "LOGOUT":
			fmt.Fprintf(w, "* BYE\r\n%s OK\r\n", tag)
			return
		default:
			fmt.Fprintf(w, "%s OK\r\n", tag)
		}
		w.Flush()
	}
}

func TestBodyBeforeUID(t *testing.T) {
	bodies := map[uint32]string{1: "Subject: one\r\n\r\n1\r\n", 2: "Subject: two\r\n\r\ntwo\r\n", 3: "Subject: 3\r\n\r\nthree!\r\n"}
	addr := fakeServer(t, bodies)
	s := openSrc(t, imapconn.Config{Addr: addr, Security: imapconn.None, User: "u", Password: "p", Timeout: 5 * time.Second})
	var got []string
	err := s.Fetch(context.Background(), source.Folder{Name: "INBOX", Validity: 7}, []string{"1", "3", "5"}, func(m source.Meta, r io.Reader) error {
		b, _ := io.ReadAll(r)
		if string(b) != bodies[uint32(mustAtoi(m.ID))] || !slices.Equal(m.Flags, []string{`\Seen`}) || m.Received.Year() != 2020 {
			t.Errorf("message %s: meta %+v body %q", m.ID, m, b)
		}
		got = append(got, m.ID)
		return nil
	})
	var ve *source.VanishedError
	if !errors.As(err, &ve) || !slices.Equal(ve.IDs, []string{"5"}) {
		t.Errorf("Fetch = %v, want 5 vanished", err)
	}
	if !slices.Equal(got, []string{"1", "3"}) {
		t.Errorf("delivered %v", got)
	}
}

func mustAtoi(s string) int { n, _ := strconv.Atoi(s); return n }
