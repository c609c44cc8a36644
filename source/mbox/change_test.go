package mbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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

// TestIDsAcrossChanges: IDs are content keys. They survive a rerun,
// Thunderbird's in-place flag update, appended mail and compaction (every
// later offset moves); the validity never changes; Fetch finds a message
// that moved after the listing, and reports the one compacted away.
func TestIDsAcrossChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Inbox")
	one := func(i int, status string) string {
		return FromLine("-", 1700000000+int64(i)) + "\nX-Mozilla-Status: " + status + "\nMessage-ID: <" + strings.Repeat("m", i+1) + "@x>\nSubject: m\n\nbody\n\n"
	}
	twin := FromLine("-", 1700000000) + "\nSubject: twin\n\nsame\n\n"
	orig := one(0, "0000") + one(1, "0000") + twin + one(2, "0000") + twin
	os.WriteFile(path, []byte(orig), 0o644)
	f1, ids1 := listIDs(t, path)
	if f1.Validity != Validity || len(ids1) != 5 || ids1[4] != ids1[2]+"-1" {
		t.Fatalf("first listing: %v %v", f1, ids1)
	}
	same := func(what string, want []string) {
		t.Helper()
		f, ids := listIDs(t, path)
		if f.Validity != Validity || strings.Join(ids, " ") != strings.Join(want, " ") {
			t.Errorf("%s: %v %v, want %v", what, f, ids, want)
		}
	}
	same("a rerun", ids1)
	os.WriteFile(path, []byte(strings.Replace(orig, "0000", "0001", 1)), 0o644)
	same("a flag update in place", ids1)
	os.WriteFile(path, []byte(orig+one(3, "0000")), 0o644)
	_, ids4 := listIDs(t, path)
	same("appended mail", append(slices.Clone(ids1), ids4[5]))
	os.WriteFile(path, []byte(one(1, "0000")+twin+one(2, "0000")+twin), 0o644)
	same("compaction", ids1[1:])

	// Listed, then compacted before Fetch: found again, the removed one
	// reported.
	os.WriteFile(path, []byte(orig), 0o644)
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fs, _ := s.Folders(context.Background())
	if _, err := s.List(context.Background(), fs[0]); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte(one(1, "0000")+twin+one(2, "0000")+twin), 0o644)
	var got []string
	err = s.Fetch(context.Background(), fs[0], ids1, func(m source.Meta, r io.Reader) error {
		b, _ := io.ReadAll(r)
		got = append(got, string(b))
		return nil
	})
	var ve *source.VanishedError
	if !errors.As(err, &ve) || len(ve.IDs) != 1 || ve.IDs[0] != ids1[0] || len(got) != 4 || !strings.Contains(got[0], "<mm@x>") || got[1] != "Subject: twin\n\nsame\n" {
		t.Errorf("Fetch after compaction: %q, %v", got, err)
	}
	if _, err := s.List(context.Background(), source.Folder{Name: fs[0].Name, Validity: 7}); !errors.As(err, new(*source.ValidityChangedError)) {
		t.Errorf("List with another validity: %v, want a ValidityChangedError", err)
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

// TestConcurrentSessions: sessions of one process share the listing's scan
// and read at their own offsets at the same time (run with -race).
func TestConcurrentSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Archive")
	msgs := corpus(MboxRD, false)
	writeMbox(t, path, MboxRD, false, msgs, func(i int) string { return FromLine("a", int64(i)) })
	ctx := context.Background()
	lister, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lister.Close()
	fs, _ := lister.Folders(ctx)
	metas, _ := lister.List(ctx, fs[0])
	errs := make(chan error, 4)
	for w := range 4 {
		go func() {
			s, err := Open(ctx, path, Options{})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			i := 0
			ids := []string{}
			for k := w; k < len(metas); k += 4 {
				ids = append(ids, metas[k].ID)
			}
			err = s.Fetch(ctx, fs[0], ids, func(m source.Meta, r io.Reader) error {
				b, err := io.ReadAll(r)
				if err == nil && !bytes.Equal(b, msgs[w+4*i]) {
					err = fmt.Errorf("worker %d message %d differs", w, w+4*i)
				}
				i++
				return err
			})
			if err == nil && s.files[0].idx != lister.files[0].idx {
				err = fmt.Errorf("worker %d scanned the file again", w)
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
