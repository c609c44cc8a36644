package maildir

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/target"
	tgt "github.com/mailferry/mailferry/target/maildir"
)

// fixture copies testdata/Maildir to a temporary directory and gives every
// message file the mtime of the Unix time that starts its name. Names are
// stored %-escaped (":" as %3A, "\" as %5C), which git cannot hold on
// every system, and unescaped here.
func fixture(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Maildir")
	err := filepath.WalkDir("testdata/Maildir", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/Maildir", p)
		rel, err = url.PathUnescape(rel)
		if err != nil {
			return err
		}
		dst := filepath.Join(root, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			return err
		}
		if sec, err := strconv.ParseInt(strings.SplitN(d.Name(), ".", 2)[0], 10, 64); err == nil {
			return os.Chtimes(dst, time.Unix(sec, 0), time.Unix(sec, 0))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

type fileState struct {
	mtime time.Time
	mode  fs.FileMode
	sum   [32]byte
}

func snapshot(t *testing.T, root string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Lstat(p)
		st := fileState{mtime: fi.ModTime(), mode: fi.Mode()}
		if !d.IsDir() {
			data, _ := os.ReadFile(p)
			st.sum = sha256.Sum256(data)
		}
		out[p] = st
		return nil
	})
	return out
}

func flagsOf(f []string) string { return strings.Join(f, " ") }

func TestReadDovecotTree(t *testing.T) {
	ctx := context.Background()
	root := fixture(t)
	before := snapshot(t, root)
	s, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	folders, err := s.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []source.Folder{{Name: "INBOX", Validity: 1}, {Name: "Sent", Validity: 1}, {Name: "v1.2", Validity: 1},
		{Name: "العملاء", Validity: 1}, {Name: "العملاء/2024", Validity: 1}}
	if !reflect.DeepEqual(folders, want) {
		t.Fatalf("Folders = %+v\nwant %+v", folders, want)
	}
	type msg struct{ id, flags string }
	wantMsgs := map[string][]msg{
		"INBOX": {{"1700000001.M1P100.mail", `\Seen`}, {"1700000002.M2P100.mail", `\Answered \Seen $Junk`},
			{"1700000003.M3P100.mail", ""}},
		"Sent":         {{"1700000010.M1P200.mail", `\Seen`}},
		"v1.2":         {{"1700000040.M1P500.mail", ""}},
		"العملاء":      {{"1700000020.M1P300.mail", `\Flagged $Forwarded \Seen Work`}},
		"العملاء/2024": {{"1700000030.M1P400.mail", ""}, {"1700000031.M1P400.mail", `\Draft \Flagged \Deleted $Forwarded`}},
	}
	for _, f := range folders {
		metas, err := s.List(ctx, f)
		if err != nil {
			t.Fatalf("List(%q): %v", f.Name, err)
		}
		var got []msg
		var ids []string
		for _, m := range metas {
			got = append(got, msg{m.ID, flagsOf(m.Flags)})
			ids = append(ids, m.ID)
			sec, _ := strconv.ParseInt(strings.SplitN(m.ID, ".", 2)[0], 10, 64)
			if !m.Received.Equal(time.Unix(sec, 0)) {
				t.Errorf("%s: Received = %v", m.ID, m.Received)
			}
		}
		if !reflect.DeepEqual(got, wantMsgs[f.Name]) {
			t.Errorf("List(%q) = %q\nwant %q", f.Name, got, wantMsgs[f.Name])
		}
		i := 0
		err = s.Fetch(ctx, f, ids, func(m source.Meta, r io.Reader) error {
			data, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			if m.ID != ids[i] || int64(len(data)) != m.Size || m.Size != metas[i].Size {
				t.Errorf("Fetch %d: id %q size %d, read %d bytes; listed %+v", i, m.ID, m.Size, len(data), metas[i])
			}
			if !strings.HasPrefix(string(data), "From: a@example.org") {
				t.Errorf("Fetch %s: body %q", m.ID, data)
			}
			if !reflect.DeepEqual(m, metas[i]) {
				t.Errorf("Fetch meta %+v != List meta %+v", m, metas[i])
			}
			i++
			return nil
		})
		if err != nil || i != len(ids) {
			t.Errorf("Fetch(%q) delivered %d of %d: %v", f.Name, i, len(ids), err)
		}
	}
	if after := snapshot(t, root); !reflect.DeepEqual(before, after) {
		for p, st := range before {
			if after[p] != st {
				t.Errorf("changed: %s", p)
			}
		}
		t.Errorf("tree changed: %d entries before, %d after", len(before), len(after))
	}
}

func TestFetchFollowsMovedFiles(t *testing.T) {
	ctx := context.Background()
	root := fixture(t)
	s, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	inbox := source.Folder{Name: "INBOX", Validity: 1}
	metas, err := s.List(ctx, inbox)
	if err != nil || len(metas) != 3 {
		t.Fatalf("List = %v, %v", metas, err)
	}
	// Dovecot moves the new message to cur/ with \Seen, and someone expunges another.
	newName := "1700000003.M3P100.mail,S=147"
	if err := os.Rename(filepath.Join(root, "new", newName), filepath.Join(root, "cur", newName+":2,S")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(root, "cur", "1700000001.M1P100.mail,S=131:2,S"))
	var got []string
	err = s.Fetch(ctx, inbox, []string{"1700000001.M1P100.mail", "1700000002.M2P100.mail", "1700000003.M3P100.mail", "nosuch"},
		func(m source.Meta, r io.Reader) error {
			got = append(got, m.ID+" "+flagsOf(m.Flags))
			return nil
		})
	var ve *source.VanishedError
	if !errors.As(err, &ve) || !reflect.DeepEqual(ve.IDs, []string{"1700000001.M1P100.mail", "nosuch"}) || ve.Folder != "INBOX" {
		t.Errorf("Fetch error = %v", err)
	}
	want := []string{`1700000002.M2P100.mail \Answered \Seen $Junk`, `1700000003.M3P100.mail \Seen`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
}

func TestFetchWithoutListAndStops(t *testing.T) {
	ctx := context.Background()
	root := fixture(t)
	s, _ := Open(ctx, root)
	f := source.Folder{Name: "العملاء/2024", Validity: 1}
	stop := errors.New("stop")
	n := 0
	err := s.Fetch(ctx, f, []string{"1700000031.M1P400.mail", "1700000030.M1P400.mail"}, func(m source.Meta, r io.Reader) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Fetch = %v after %d calls", err, n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Fetch(cctx, f, []string{"1700000031.M1P400.mail"}, func(source.Meta, io.Reader) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch with a cancelled context = %v", err)
	}
	if _, err := Open(ctx, filepath.Join(root, "missing")); err == nil {
		t.Error("Open of a missing root succeeded")
	}
}

// TestTargetRoundTrip writes with target/maildir and reads back with this package.
func TestTargetRoundTrip(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	tg, err := tgt.Open(ctx, root, tgt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	date := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	folders := []string{"INBOX", "a.b/c", "R&D/أرشيف", "Sent Items"}
	for i, name := range folders {
		if _, err := tg.Ensure(ctx, source.Folder{Name: name}); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("Subject: %d\n\nno CRLF here\n", i)
		d := target.Delivery{Folder: name, Flags: []string{`\Seen`, "Label" + strconv.Itoa(i)}, Date: date, Size: int64(len(body)), Name: fmt.Sprintf("u%d", i)}
		if _, err := tg.Put(ctx, d, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := s.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fl {
		names = append(names, f.Name)
	}
	if strings.Join(names, "|") != "INBOX|R&D|R&D/أرشيف|Sent Items|a.b|a.b/c" {
		t.Fatalf("Folders = %q", names)
	}
	for i, name := range folders {
		f := source.Folder{Name: name, Validity: 1}
		metas, err := s.List(ctx, f)
		if err != nil || len(metas) != 1 {
			t.Fatalf("List(%q) = %v, %v", name, metas, err)
		}
		m := metas[0]
		if m.ID != fmt.Sprintf("u%d", i) || !m.Received.Equal(date) || flagsOf(m.Flags) != `\Seen Label`+strconv.Itoa(i) {
			t.Errorf("List(%q) = %+v", name, m)
		}
		s.Fetch(ctx, f, []string{m.ID}, func(_ source.Meta, r io.Reader) error {
			data, _ := io.ReadAll(r)
			if string(data) != fmt.Sprintf("Subject: %d\n\nno CRLF here\n", i) {
				t.Errorf("body %q", data)
			}
			return nil
		})
	}
}

// TestSessionsShareTheIndex: a folder listed by one session is fetched by
// another without a scan of its own (the engine lists on one session and
// fetches on the workers'; each scan of a big folder costs a stat per
// file); a file moved since is still found, by one rescan.
func TestSessionsShareTheIndex(t *testing.T) {
	root := fixture(t)
	ctx := context.Background()
	scans := 0
	testHookScan = func(string) { scans++ }
	defer func() { testHookScan = nil }()
	a, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	f := source.Folder{Name: "INBOX", Validity: Validity}
	metas, err := a.List(ctx, f)
	if err != nil || len(metas) < 2 {
		t.Fatalf("list: %d messages, %v", len(metas), err)
	}
	b, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range metas {
		ids = append(ids, m.ID)
	}
	fetch := func() int {
		n := 0
		if err := b.Fetch(ctx, f, ids, func(m source.Meta, r io.Reader) error {
			n++
			_, err := io.Copy(io.Discard, r)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := fetch(); n != len(ids) || scans != 1 {
		t.Fatalf("fetched %d of %d with %d scans; want all with the one of List", n, len(ids), scans)
	}
	// Move the first message from cur/ to new/ (as if its flags changed).
	var moved bool
	for _, sub := range []string{"cur", "new"} {
		des, _ := os.ReadDir(filepath.Join(root, sub))
		for _, de := range des {
			if !moved && strings.HasPrefix(de.Name(), ids[0]) {
				other := map[string]string{"cur": "new", "new": "cur"}[sub]
				if err := os.Rename(filepath.Join(root, sub, de.Name()), filepath.Join(root, other, de.Name())); err != nil {
					t.Fatal(err)
				}
				moved = true
			}
		}
	}
	if !moved {
		t.Fatalf("no file for %s", ids[0])
	}
	if n := fetch(); n != len(ids) || scans != 2 {
		t.Fatalf("after a move: fetched %d of %d with %d scans; want all and one rescan", n, len(ids), scans)
	}
}
