package imap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
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

func msg(id, body string) []byte {
	var b strings.Builder
	if id != "" {
		fmt.Fprintf(&b, "Message-ID: %s\r\n", id)
	}
	fmt.Fprintf(&b, "From: a@example.org\r\nSubject: test\r\n\r\n%s\r\n", body)
	return []byte(b.String())
}

func delivery(folder string, body []byte, id string, flags ...string) target.Delivery {
	return target.Delivery{
		Folder: folder, Flags: flags, Date: time.Date(2021, 3, 4, 5, 6, 7, 0, time.FixedZone("", 3600)),
		Size:        int64(len(body)),
		Fingerprint: target.Fingerprint{MessageID: id, Size: int64(len(body)), SHA256: sha256.Sum256(body)},
	}
}

func open(t *testing.T, srv *imaptest.Server) *Target {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tg, err := Open(ctx, srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

func TestPutRoundTrip(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	tg := open(t, srv)
	ctx := context.Background()
	name, err := tg.Ensure(ctx, mailbox.Folder{Name: "Archive/2021"})
	if err != nil || name != "Archive/2021" {
		t.Fatalf("Ensure = %q, %v", name, err)
	}
	body := msg("<1@x>", "hello")
	d := delivery(name, body, "<1@x>", `\Seen`, `\Flagged`, "$Label1", "bad(kw", `\Recent`)
	receipt, err := tg.Put(ctx, d, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(receipt, ":1") {
		t.Errorf("receipt = %q, want validity:1", receipt)
	}

	src, err := srcimap.Open(ctx, srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	metas, err := src.List(ctx, mailbox.Folder{Name: "Archive/2021"})
	if err != nil || len(metas) != 1 {
		t.Fatalf("List = %v, %v", metas, err)
	}
	m := metas[0]
	// imapmemserver lower-cases keywords; flags are case-insensitive.
	if want := []string{"$label1", `\flagged`, `\seen`}; !slices.Equal(lower(m.Flags), want) {
		t.Errorf("flags = %q, want %q", m.Flags, want)
	}
	if !m.Received.Equal(d.Date) {
		t.Errorf("date = %v, want %v", m.Received, d.Date)
	}
	var got []byte
	err = src.Fetch(ctx, mailbox.Folder{Name: "Archive/2021"}, []string{m.ID}, func(_ mailbox.Meta, r io.Reader) error {
		got, err = io.ReadAll(r)
		return err
	})
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Fetch = %q, %v", got, err)
	}
}

func TestFoldersNames(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	tg := open(t, srv)
	ctx := context.Background()
	names := []string{"A/B/C", "بريد وارد", "Tom & Jerry", "Sent Items", "INBOX/Sub"}
	for _, n := range names {
		got, err := tg.Ensure(ctx, mailbox.Folder{Name: n})
		if err != nil || got != n {
			t.Fatalf("Ensure(%q) = %q, %v", n, got, err)
		}
	}
	// Ensure twice is fine.
	if _, err := tg.Ensure(ctx, mailbox.Folder{Name: "A/B/C"}); err != nil {
		t.Fatal(err)
	}
	// A fresh session sees the folders.
	tg2 := open(t, srv)
	fs, err := tg2.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.Name)
	}
	for _, n := range append(names, "A", "A/B", "INBOX") {
		if !slices.Contains(got, n) {
			t.Errorf("Folders() = %q, missing %q", got, n)
		}
	}
	// And the source lists them the same way.
	src, err := srcimap.Open(ctx, srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sf, err := src.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sf) != len(fs) {
		t.Errorf("source Folders = %v, target %v", sf, fs)
	}
	for _, f := range sf {
		if f.Validity == 0 {
			t.Errorf("folder %q: no UIDVALIDITY", f.Name)
		}
	}
}

func TestFind(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	tg := open(t, srv)
	ctx := context.Background()
	a := msg("<dup@x>", "first body")
	b := msg("<dup@x>", "other body") // same Message-ID, same size, other bytes
	c := msg("<dup@x>", "third, longer body")
	noID := msg("", "no message id here")
	da, db, dc, dn := delivery("INBOX", a, "<dup@x>"), delivery("INBOX", b, "<dup@x>"), delivery("INBOX", c, "<dup@x>"), delivery("INBOX", noID, "")
	db.Date = db.Date.Add(time.Second)
	// Same Message-ID, internal date and size as a, other bytes: as far
	// as the target can tell, a copy of it the server rewrote.
	dr := delivery("INBOX", b, "<dup@x>")

	tests := []struct {
		name string
		d    target.Delivery
		want bool
	}{
		{"missing folder", delivery("Nope", a, "<dup@x>"), false},
		{"not stored yet", da, false},
	}
	for _, tt := range tests {
		_, ok, err := tg.Find(ctx, tt.d)
		if err != nil || ok != tt.want {
			t.Errorf("%s: Find = %v, %v", tt.name, ok, err)
		}
	}
	ra, err := tg.Put(ctx, da, bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	rn, err := tg.Put(ctx, dn, bytes.NewReader(noID))
	if err != nil {
		t.Fatal(err)
	}
	tests = []struct {
		name string
		d    target.Delivery
		want bool
	}{
		{"stored", da, true},
		{"same id and size, other bytes and date", db, false},
		{"same id, other size", dc, false},
		{"no message-id", dn, true},
		{"same id, date and size, other bytes", dr, true},
	}
	for _, tt := range tests {
		r, ok, err := tg.Find(ctx, tt.d)
		if err != nil || ok != tt.want {
			t.Errorf("%s: Find = %q, %v, %v", tt.name, r, ok, err)
		}
	}
	dr.Taken = func(r string) bool { return r == ra }
	if r, ok, err := tg.Find(ctx, dr); ok || err != nil {
		t.Errorf("a's copy taken: Find = %q, %v, %v", r, ok, err)
	}
	rb, err := tg.Put(ctx, db, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		d    target.Delivery
		want string
	}{{da, ra}, {db, rb}, {dn, rn}} {
		r, ok, err := tg.Find(ctx, tt.d)
		if err != nil || !ok || r != tt.want {
			t.Errorf("Find(%s) = %q, %v, %v; want %q", tt.d.Fingerprint.MessageID, r, ok, err, tt.want)
		}
	}
}

func TestRefusedAppendReconnects(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	tg := open(t, srv)
	ctx := context.Background()
	body := msg("<r@x>", "refuse me")
	cases := []struct {
		code imap.ResponseCode
		kind failure.Kind
		is   func(error) bool
	}{
		{imap.ResponseCodeTooBig, failure.Message, func(err error) bool { var r *target.Rejected; return errors.As(err, &r) }},
		{"", failure.Message, func(err error) bool { var r *target.Rejected; return errors.As(err, &r) }},
		{imap.ResponseCodeOverQuota, failure.Quota, func(err error) bool { return errors.Is(err, target.ErrFolderFull) }},
		{"THROTTLED", failure.Temporary, func(error) bool { return true }},
		{imap.ResponseCodeUnavailable, failure.Temporary, func(error) bool { return true }},
	}
	for _, c := range cases {
		srv.SetAppendHook(func(string, *imap.AppendOptions) error {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: c.code, Text: "no way"}
		})
		_, err := tg.Put(ctx, delivery("INBOX", body, "<r@x>"), bytes.NewReader(body))
		if err == nil || failure.KindOf(err) != c.kind || !c.is(err) {
			t.Errorf("[%s]: Put error = %v (kind %v), want kind %v", c.code, err, failure.KindOf(err), c.kind)
		}
		srv.SetAppendHook(nil)
		if _, err := tg.Put(ctx, delivery("INBOX", body, "<r@x>"), bytes.NewReader(body)); err != nil {
			t.Errorf("[%s]: Put after refusal: %v", c.code, err)
		}
	}
}

func TestTryCreate(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	tg := open(t, srv)
	ctx := context.Background()
	if _, err := tg.Ensure(ctx, mailbox.Folder{Name: "Gone"}); err != nil {
		t.Fatal(err)
	}
	// Deleted behind our back: the cached list is stale, APPEND gets TRYCREATE.
	if err := srv.User.Delete("Gone"); err != nil {
		t.Fatal(err)
	}
	body := msg("<t@x>", "try create")
	if _, err := tg.Put(ctx, delivery("Gone", body, "<t@x>"), bytes.NewReader(body)); err != nil {
		t.Fatalf("Put after TRYCREATE: %v", err)
	}
	if _, ok, err := tg.Find(ctx, delivery("Gone", body, "<t@x>")); !ok || err != nil {
		t.Fatalf("Find = %v, %v", ok, err)
	}
}

func TestBadBodies(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	tg := open(t, srv)
	ctx := context.Background()
	body := msg("<b@x>", "size check")
	d := delivery("INBOX", body, "<b@x>")
	if _, err := tg.Put(ctx, d, bytes.NewReader(body[:len(body)-3])); err == nil {
		t.Error("short body: no error")
	}
	if _, err := tg.Put(ctx, d, io.MultiReader(bytes.NewReader(body), strings.NewReader("extra"))); err == nil {
		t.Error("long body: no error")
	}
	if _, err := tg.Put(ctx, d, io.MultiReader(bytes.NewReader(body[:5]), errReader{})); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("failing body: %v", err)
	}
	if _, ok, _ := tg.Find(ctx, d); ok {
		t.Error("a failed Put stored the message")
	}
	if _, err := tg.Put(ctx, d, bytes.NewReader(body)); err != nil {
		t.Errorf("good body after failures: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestSetFlags(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	tg := open(t, srv)
	ctx := context.Background()
	body := msg("<f@x>", "flags")
	r, err := tg.Put(ctx, delivery("INBOX", body, "<f@x>", `\Seen`), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := tg.SetFlags(ctx, "INBOX", r, []string{`\Answered`, "Work"})
	if err != nil || r2 != r {
		t.Fatalf("SetFlags = %q, %v", r2, err)
	}
	src, err := srcimap.Open(ctx, srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	metas, err := src.List(ctx, mailbox.Folder{Name: "INBOX"})
	if err != nil || len(metas) != 1 {
		t.Fatalf("List = %v, %v", metas, err)
	}
	if want := []string{`\answered`, "work"}; !slices.Equal(lower(metas[0].Flags), want) {
		t.Errorf("flags = %q, want %q", metas[0].Flags, want)
	}
	if _, err := tg.SetFlags(ctx, "INBOX", "junk", nil); err == nil {
		t.Error("bad receipt: no error")
	}
}

func TestCancelClosesConnection(t *testing.T) {
	// A server that greets and then never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n")
				io.Copy(io.Discard, c)
			}()
		}
	}()
	cfg := imapconn.Config{Addr: ln.Addr().String(), Security: imapconn.None, User: "u", Password: "p", Timeout: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err = Open(ctx, cfg)
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Open = %v, want context.Canceled", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("cancel took %v", time.Since(start))
	}
	// Timeout bounds the login too.
	cfg.Timeout = 300 * time.Millisecond
	_, err = Open(context.Background(), cfg)
	if err == nil || failure.KindOf(err) != failure.Temporary {
		t.Errorf("Open with timeout = %v (kind %v)", err, failure.KindOf(err))
	}
}

func TestCancelDuringPut(t *testing.T) {
	srv := imaptest.Start(t, imaptest.Options{})
	tg := open(t, srv)
	body := msg("<c@x>", "cancelled")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	go func() {
		pw.Write(body[:10])
		time.Sleep(200 * time.Millisecond)
		cancel()
		time.Sleep(200 * time.Millisecond)
		pw.Write(body[10:]) // may fail: the reader is gone
		pw.Close()
	}()
	done := make(chan error, 1)
	go func() {
		_, err := tg.Put(ctx, delivery("INBOX", body, "<c@x>"), pr)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Put succeeded after cancel")
		}
	case <-time.After(5 * time.Second):
		pw.CloseWithError(errors.New("test timeout"))
		t.Fatal("Put did not return after cancel")
	}
	// The target still works with a live context.
	if _, err := tg.Put(context.Background(), delivery("INBOX", body, "<c@x>"), bytes.NewReader(body)); err != nil {
		t.Errorf("Put after cancel: %v", err)
	}
}

func lower(flags []string) []string {
	var out []string
	for _, f := range flags {
		out = append(out, strings.ToLower(f))
	}
	slices.Sort(out)
	return out
}
