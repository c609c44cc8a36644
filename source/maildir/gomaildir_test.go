//go:build !windows

package maildir

import (
	"context"
	"io"
	"slices"
	"testing"

	gomaildir "github.com/emersion/go-maildir"

	"github.com/mailferry/mailferry/source"
)

// TestReadsGoMaildir: messages another program wrote with go-maildir (one
// delivered to new/, one created in cur/ with flags) are listed with their
// flags and fetched byte for byte, and the source moves nothing (go-maildir's
// Unseen would).
func TestReadsGoMaildir(t *testing.T) {
	root := t.TempDir()
	d := gomaildir.Dir(root)
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	del, err := gomaildir.NewDelivery(root)
	if err != nil {
		t.Fatal(err)
	}
	const fresh = "Subject: delivered\r\n\r\nto new/\r\n"
	io.WriteString(del, fresh)
	if err := del.Close(); err != nil {
		t.Fatal(err)
	}
	msg, w, err := d.Create([]gomaildir.Flag{gomaildir.FlagSeen, gomaildir.FlagReplied, gomaildir.FlagPassed})
	if err != nil {
		t.Fatal(err)
	}
	const read = "Subject: read\r\n\r\nin cur/\r\n"
	io.WriteString(w, read)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n, _ := d.UnseenCount(); n != 1 {
		t.Fatalf("new/ holds %d, want 1", n)
	}

	ctx := context.Background()
	s, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := source.Folder{Name: "INBOX", Validity: Validity}
	metas, err := s.List(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != 2 {
		t.Fatalf("listed %d, want 2", len(metas))
	}
	want := map[string][]string{msg.Key(): {`\Answered`, `\Seen`, `$Forwarded`}}
	var ids []string
	for _, m := range metas {
		ids = append(ids, m.ID)
		if w, ok := want[m.ID]; ok {
			slices.Sort(w)
			got := slices.Sorted(slices.Values(m.Flags))
			if !slices.Equal(got, w) {
				t.Errorf("flags %q, want %q", got, w)
			}
		} else if len(m.Flags) != 0 {
			t.Errorf("the delivered message has flags %q", m.Flags)
		}
	}
	bodies := map[string]bool{}
	if err := s.Fetch(ctx, f, ids, func(m source.Meta, r io.Reader) error {
		b, err := io.ReadAll(r)
		bodies[string(b)] = true
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !bodies[fresh] || !bodies[read] {
		t.Errorf("bodies %v", bodies)
	}
	if n, _ := d.UnseenCount(); n != 1 {
		t.Errorf("new/ holds %d after reading, want 1 (the source moved a file)", n)
	}
}
