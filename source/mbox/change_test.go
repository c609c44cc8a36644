package mbox

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/source"
)

func listIDs(t *testing.T, path string) (source.Folder, []string) {
	t.Helper()
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fs, err := s.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	metas, err := s.List(context.Background(), fs[0])
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range metas {
		ids = append(ids, m.ID)
	}
	return fs[0], ids
}

// TestIDsAndValidity: IDs and the validity survive a rerun and
// Thunderbird's in-place flag update; compaction changes the validity and
// turns the IDs of moved messages into vanished ones; appending changes the
// validity but keeps the old IDs.
func TestIDsAndValidity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Inbox")
	one := func(i int, status string) string {
		return FromLine("-", 1700000000+int64(i)) + "\nX-Mozilla-Status: " + status + "\nMessage-ID: <" + strings.Repeat("m", i+1) + "@x>\nSubject: m\n\nbody\n\n"
	}
	orig := one(0, "0000") + one(1, "0000") + one(2, "0000")
	os.WriteFile(path, []byte(orig), 0o644)
	f1, ids1 := listIDs(t, path)
	f2, ids2 := listIDs(t, path)
	if f1 != f2 || strings.Join(ids1, " ") != strings.Join(ids2, " ") {
		t.Fatalf("a rerun changed IDs or validity: %v %v / %v %v", f1, ids1, f2, ids2)
	}
	// Thunderbird marks the first message read, in place.
	os.WriteFile(path, []byte(strings.Replace(orig, "0000", "0001", 1)), 0o644)
	f3, ids3 := listIDs(t, path)
	if f1 != f3 || strings.Join(ids1, " ") != strings.Join(ids3, " ") {
		t.Fatalf("a flag update changed IDs or validity: %v %v / %v %v", f1, ids1, f3, ids3)
	}
	// Appended mail: old IDs kept, validity changed (the engine reconciles).
	os.WriteFile(path, []byte(orig+one(3, "0000")), 0o644)
	f4, ids4 := listIDs(t, path)
	if f4.Validity == f1.Validity || strings.Join(ids4[:3], " ") != strings.Join(ids1, " ") {
		t.Fatalf("append: %v %v / %v %v", f1, ids1, f4, ids4)
	}
	// Compaction: the first message removed, the others moved.
	os.WriteFile(path, []byte(one(1, "0000")+one(2, "0000")), 0o644)
	f5, _ := listIDs(t, path)
	if f5.Validity == f1.Validity {
		t.Fatal("compaction kept the validity")
	}
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.List(context.Background(), f1); !errors.As(err, new(*source.ValidityChangedError)) {
		t.Errorf("List with the old validity: %v, want a ValidityChangedError", err)
	}
	var got int
	err = s.Fetch(context.Background(), f5, ids1, func(source.Meta, io.Reader) error { got++; return nil })
	var ve *source.VanishedError
	if !errors.As(err, &ve) || len(ve.IDs) != 3 || got != 0 {
		t.Errorf("Fetch of the old IDs after compaction: %d delivered, %v", got, err)
	}
}

// TestIdentities gives each message's Message-ID, date and size.
func TestIdentities(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Inbox")
	var b bytes.Buffer
	Encode(&b, MboxRD, FromLine("a", 1700000000), []byte("Message-ID: <one@x>\n\nFrom x\n"), false)
	Encode(&b, MboxRD, FromLine("a", 1700000100), []byte("Subject: no id\n\nx"), false)
	os.WriteFile(path, b.Bytes(), 0o644)
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fs, _ := s.Folders(context.Background())
	metas, _ := s.List(context.Background(), fs[0])
	var ids []source.Identity
	if err := s.Identities(context.Background(), fs[0], func(i source.Identity) error { ids = append(ids, i); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[0].MessageID != "<one@x>" || ids[1].MessageID != "" ||
		ids[0].Size != int64(len("Message-ID: <one@x>\n\nFrom x\n")) || ids[1].Size != int64(len("Subject: no id\n\nx")) ||
		ids[0].Date.Unix() != 1700000000 || ids[0].ID != metas[0].ID || ids[1].ID != metas[1].ID {
		t.Errorf("identities %+v", ids)
	}
}

// FuzzRoundTrip: any messages written as mboxrd (LF or CRLF line ends)
// come back byte for byte, and any file parses without a panic, with
// Fetch delivering what List announced.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("Subject: a\n\nFrom b\n"), []byte(">From c\r\n\r\n"), false)
	f.Add([]byte(""), []byte("x"), true)
	f.Add([]byte("From x Mon Jan  1 00:00:00 2024\n"), []byte("\r"), false)
	f.Fuzz(func(t *testing.T, a, b []byte, crlf bool) {
		msgs := [][]byte{a, b, a}
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		writeMbox(t, path, MboxRD, crlf, msgs, func(i int) string { return FromLine("x", int64(i)) })
		s, err := Open(context.Background(), path, Options{Format: MboxRD})
		if err != nil {
			t.Fatal(err)
		}
		got := fetchAll(t, s)["f"]
		s.Close()
		if len(got) != 3 {
			t.Fatalf("%d messages", len(got))
		}
		for i := range msgs {
			if !bytes.Equal(got[i], msgs[i]) {
				t.Fatalf("message %d: got %q, want %q", i, got[i], msgs[i])
			}
		}
		// Arbitrary bytes after a "From " line: no panic, sizes agree.
		os.WriteFile(path, append([]byte("From x Mon Jan  1 00:00:00 2024\n"), append(a, b...)...), 0o644)
		for _, fm := range []Format{Auto, MboxO, MboxCL} {
			s, err := Open(context.Background(), path, Options{Format: fm})
			if err != nil {
				t.Fatal(err)
			}
			fetchAll(t, s)
			s.Close()
		}
	})
}

// TestNotMbox: a file that does not start with a "From " line is a
// configuration error, not an empty folder; an empty file is an empty one.
func TestNotMbox(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "notes")
	os.WriteFile(bad, []byte("Subject: not an mbox\n\nx\n"), 0o644)
	s, err := Open(context.Background(), bad, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Folders(context.Background())
	if err == nil || failure.KindOf(err) != failure.Config || !strings.Contains(err.Error(), "not an mbox") {
		t.Errorf("Folders: %v (kind %v), want a configuration error", err, failure.KindOf(err))
	}
	empty := filepath.Join(dir, "Empty.mbox")
	os.WriteFile(empty, nil, 0o644)
	s, err = Open(context.Background(), empty, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if all := fetchAll(t, s); len(all) != 0 {
		t.Errorf("empty file: %v", all)
	}
	fs, _ := s.Folders(context.Background())
	if len(fs) != 1 || fs[0].Name != "Empty" {
		t.Errorf("empty file: folders %v", fs)
	}
}
