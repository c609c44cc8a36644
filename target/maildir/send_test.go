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
