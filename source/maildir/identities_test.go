package maildir

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mailferry/mailferry/internal/message"
	"github.com/mailferry/mailferry/source"
)

func TestIdentities(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := []struct{ name, raw, msgID string }{
		{"new/1700000001.M1P1.h", "Message-ID: <a@x>\r\nSubject: plain\r\n\r\nbody\r\n", "<a@x>"},
		{"cur/1700000002.M2P1.h,S=99:2,S", "Subject: none\r\n\r\nMessage-ID: <in-body@x>\r\n", ""},
		{"cur/1700000003.M3P1.h:2,", "Subject: folded\nMessage-ID:\n   <folded@x>\n\nbare LF\n", "<folded@x>"},
		{"cur/1700000004.M4P1.h:2,RS", "message-id: <twin@x>\r\n\r\none\r\n", "<twin@x>"},
		{"new/1700000005.M5P1.h", "Message-Id: <twin@x>\r\n\r\ntwo, longer\r\n", "<twin@x>"},
		{"cur/1700000006.M6P1.h:2,S", "X-Long: " + strings.Repeat("y", 10000) + "\r\nMessage-ID: <after-long@x>\r\n\r\n" + strings.Repeat("z", 1<<20), "<after-long@x>"},
	}
	for i, f := range files {
		p := filepath.Join(root, f.name)
		if err := os.WriteFile(p, []byte(f.raw), 0o600); err != nil {
			t.Fatal(err)
		}
		mt := time.Unix(1700000000+int64(i), 0)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	s, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	inbox := source.Folder{Name: "INBOX", Validity: Validity}
	collect := func() []source.Identity {
		var out []source.Identity
		if err := s.Identities(ctx, inbox, func(id source.Identity) error { out = append(out, id); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	ids := collect()
	metas, err := s.List(ctx, inbox)
	if err != nil || len(ids) != len(files) || len(metas) != len(files) {
		t.Fatalf("%d identities, %d metas (%v), want %d", len(ids), len(metas), err, len(files))
	}
	for i, id := range ids {
		m := metas[i]
		if id.ID != m.ID || id.Size != m.Size || !id.Date.Equal(m.Received) || id.MessageID != files[i].msgID {
			t.Errorf("identity %d = %+v, want ID %s size %d date %v Message-ID %q", i, id, m.ID, m.Size, m.Received, files[i].msgID)
		}
	}
	// Moved to cur/ with new flags after the scan: still found; removed:
	// skipped. The move happens in fn, between two files.
	moved := false
	var got []string
	err = s.Identities(ctx, inbox, func(id source.Identity) error {
		if !moved {
			moved = true
			if err := os.Rename(filepath.Join(root, "new/1700000005.M5P1.h"), filepath.Join(root, "cur/1700000005.M5P1.h:2,S")); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(root, "cur/1700000004.M4P1.h:2,RS"))
		}
		got = append(got, id.ID)
		return nil
	})
	want := "1700000001.M1P1.h 1700000002.M2P1.h 1700000003.M3P1.h 1700000005.M5P1.h 1700000006.M6P1.h"
	if err != nil || strings.Join(got, " ") != want {
		t.Errorf("after a move and a removal: %v, %v; want %s", got, err, want)
	}
	boom := errors.New("boom")
	n := 0
	if err := s.Identities(ctx, inbox, func(source.Identity) error { n++; return boom }); err != boom || n != 1 {
		t.Errorf("Identities with failing fn = %v after %d calls", err, n)
	}
}

// TestReadHeader: the header is read up to its blank line and not a line
// further (the body is never read), whatever its line ends and lengths.
func TestReadHeader(t *testing.T) {
	tests := []struct{ hdr, msgID string }{
		{"Message-ID: <a@x>\r\n\r\n", "<a@x>"},
		{"Message-ID: <a@x>\n\n", "<a@x>"},
		{"X: " + strings.Repeat("x", 4093) + "\r\nMessage-ID: <long@x>\r\n\r\n", "<long@x>"},
		{"X: " + strings.Repeat("x", 4092) + "\nMessage-ID: <long@x>\n\n", "<long@x>"},
		{"\r\n", ""},
	}
	for _, tc := range tests {
		var sc message.Scanner
		r := bufio.NewReaderSize(io.MultiReader(strings.NewReader(tc.hdr), iotest.ErrReader(errors.New("read the body"))), 4096)
		if err := message.ReadHeader(r, &sc); err != nil || sc.MessageID() != tc.msgID {
			t.Errorf("message.ReadHeader(%.40q) = %v, Message-ID %q; want %q", tc.hdr, err, sc.MessageID(), tc.msgID)
		}
	}
	// A file that ends inside its header is no error.
	var sc message.Scanner
	if err := message.ReadHeader(bufio.NewReader(strings.NewReader("Message-ID: <eof@x>")), &sc); err != nil || sc.MessageID() != "<eof@x>" {
		t.Errorf("header without a line end: %v, %q", err, sc.MessageID())
	}
}
