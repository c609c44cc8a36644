package imap

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/target"
)

// TestFindAllBatch: the open intents of one folder (after a kill -9) are
// settled with one SELECT, one SEARCH and two FETCHes (candidates, then
// the bodies to hash) however many there are, where Find costs a SELECT
// and a SEARCH each; and every delivery gets what Find gives it: exact
// copies, copies the server rewrote, twins one copy each, nothing for a
// message never stored, below the mark, or taken.
func TestFindAllBatch(t *testing.T) {
	srv := startRW(t, capsPlain, nil)
	ctx := context.Background()
	tg, err := Open(ctx, srv.config())
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	folder, err := tg.Ensure(ctx, mailbox.Folder{Name: "Big"})
	if err != nil {
		t.Fatal(err)
	}
	rewrite := func(f func([]byte) []byte) {
		srv.mu.Lock()
		srv.rewrite = f
		srv.mu.Unlock()
	}
	put := func(d target.Delivery, body []byte) string {
		t.Helper()
		r, err := tg.Put(ctx, d, bytes.NewReader(body))
		if err != nil || r == "" {
			t.Fatalf("Put: %q, %v", r, err)
		}
		return r
	}
	// The folder's old content, below the mark: one has the Message-ID
	// and date of a message of the batch that was never stored.
	for i := range 20 {
		b := msg(fmt.Sprintf("<old%d@x>", i), "old")
		put(delivery(folder, b, fmt.Sprintf("<old%d@x>", i)), b)
	}
	early := msg("<early@x>", "stored before the mark")
	put(delivery(folder, early, "<early@x>"), early)
	mark, err := tg.Mark(ctx, folder)
	if err != nil {
		t.Fatal(err)
	}

	var ds []target.Delivery
	var want []string
	add := func(d target.Delivery, r string) {
		d.Mark = mark
		ds, want = append(ds, d), append(want, r)
	}
	const n = 40
	for i := range n {
		b := msg(fmt.Sprintf("<m%d@x>", i), fmt.Sprintf("message %d", i))
		d := delivery(folder, b, fmt.Sprintf("<m%d@x>", i))
		switch i % 4 {
		case 0: // never stored
			add(d, "")
		case 1, 2: // stored as sent, the answer lost
			add(d, put(d, b))
		case 3: // stored, rewritten by the server
			rewrite(addReceived)
			add(d, put(d, b))
			rewrite(nil)
		}
	}
	// The same Message-ID as a message below the mark: not that one.
	add(delivery(folder, bytes.Replace(early, []byte("before"), []byte("after!"), 1), "<early@x>"), "")
	// Twins: two stored, three asked about.
	twin := msg("<twin@x>", "twice")
	dt := delivery(folder, twin, "<twin@x>")
	t1, t2 := put(dt, twin), put(dt, twin)
	add(dt, t1)
	add(dt, t2)
	add(dt, "")
	// Stored, but another source message stands for it.
	tb := msg("<taken@x>", "taken")
	d := delivery(folder, tb, "<taken@x>")
	tr := put(d, tb)
	d.Taken = taken(tr)
	add(d, "")
	// Two versions of a message (same Message-ID and date), the second a
	// little bigger, only the second stored: the first must not take the
	// second's copy as one the server rewrote.
	v1 := msg("<ver@x>", "version one")
	v2 := msg("<ver@x>", "version two, a little longer")
	add(delivery(folder, v1, "<ver@x>"), "")
	add(delivery(folder, v2, "<ver@x>"), put(delivery(folder, v2, "<ver@x>"), v2))

	again, err := Open(ctx, srv.config())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if _, err := again.Mark(ctx, "INBOX"); err != nil { // logged in, elsewhere
		t.Fatal(err)
	}
	sel, sea, fet := srv.selects.Load(), srv.searches.Load(), srv.fetches.Load()
	start := time.Now()
	found, err := again.FindAll(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	sel, sea, fet = srv.selects.Load()-sel, srv.searches.Load()-sea, srv.fetches.Load()-fet
	t.Logf("%d deliveries: %d SELECT, %d SEARCH, %d FETCH in %v", len(ds), sel, sea, fet, time.Since(start))
	if sel != 1 || sea != 1 || fet != 2 {
		t.Errorf("%d deliveries cost %d SELECT, %d SEARCH, %d FETCH; want 1, 1, 2", len(ds), sel, sea, fet)
	}
	given := map[string]int{}
	for i, f := range found {
		if f.OK {
			if j, dup := given[f.Receipt]; dup {
				t.Errorf("delivery %d: %q, already given to %d", i, f.Receipt, j)
			}
			given[f.Receipt] = i
		}
		twins := ds[i].Fingerprint.MessageID == "<twin@x>"
		if f.OK != (want[i] != "") || (!twins && f.Receipt != want[i]) {
			t.Errorf("delivery %d (%s): %q, %v; want %q", i, ds[i].Fingerprint.MessageID, f.Receipt, f.OK, want[i])
		}
	}
}

// TestFindAllWithoutMessageID: a delivery without a Message-ID is looked
// up as Find does (by date and size), and not given a copy the batch gave
// to another.
func TestFindAllWithoutMessageID(t *testing.T) {
	srv := startRW(t, capsPlain, nil)
	ctx := context.Background()
	tg, err := Open(ctx, srv.config())
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	mark, err := tg.Mark(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	noID := msg("", "no id")
	dn := delivery("INBOX", noID, "")
	dn.Mark = mark
	rn, err := tg.Put(ctx, dn, bytes.NewReader(noID))
	if err != nil {
		t.Fatal(err)
	}
	withID := msg("<with@x>", "with id")
	dw := delivery("INBOX", withID, "<with@x>")
	dw.Mark = mark
	rw, err := tg.Put(ctx, dw, bytes.NewReader(withID))
	if err != nil {
		t.Fatal(err)
	}
	found, err := tg.FindAll(ctx, []target.Delivery{dn, dw, dn})
	if err != nil {
		t.Fatal(err)
	}
	want := []target.Found{{Receipt: rn, OK: true}, {Receipt: rw, OK: true}, {}}
	for i := range want {
		if found[i] != want[i] {
			t.Errorf("delivery %d: %+v; want %+v", i, found[i], want[i])
		}
	}
	if _, err := tg.FindAll(ctx, []target.Delivery{dn, delivery("Other", withID, "<with@x>")}); err == nil {
		t.Error("FindAll over two folders: no error")
	}
}

// TestWarmLookup: WarmLookup selects the folder and searches one message
// (one SEARCH), does nothing in a folder that is empty or missing, and
// leaves the session to the lookup that follows.
func TestWarmLookup(t *testing.T) {
	srv := startRW(t, capsPlain, nil)
	ctx := context.Background()
	tg, err := Open(ctx, srv.config())
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	folder, err := tg.Ensure(ctx, mailbox.Folder{Name: "Big"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{folder, "Missing"} {
		s0 := srv.searches.Load()
		if err := tg.WarmLookup(ctx, name); err != nil {
			t.Fatalf("%s, empty or missing: %v", name, err)
		}
		if s := srv.searches.Load() - s0; s != 0 {
			t.Errorf("%s, empty or missing: %d SEARCH, want 0", name, s)
		}
	}
	mark, err := tg.Mark(ctx, folder)
	if err != nil {
		t.Fatal(err)
	}
	b := msg("<warm@x>", "stored before the kill")
	d := delivery(folder, b, "<warm@x>")
	d.Mark = mark
	r, err := tg.Put(ctx, d, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s0, q0 := srv.selects.Load(), srv.searches.Load()
	if err := tg.WarmLookup(ctx, folder); err != nil {
		t.Fatal(err)
	}
	if s, q := srv.selects.Load()-s0, srv.searches.Load()-q0; s != 1 || q != 1 {
		t.Errorf("warm-up: %d SELECT and %d SEARCH, want 1 and 1", s, q)
	}
	found, err := tg.FindAll(ctx, []target.Delivery{d, d})
	if err != nil || len(found) != 2 || found[0].Receipt != r || found[1].OK {
		t.Fatalf("FindAll after the warm-up: %+v, %v; want %q once", found, err, r)
	}
}
