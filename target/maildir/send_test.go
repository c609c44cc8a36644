package maildir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSendThenWait(t *testing.T) {
	root := t.TempDir()
	tg := open(t, root)
	var waits []func() (string, error)
	for i := 0; i < 5; i++ {
		body := fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)
		w, err := tg.Send(context.Background(), delivery("INBOX", fmt.Sprintf("u%d", i), body, `\Seen`), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, w)
	}
	// A failing body leaves nothing behind and does not disturb the others.
	bad := delivery("INBOX", "bad", "0123456789")
	if _, err := tg.Send(context.Background(), bad, &failingReader{data: []byte("01234"), err: errors.New("reset")}); err == nil {
		t.Fatal("want an error for a failing body")
	}
	for i, w := range waits {
		base, err := w()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(root, "cur", base))
		if err != nil || !strings.Contains(string(b), fmt.Sprintf("body %d", i)) {
			t.Fatalf("%s: %v %q", base, err, b)
		}
		if !strings.HasPrefix(base, fmt.Sprintf("u%d,S=", i)) || !strings.HasSuffix(base, ":2,S") {
			t.Fatalf("file name %q", base)
		}
	}
	if got := files(t, root); len(got) != 5 {
		t.Fatalf("files %v, want the 5 messages only", got)
	}
	// Find sees what Send stored.
	if _, ok, err := tg.Find(context.Background(), delivery("INBOX", "u3", "Subject: 3\r\n\r\nbody 3\r\n")); err != nil || !ok {
		t.Fatalf("Find after Send: %v %v", ok, err)
	}
}

// TestSendNotInCurBeforeWait: a sent message reaches cur/ only when a wait
// has seen its fsync finish; one wait settles every Send before it; Close
// removes what was sent but never waited for (not delivered, so nothing is
// left half-done in cur/ or tmp/).
func TestSendNotInCurBeforeWait(t *testing.T) {
	root := t.TempDir()
	tg := open(t, root)
	var waits []func() (string, error)
	for i := 0; i < 40; i++ {
		body := fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)
		w, err := tg.Send(context.Background(), delivery("INBOX", fmt.Sprintf("u%d", i), body), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, w)
	}
	cur, _ := os.ReadDir(filepath.Join(root, "cur"))
	if len(cur) != 0 {
		t.Fatalf("%d files in cur/ before any wait", len(cur))
	}
	if _, err := waits[0](); err != nil {
		t.Fatal(err)
	}
	cur, _ = os.ReadDir(filepath.Join(root, "cur"))
	if len(cur) != 40 {
		t.Fatalf("one wait moved %d of 40 files into cur/", len(cur))
	}
	for _, w := range waits[1:] {
		if _, err := w(); err != nil {
			t.Fatal(err)
		}
	}
	// Sent, never waited for, then closed.
	for i := 0; i < 3; i++ {
		body := "Subject: x\r\n\r\nlate\r\n"
		if _, err := tg.Send(context.Background(), delivery("INBOX", fmt.Sprintf("late%d", i), body), strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if got := files(t, root); len(got) != 40 {
		t.Fatalf("after Close: %d files, want the 40 waited for", len(got))
	}
	tmp, _ := os.ReadDir(filepath.Join(root, "tmp"))
	if len(tmp) != 0 {
		t.Fatalf("tmp/ holds %d files after Close", len(tmp))
	}
}
