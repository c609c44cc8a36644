package dovecottest

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/servertest"
)

// TestStartStandalone: the entry point of cmd/mailferry-bench serves IMAP
// and POP3, runs doveadm, and its stop function ends Dovecot and removes
// the directory.
func TestStartStandalone(t *testing.T) {
	if !Available() {
		t.Skip("dovecot is not installed")
	}
	s, stop, err := StartStandalone(Options{Users: []string{"src", "dst"}}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	if err := servertest.Greet(s.IMAP, "* OK"); err != nil {
		t.Fatal(err)
	}
	if err := servertest.Greet(s.POP3, "+OK"); err != nil {
		t.Fatal(err)
	}
	out, err := s.DoveadmRun("user", "dst")
	if err != nil || !strings.Contains(out, "dst") {
		t.Fatalf("doveadm user dst: %q, %v", out, err)
	}
	if err := s.Kick("src"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DoveadmRun("no-such-command"); err == nil {
		t.Error("doveadm no-such-command did not fail")
	}
	stop()
	stopped = true
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there after stop: %v", s.Dir, err)
	}
	if err := servertest.Greet(s.IMAP, "* OK"); err == nil {
		t.Error("IMAP still answers after stop")
	}
}

// TestWalkMaildir: WalkMaildir sees what DumpMaildir reads (folders,
// flags with keywords, dates, sizes) without reading the files.
func TestWalkMaildir(t *testing.T) {
	if !Available() {
		t.Skip("dovecot is not installed")
	}
	s := Start(t, Options{Users: []string{"src"}})
	msgs := corpus.Generate(corpus.Options{Messages: 120, Seed: 4})
	s.Load(t, "src", msgs)
	want := DumpMaildir(t, s.Maildir("src"))
	var got []MaildirFile
	if err := WalkMaildir(s.Maildir("src"), func(f MaildirFile) error { got = append(got, f); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) != len(msgs) {
		t.Fatalf("WalkMaildir: %d files, DumpMaildir %d, loaded %d", len(got), len(want), len(msgs))
	}
	for i, w := range want {
		g := got[i]
		if g.Folder != w.Folder || !slices.Equal(g.Flags, w.Flags) || !g.Date.Equal(w.Date) || g.Size != int64(len(w.Body)) {
			t.Fatalf("file %d: walk %q %v %s %d; dump %q %v %s %d", i, g.Folder, g.Flags, g.Date, g.Size,
				w.Folder, w.Flags, w.Date, len(w.Body))
		}
	}
	if err := WalkMaildir(s.Maildir("none"), func(MaildirFile) error { t.Error("a file in a missing tree"); return nil }); err != nil {
		t.Fatal(err)
	}
}
