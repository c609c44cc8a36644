package imap

import (
	"bytes"
	"context"
	"testing"

	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	srcimap "github.com/mailferry/mailferry/source/imap"
)

// TestDeleteFolder: the folder and its messages go, also when the session
// has it selected, and a later Ensure creates it anew.
func TestDeleteFolder(t *testing.T) {
	for _, selected := range []bool{false, true} {
		t.Run(map[bool]string{false: "not selected", true: "selected"}[selected], func(t *testing.T) {
			srv := imaptest.Start(t, imaptest.Options{})
			tg := open(t, srv)
			ctx := context.Background()
			name, err := tg.Ensure(ctx, mailbox.Folder{Name: "Scratch/probe"})
			if err != nil {
				t.Fatal(err)
			}
			body := msg("<1@x>", "hello")
			if _, err := tg.Put(ctx, delivery(name, body, "<1@x>"), bytes.NewReader(body)); err != nil {
				t.Fatal(err)
			}
			if selected {
				if _, err := tg.selectFolder(ctx, tg.names.ToServer(name), true); err != nil {
					t.Fatal(err)
				}
			}
			if err := tg.DeleteFolder(ctx, name); err != nil {
				t.Fatalf("DeleteFolder: %v", err)
			}
			fs, err := open(t, srv).Folders(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fs {
				if f.Name == name {
					t.Fatalf("%q still listed after DeleteFolder: %v", name, fs)
				}
			}
			// The session forgot it: Ensure creates it again, empty.
			if _, err := tg.Ensure(ctx, mailbox.Folder{Name: name}); err != nil {
				t.Fatal(err)
			}
			if n := census(t, srv, name); n != 0 {
				t.Errorf("re-created %q holds %d message(s), want 0", name, n)
			}
			if err := tg.DeleteFolder(ctx, "Nope"); err == nil {
				t.Error("DeleteFolder of a missing folder: no error")
			}
		})
	}
}

func census(t *testing.T, srv *imaptest.Server, name string) int {
	t.Helper()
	src, err := srcimap.Open(context.Background(), srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	metas, err := src.List(context.Background(), mailbox.Folder{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return len(metas)
}
