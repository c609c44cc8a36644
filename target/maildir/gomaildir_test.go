//go:build !windows

package maildir

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	gomaildir "github.com/emersion/go-maildir"

	"github.com/mailferry/mailferry/internal/mailbox"
)

// TestReadableByGoMaildir: what the target writes is a Maildir that
// go-maildir reads back: each stored message under its planned name (the
// key), with the flag letters of its IMAP flags, and the exact bytes.
func TestReadableByGoMaildir(t *testing.T) {
	root := t.TempDir()
	tg := open(t, root)
	defer tg.Close()
	ctx := context.Background()
	if _, err := tg.Ensure(ctx, mailbox.Folder{Name: "Work"}); err != nil {
		t.Fatal(err)
	}
	msgs := []struct {
		name, body string
		flags      []string
		letters    []gomaildir.Flag
	}{
		{"m1", "Subject: one\n\nbody one\n", []string{`\Seen`, `\Flagged`}, []gomaildir.Flag{gomaildir.FlagFlagged, gomaildir.FlagSeen}},
		{"m2", "Subject: two\n\nbody two\n", []string{`\Answered`, `\Draft`, `\Deleted`}, []gomaildir.Flag{gomaildir.FlagDraft, gomaildir.FlagReplied, gomaildir.FlagTrashed}},
		{"m3", "Subject: three\n\n", nil, nil},
	}
	for _, m := range msgs {
		d := delivery("Work", m.name, m.body, m.flags...)
		if _, err := tg.Put(ctx, d, strings.NewReader(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]*gomaildir.Message{}
	if err := gomaildir.Dir(filepath.Join(root, ".Work")).Walk(func(m *gomaildir.Message) error {
		unique, _, _ := strings.Cut(m.Key(), ",")
		got[unique] = m
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("go-maildir sees %d messages, want %d", len(got), len(msgs))
	}
	for _, m := range msgs {
		gm := got[m.name]
		if gm == nil {
			t.Fatalf("go-maildir does not see %s", m.name)
		}
		if !slices.Equal(gm.Flags(), m.letters) {
			t.Errorf("%s: flags %q, want %q", m.name, string(gm.Flags()), string(m.letters))
		}
		rc, err := gm.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != m.body {
			t.Errorf("%s: body %q, want %q", m.name, b, m.body)
		}
	}
}
