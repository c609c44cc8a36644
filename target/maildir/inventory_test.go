package maildir

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/target"
)

func TestCensusInventory(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	tg := open(t, root)
	longHeader := "X-Long: " + strings.Repeat("y", 9000) + "\r\n"
	tests := []struct {
		name, body, wantID string
	}{
		{"plain", "Message-ID: <a@x>\r\nSubject: a\r\n\r\nbody\r\n", "<a@x>"},
		{"case and folding", "Subject: b\r\nmessage-id:\r\n   <b@x>\r\n\r\nbody\r\n", "<b@x>"},
		{"bare LF", "Subject: c\nMessage-Id: <c@x>\n\nbody\n", "<c@x>"},
		{"after a long header", longHeader + "Message-ID: <d@x>\r\n\r\nbody\r\n", "<d@x>"},
		{"only in the body", "Subject: e\r\n\r\nMessage-ID: <e@x>\r\n", ""},
		{"empty header", "\r\nMessage-ID: <f@x>\r\n", ""},
		{"none", "Subject: g\r\n\r\n", ""},
	}
	want := map[string]target.Stored{}
	date := time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC)
	for i, tt := range tests {
		d := delivery("Work", fmt.Sprintf("1600000000.M%dP1.host", i), tt.body, `\Seen`)
		d.Date = date.Add(time.Duration(i) * time.Hour)
		base, err := tg.Put(ctx, d, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		want[base] = target.Stored{Receipt: base, MessageID: tt.wantID, Date: d.Date, Size: int64(len(tt.body))}
	}
	// A file another writer left in new/ without ",S=": the size is the file's.
	dir := filepath.Join(root, ".Work")
	other := "Message-ID: <other@x>\r\n\r\nhi\r\n"
	p := filepath.Join(dir, "new", "1600000001.M1P2.otherhost")
	if err := os.WriteFile(p, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, date, date)
	want["1600000001.M1P2.otherhost"] = target.Stored{Receipt: "1600000001.M1P2.otherhost", MessageID: "<other@x>", Date: date, Size: int64(len(other))}
	// Not messages: a dot file, a directory, tmp/.
	os.WriteFile(filepath.Join(dir, "cur", ".hidden"), nil, 0o600)
	os.Mkdir(filepath.Join(dir, "cur", "sub"), 0o700)
	os.WriteFile(filepath.Join(dir, "tmp", "x.mferry-j-1"), []byte("partial"), 0o600)

	c, err := tg.Census(ctx, "Work")
	if err != nil || c != (target.Census{Messages: len(want)}) {
		t.Fatalf("Census = %+v, %v; want %d messages", c, err, len(want))
	}
	got := map[string]target.Stored{}
	err = tg.Inventory(ctx, "Work", func(s target.Stored) error {
		if _, dup := got[s.Receipt]; dup {
			t.Errorf("%s reported twice", s.Receipt)
		}
		got[s.Receipt] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for base, w := range want {
		g := got[base]
		if g.Receipt != w.Receipt || g.MessageID != w.MessageID || g.Size != w.Size || !g.Date.Equal(w.Date) {
			t.Errorf("%s: got %+v, want %+v", base, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Inventory reported %d messages, want %d", len(got), len(want))
	}

	// fn's error stops Inventory and is returned.
	stop := errors.New("stop")
	calls := 0
	if err := tg.Inventory(ctx, "Work", func(target.Stored) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Inventory with a failing fn = %v after %d calls", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := tg.Inventory(cctx, "Work", func(target.Stored) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Inventory with a cancelled context = %v", err)
	}
}

// TestCensusMissingFolder: a folder that does not exist has no messages
// and is not created by looking.
func TestCensusMissingFolder(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	tg := open(t, root)
	before := files(t, root)
	c, err := tg.Census(ctx, "Nowhere/Deep")
	if err != nil || c.Messages != 0 || c.Validity != 0 {
		t.Fatalf("Census = %+v, %v", c, err)
	}
	if err := tg.Inventory(ctx, "Nowhere/Deep", func(s target.Stored) error {
		t.Errorf("message %+v in a missing folder", s)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ".Nowhere")); !os.IsNotExist(err) {
		t.Errorf("looking created the folder: %v", err)
	}
	if after := files(t, root); !slices.Equal(before, after) {
		t.Errorf("files changed: %q -> %q", before, after)
	}
	// An empty folder that exists.
	tg.Ensure(ctx, mailbox.Folder{Name: "Empty"})
	if c, err := tg.Census(ctx, "Empty"); err != nil || c.Messages != 0 {
		t.Errorf("Census of an empty folder = %+v, %v", c, err)
	}
}

// TestInventoryFollowsRename: a file renamed (new/ to cur/, new flags)
// between the listing and the read is still reported, once.
func TestInventoryFollowsRename(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	tg := open(t, root)
	var bases []string
	for i := 0; i < 3; i++ {
		body := fmt.Sprintf("Message-ID: <%d@x>\r\n\r\n", i)
		base, err := tg.Put(ctx, delivery("INBOX", fmt.Sprintf("u%d", i), body), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, base)
	}
	// Move u1 to new/ so that the listing sees it there, then rename it
	// into cur/ with a flag just before it is read.
	oldPath := filepath.Join(root, "new", "u1,S=16")
	if err := os.Rename(filepath.Join(root, "cur", bases[1]), oldPath); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	testHookRead = func(rel string) {
		if rel == "new/u1,S=16" {
			once.Do(func() {
				if err := os.Rename(oldPath, filepath.Join(root, "cur", "u1,S=16:2,S")); err != nil {
					t.Error(err)
				}
			})
		}
	}
	defer func() { testHookRead = nil }()
	var ids []string
	err := tg.Inventory(ctx, "INBOX", func(s target.Stored) error {
		ids = append(ids, s.MessageID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"<0@x>", "<1@x>", "<2@x>"}) {
		t.Errorf("reported %q", ids)
	}
}

// poison fails the test when read: readMessageID must stop at the blank
// line.
type poison struct{ t *testing.T }

func (p poison) Read([]byte) (int, error) {
	p.t.Error("read past the header section")
	return 0, io.EOF
}

func TestReadMessageIDStopsAtBlankLine(t *testing.T) {
	tests := []struct {
		header, want string
	}{
		{"Message-ID: <a@x>\r\n\r\n", "<a@x>"},
		{"Message-ID: <a@x>\n\n", "<a@x>"},
		{"Subject: s\r\nMessage-ID:\r\n <b@x>\r\n\r\n", "<b@x>"},
		{"\r\n", ""},
		{"\n", ""},
		{strings.Repeat("X-Pad: zzzzzzzzzzzzzzzzzzzzzzzzzz\r\n", 500) + "Message-ID: <c@x>\r\n\r\n", "<c@x>"},
	}
	buf := bufio.NewReaderSize(nil, 4096)
	for _, tt := range tests {
		for _, chunked := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tt.header)
			if chunked {
				r = iotest.OneByteReader(r)
			}
			got, err := readMessageID(io.MultiReader(r, poison{t}), buf)
			if err != nil || got != tt.want {
				t.Errorf("%.30q (one byte at a time: %v) = %q, %v; want %q", tt.header, chunked, got, err, tt.want)
			}
		}
	}
	// Without a blank line, reading ends at the end of the file.
	if got, err := readMessageID(strings.NewReader("Message-ID: <d@x>\r\n"), buf); got != "<d@x>" || err != nil {
		t.Errorf("header only = %q, %v", got, err)
	}
}

// BenchmarkInventory200k measures Census and Inventory of one folder of
// 200,000 small messages (page cache warm).
func BenchmarkInventory200k(b *testing.B) {
	const n = 200_000
	root := b.TempDir()
	tg := open(b, root)
	if _, err := tg.Ensure(context.Background(), mailbox.Folder{Name: "Big"}); err != nil {
		b.Fatal(err)
	}
	cur := filepath.Join(root, ".Big", "cur")
	start := time.Now()
	for i := range n {
		body := fmt.Sprintf("Message-ID: <%d@bench>\r\nSubject: message %d\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nbody %d\r\n", i, i, i)
		name := fmt.Sprintf("1700000000.M%dP1.host,S=%d:2,S", i, len(body))
		if err := os.WriteFile(filepath.Join(cur, name), []byte(body), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("generated %d files in %v", n, time.Since(start))
	ctx := context.Background()
	b.Run("Census", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			c, err := tg.Census(ctx, "Big")
			if err != nil || c.Messages != n {
				b.Fatal(c, err)
			}
		}
	})
	b.Run("Inventory", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			count := 0
			err := tg.Inventory(ctx, "Big", func(s target.Stored) error {
				if s.MessageID == "" {
					return fmt.Errorf("%s: no Message-ID", s.Receipt)
				}
				count++
				return nil
			})
			if err != nil || count != n {
				b.Fatal(count, err)
			}
		}
	})
}
