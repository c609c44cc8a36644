package imap

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	"github.com/mailferry/mailferry/source"
)

// TestListPage: the pages of a folder with gaps in its UIDs list each
// message once, in List's order, in windows of about the asked size (a
// long gap widens the window, not the number of round trips per page);
// a message that arrives while the folder is being paged is listed at the
// end, as a List after it would; STATUS gives the message count.
func TestListPage(t *testing.T) {
	srv, s, f, gone := gappyWork(t, "200", "201", "202", "203", "300")
	ctx := context.Background()
	if f.Messages != 300-len(gone) {
		t.Errorf("STATUS count %d; want %d", f.Messages, 300-len(gone))
	}
	all, err := s.List(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	var got []source.Meta
	cursor, pages := "", 0
	for {
		page, next, err := s.ListPage(ctx, f, cursor, 16)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 48 {
			t.Errorf("page of %d messages; want about 16", len(page))
		}
		got = append(got, page...)
		pages++
		if pages == 1 {
			// A message arrives while the folder is being listed.
			if _, err := srv.User.Append("Work", lit{bytes.NewReader([]byte("Subject: late\r\n\r\nx\r\n"))},
				&imap.AppendOptions{Time: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
				t.Fatal(err)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != len(all)+1 {
		t.Fatalf("pages listed %d messages; want the %d of List and the late one", len(got), len(all))
	}
	for i, m := range all {
		g := got[i]
		if g.ID != m.ID || g.Size != m.Size || !g.Received.Equal(m.Received) || len(g.Flags) != len(m.Flags) {
			t.Fatalf("message %d: page has %+v, List %+v", i, g, m)
		}
	}
	if last := got[len(got)-1]; last.ID != "301" {
		t.Errorf("last listed %s; want the late message, UID 301", last.ID)
	}
	if pages < len(all)/32 || pages > len(all)/8+4 {
		t.Errorf("%d pages for %d messages in pages of about 16", pages, len(all))
	}
}

// TestSkimPage: SkimPage walks the same windows as ListPage (same cursors,
// each message once) and gives the full Meta, equal to ListPage's, exactly
// for the IDs want keeps, and the others by ID, in UID order; with gaps in
// the UIDs and a want that keeps every seventh message.
func TestSkimPage(t *testing.T) {
	_, s, f, _ := gappyWork(t, "200", "300")
	ctx := context.Background()
	want := func(id string) bool { n, _ := strconv.Atoi(id); return n%7 == 0 }
	cursor := ""
	for pages := 0; ; pages++ {
		full, next, err := s.ListPage(ctx, f, cursor, 16)
		if err != nil {
			t.Fatal(err)
		}
		metas, known, next2, err := s.SkimPage(ctx, f, cursor, 16, want)
		if err != nil {
			t.Fatal(err)
		}
		if next2 != next {
			t.Fatalf("page %d: SkimPage's next cursor %q, ListPage's %q", pages, next2, next)
		}
		var wantMetas []source.Meta
		var wantKnown []string
		for _, m := range full {
			if want(m.ID) {
				wantMetas = append(wantMetas, m)
			} else {
				wantKnown = append(wantKnown, m.ID)
			}
		}
		if len(metas) != len(wantMetas) || len(known) != len(wantKnown) {
			t.Fatalf("page %d: %d full + %d known; want %d + %d", pages, len(metas), len(known), len(wantMetas), len(wantKnown))
		}
		for i, m := range wantMetas {
			g := metas[i]
			if g.ID != m.ID || g.Size != m.Size || !g.Received.Equal(m.Received) || len(g.Flags) != len(m.Flags) {
				t.Fatalf("page %d: skimmed %+v, listed %+v", pages, g, m)
			}
		}
		for i, id := range wantKnown {
			if known[i] != id {
				t.Fatalf("page %d: known[%d] = %s; want %s", pages, i, known[i], id)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
}

// gappyWork starts a server with a folder "Work" of 300 messages from
// which UIDs 50 to 149 and more are deleted, and returns the session, the
// folder (STATUS after the deletions) and the UIDs deleted.
func gappyWork(t *testing.T, more ...string) (*imaptest.Server, *Source, source.Folder, []string) {
	t.Helper()
	srv := imaptest.Start(t, imaptest.Options{})
	load(t, srv, "Work", 300)
	s := openSrc(t, srv.Config())
	var gone []string
	for uid := 50; uid < 150; uid++ {
		gone = append(gone, strconv.Itoa(uid))
	}
	gone = append(gone, more...)
	if err := s.Delete(context.Background(), folder(t, s, "Work"), gone); err != nil {
		t.Fatal(err)
	}
	return srv, s, folder(t, s, "Work"), gone
}
