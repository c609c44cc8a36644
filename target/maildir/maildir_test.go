package maildir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/internal/maildirpp"
	"github.com/mailferry/mailferry/target"
)

var quiet = Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}

func open(t testing.TB, root string) *Target {
	t.Helper()
	tg, err := Open(context.Background(), root, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func delivery(folder, name, body string, flags ...string) target.Delivery {
	return target.Delivery{Folder: folder, Name: name, Size: int64(len(body)), Flags: flags,
		Date: time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)}
}

// files lists every regular file under dir, relative to it.
func files(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func TestPutRoundTrip(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	tg := open(t, root)
	if fi, err := os.Stat(root); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("root: %v %v", fi, err)
	}
	tests := []struct {
		folder, dir string
		flags       []string
		letters     string
	}{
		{"INBOX", "", nil, ""},
		{"INBOX", "", []string{`\Seen`, `\Answered`}, "RS"},
		{"Archive/العملاء", ".Archive.&BicGRAY5BkUGRAYnBiE-", []string{`$Junk`, `\Flagged`, `Work`, `\Recent`}, "Fab"},
		{"v1.2 & more", `.v1\2e2 &- more`, []string{`\Deleted`, `\Draft`, `work`}, "DTa"},
		{"v1.2 & more", `.v1\2e2 &- more`, []string{`Work`, `$Junk`}, "ab"},
	}
	for i, tt := range tests {
		name, err := tg.Ensure(ctx, mailbox.Folder{Name: tt.folder})
		if err != nil || name != tt.folder {
			t.Fatalf("Ensure(%q) = %q, %v", tt.folder, name, err)
		}
		body := fmt.Sprintf("Subject: %d\n\nbody %d\r\n", i, i)
		unique := fmt.Sprintf("1614834367.MF%02dP1.mailferry", i)
		d := delivery(tt.folder, unique, body, tt.flags...)
		receipt, err := tg.Put(ctx, d, strings.NewReader(body))
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		want := fmt.Sprintf("%s,S=%d:2,%s", unique, len(body), tt.letters)
		if receipt != want {
			t.Errorf("receipt = %q, want %q", receipt, want)
		}
		p := filepath.Join(root, tt.dir, "cur", receipt)
		got, err := os.ReadFile(p)
		if err != nil || string(got) != body {
			t.Errorf("content = %q, %v", got, err)
		}
		fi, _ := os.Stat(p)
		if !fi.ModTime().Equal(d.Date) {
			t.Errorf("mtime = %v, want %v", fi.ModTime(), d.Date)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode = %v", fi.Mode())
		}
		if tt.dir != "" {
			if _, err := os.Stat(filepath.Join(root, tt.dir, "maildirfolder")); err != nil {
				t.Errorf("no maildirfolder: %v", err)
			}
		}
		if ents, _ := os.ReadDir(filepath.Join(root, tt.dir, "tmp")); len(ents) != 0 {
			t.Errorf("tmp not empty: %v", ents)
		}
	}
	if _, err := os.Stat(filepath.Join(root, ".Archive", "maildirfolder")); err != nil {
		t.Errorf("parent folder not created: %v", err)
	}
	for dir, want := range map[string]string{".Archive.&BicGRAY5BkUGRAYnBiE-": "0 $Junk\n1 Work\n", `.v1\2e2 &- more`: "0 work\n1 $Junk\n"} {
		kw, _ := os.ReadFile(filepath.Join(root, dir, maildirpp.KeywordsFile))
		if string(kw) != want {
			t.Errorf("%s/dovecot-keywords = %q, want %q", dir, kw, want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, maildirpp.KeywordsFile)); err == nil {
		t.Errorf("INBOX has keywords without a message with keywords")
	}
	fl, err := tg.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fl {
		names = append(names, f.Name)
	}
	if strings.Join(names, "|") != "Archive|Archive/العملاء|INBOX|v1.2 & more" {
		t.Errorf("Folders = %q", names)
	}
}

func TestPutGeneratesName(t *testing.T) {
	root := t.TempDir()
	tg := open(t, root)
	r1, err := tg.Put(context.Background(), delivery("INBOX", "", "x"), strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := tg.Put(context.Background(), delivery("INBOX", "", "y"), strings.NewReader("y"))
	u, size, _ := maildirpp.ParseFileName(r1)
	if r1 == r2 || size != 1 || !maildirpp.ValidUnique(u) || !strings.Contains(u, ".M") {
		t.Errorf("generated %q and %q", r1, r2)
	}
}

type failingReader struct {
	data []byte
	err  error
	hook func()
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		if f.hook != nil {
			f.hook()
		}
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestPutFailureLeavesNothing(t *testing.T) {
	body := strings.Repeat("line of mail\r\n", 10000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errSource := errors.New("connection reset by source")
	tests := []struct {
		name  string
		ctx   context.Context
		size  int64
		r     io.Reader
		check func(error) bool
	}{
		{"reader fails mid-way", context.Background(), int64(len(body)), &failingReader{data: []byte(body[:5000]), err: errSource},
			func(err error) bool { return errors.Is(err, errSource) }},
		{"short body", context.Background(), int64(len(body)), strings.NewReader(body[:len(body)-1]),
			func(err error) bool { return failure.Is(err, failure.Temporary) }},
		{"long body", context.Background(), int64(len(body)) - 1, strings.NewReader(body),
			func(err error) bool { return failure.Is(err, failure.Temporary) }},
		{"cancelled mid-way", ctx, int64(len(body)), io.MultiReader(&failingReader{data: []byte(body[:5000]), err: io.EOF, hook: cancel}, strings.NewReader(body[5000:])),
			func(err error) bool { return errors.Is(err, context.Canceled) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			tg := open(t, root)
			d := delivery("Folder", "1614834367.MFfailP1.mailferry", body)
			d.Size = tt.size
			receipt, err := tg.Put(tt.ctx, d, tt.r)
			if err == nil || !tt.check(err) {
				t.Fatalf("Put = %q, %v", receipt, err)
			}
			if f := files(t, root); len(f) != 1 || f[0] != ".Folder/maildirfolder" {
				t.Errorf("files left: %q", f)
			}
			if _, ok, err := tg.Find(context.Background(), d); ok || err != nil {
				t.Errorf("Find after a failed Put = %v, %v", ok, err)
			}
		})
	}
}

func TestFind(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	a, b := open(t, root), open(t, root)
	d := delivery("Sent", "1614834367.MFfindP1.mailferry", "hello", `\Seen`)
	if _, ok, err := a.Find(ctx, d); ok || err != nil {
		t.Fatalf("Find in a missing folder = %v, %v", ok, err)
	}
	if _, err := a.Ensure(ctx, mailbox.Folder{Name: "Sent"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Find(ctx, d); ok {
		t.Fatal("found before Put")
	}
	// b writes; a's index is stale and must notice.
	receipt, err := b.Put(ctx, d, strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := a.Find(ctx, d)
	if !ok || err != nil || got != receipt {
		t.Fatalf("Find = %q, %v, %v; want %q", got, ok, err, receipt)
	}
	// Dovecot changed the flags meanwhile.
	moved := "1614834367.MFfindP1.mailferry,S=5:2,FS"
	os.Rename(filepath.Join(root, ".Sent", "cur", receipt), filepath.Join(root, ".Sent", "cur", moved))
	if got, ok, _ := a.Find(ctx, d); !ok || got != moved {
		t.Errorf("Find after rename = %q, %v", got, ok)
	}
	// A file in new/ counts too.
	d2 := delivery("Sent", "1614834367.MFnewP1.mailferry", "hi")
	os.WriteFile(filepath.Join(root, ".Sent", "new", d2.Name+",S=2"), []byte("hi"), 0o600)
	if got, ok, _ := a.Find(ctx, d2); !ok || got != d2.Name+",S=2" {
		t.Errorf("Find in new/ = %q, %v", got, ok)
	}
	// Same name, other size: not this message.
	d3 := d
	d3.Size = 99
	if _, ok, _ := a.Find(ctx, d3); ok {
		t.Error("Find matched a file of another size")
	}
}

func TestHostileFolderNames(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	root := filepath.Join(parent, "Maildir")
	tg := open(t, root)
	names := []string{"../../etc", "a/../../b", "..", ".", "/", "", "x\x00y", "../Maildir2",
		strings.Repeat("long", 1250), strings.Repeat("أرشيف/", 80), "\x1b[31mred", "cur", "tmp/../new", "~", ".hidden", "a\\b"}
	for i, n := range names {
		got, err := tg.Ensure(ctx, mailbox.Folder{Name: n})
		if err != nil {
			t.Fatalf("Ensure(%q): %v", n, err)
		}
		if _, ch := maildirpp.SafeFolder(n); ch != (got != n) {
			t.Errorf("Ensure(%q) = %q", n, got)
		}
		body := fmt.Sprintf("msg %d", i)
		if _, err := tg.Put(ctx, delivery(got, fmt.Sprintf("u%d", i), body), strings.NewReader(body)); err != nil {
			t.Fatalf("Put into %q: %v", got, err)
		}
		// The unsafe original name given to Put lands in the same place.
		if _, err := tg.Put(ctx, delivery(n, fmt.Sprintf("v%d", i), body), strings.NewReader(body)); err != nil {
			t.Fatalf("Put into %q: %v", n, err)
		}
	}
	for _, f := range files(t, parent) {
		if !strings.HasPrefix(f, "Maildir/") {
			t.Errorf("file outside the root: %q", f)
		}
		for _, c := range strings.Split(f, "/") {
			if len(c) > 255 {
				t.Errorf("path component of %d bytes", len(c))
			}
		}
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 1 {
		t.Errorf("parent has %d entries", len(ents))
	}
	if r := tg.Renamed(); r["../../etc"] != "__/__/etc" || len(r) < 10 {
		t.Errorf("Renamed = %q", r)
	}
}

func TestConcurrentPuts(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	const workers, per = 4, 30
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tg, err := Open(ctx, root, quiet)
			if err != nil {
				errs <- err
				return
			}
			for i := range per {
				body := fmt.Sprintf("worker %d message %d", w, i)
				folder := []string{"INBOX", "A/B", "A/C"}[i%3]
				if _, err := tg.Ensure(ctx, mailbox.Folder{Name: folder}); err != nil {
					errs <- err
					return
				}
				d := delivery(folder, fmt.Sprintf("w%dm%d", w, i), body, `\Seen`, fmt.Sprintf("kw%d", (w+i)%5))
				if _, err := tg.Put(ctx, d, strings.NewReader(body)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files(t, root) {
		if strings.Contains(f, "cur/") {
			n++
		} else if filepath.Base(f) != maildirpp.KeywordsFile && !strings.HasSuffix(f, "maildirfolder") {
			t.Errorf("unexpected file %q", f)
		}
	}
	if n != workers*per {
		t.Errorf("%d messages, want %d", n, workers*per)
	}
	for _, dir := range []string{"", ".A.B", ".A.C"} {
		kw, err := maildirpp.ReadKeywords(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if _, ok := kw.Letter(fmt.Sprintf("kw%d", i)); !ok {
				t.Errorf("%q: keyword kw%d missing from %q", dir, i, kw.Names)
			}
		}
		if kw.Names[5] != "" {
			t.Errorf("%q: keyword table has duplicates: %q", dir, kw.Names)
		}
		// Every message's keyword letter names its own keyword.
		des, _ := os.ReadDir(filepath.Join(root, dir, "cur"))
		for _, de := range des {
			_, _, letters := maildirpp.ParseFileName(de.Name())
			flags := maildirpp.LettersToFlags(letters, kw)
			if len(flags) != 2 || !strings.HasPrefix(flags[1], "kw") {
				t.Errorf("%s: flags %q", de.Name(), flags)
			}
		}
	}
}

func TestSetFlags(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	tg := open(t, root)
	d := delivery("INBOX", "1614834367.MFflagP1.mailferry", "abc")
	r, err := tg.Put(ctx, d, strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := tg.SetFlags(ctx, "INBOX", r, []string{`\Seen`, `\Flagged`, "Later"})
	if err != nil || r2 != "1614834367.MFflagP1.mailferry,S=3:2,FSa" {
		t.Fatalf("SetFlags = %q, %v", r2, err)
	}
	if f := files(t, root); strings.Join(f, " ") != "cur/"+r2+" "+maildirpp.KeywordsFile {
		t.Errorf("files = %q", f)
	}
	// The old receipt still works (lookup by unique part), e.g. after Dovecot moved it.
	r3, err := tg.SetFlags(ctx, "INBOX", r, nil)
	if err != nil || r3 != "1614834367.MFflagP1.mailferry,S=3:2," {
		t.Fatalf("SetFlags = %q, %v", r3, err)
	}
	if _, err := tg.SetFlags(ctx, "INBOX", "nosuch,S=1:2,S", nil); !failure.Is(err, failure.Message) {
		t.Errorf("SetFlags on a missing message: %v", err)
	}
	if _, err := tg.SetFlags(ctx, "INBOX", "../x", nil); err == nil {
		t.Error("SetFlags accepted a path")
	}
}

func TestWriteErrQuota(t *testing.T) {
	root := t.TempDir()
	tg := open(t, root)
	err := tg.writeErr("INBOX", root, &os.PathError{Op: "write", Path: root + "/tmp/x", Err: syscall.ENOSPC})
	if !failure.Is(err, failure.Quota) || !errors.Is(err, target.ErrFolderFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("not a quota error: %v", err)
	}
	want := fmt.Sprintf("write to Maildir folder \"INBOX\" at %s: no space left on device (", root)
	if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), " free)") {
		t.Errorf("message = %q", err)
	}
	if got := humanBytes(12 * 1024); got != "12 KB" {
		t.Errorf("humanBytes = %q", got)
	}
}

func TestInvalidName(t *testing.T) {
	tg := open(t, t.TempDir())
	for _, n := range []string{"../x", "a/b", "a:2,S", ".hidden"} {
		if _, err := tg.Put(context.Background(), delivery("INBOX", n, "x"), strings.NewReader("x")); err == nil {
			t.Errorf("Put accepted name %q", n)
		}
	}
}

func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	tg := open(b, b.TempDir())
	body := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 160) // 10 KiB
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := delivery("INBOX", fmt.Sprintf("bench%d", i), "")
		d.Size = int64(len(body))
		if _, err := tg.Put(ctx, d, bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// TestOpenCreatesParents: a backup into ~/Backup/bob works when ~/Backup
// does not exist yet; a root that cannot be created is a usage error.
func TestOpenCreatesParents(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Backup", "deeper", "bob")
	tg, err := Open(context.Background(), root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tg.Close()
	if _, err := os.Stat(filepath.Join(root, "cur")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), filepath.Join(file, "bob"), Options{})
	if err == nil || failure.KindOf(err) != failure.Config {
		t.Fatalf("a root under a file: %v (kind %v), want a Config error", err, failure.KindOf(err))
	}
}

// TestFindReadsABigFolderOnce: lookups in a folder other sessions keep
// writing into read its directory once, not once per lookup (a resume
// after kill -9 into a folder of 400,000 files read it per open intent).
func TestFindReadsABigFolderOnce(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	a, b := open(t, root), open(t, root)
	if _, err := a.Ensure(ctx, mailbox.Folder{Name: "Big"}); err != nil {
		t.Fatal(err)
	}
	reads := 0
	for i := 0; i < 50; i++ {
		// b stores (the directory changes), a looks up a message that
		// was never stored, and one b stored.
		d := delivery("Big", fmt.Sprintf("1614834367.MFbig%dP1.mailferry", i), "hello", `\Seen`)
		receipt, err := b.Put(ctx, d, strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		before := indexReads.Load()
		if _, ok, err := a.Find(ctx, delivery("Big", fmt.Sprintf("1614834367.MFgone%dP1.mailferry", i), "x")); ok || err != nil {
			t.Fatalf("found a message never stored: %v, %v", ok, err)
		}
		if got, ok, err := a.Find(ctx, d); !ok || err != nil || got != receipt {
			t.Fatalf("Find = %q, %v, %v; want %q", got, ok, err, receipt)
		}
		reads += int(indexReads.Load() - before)
	}
	if reads > 1 {
		t.Errorf("the folder's directory was read %d times for 100 lookups; want once", reads)
	}
}
