package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/internal/testkit/pop3test"
)

// diskMessages makes n distinct messages of about 10 KB.
func diskMessages(n int) []corpus.Message {
	msgs := make([]corpus.Message, n)
	for i := range msgs {
		var b bytes.Buffer
		id := fmt.Sprintf("<disk-%04d@mailferry.test>", i)
		fmt.Fprintf(&b, "Message-ID: %s\r\nDate: Mon, 02 Jan 2023 10:%02d:%02d +0000\r\nSubject: disk full %d\r\n\r\n", id, i/60%60, i%60, i)
		for j := 0; b.Len() < 10_000; j++ {
			fmt.Fprintf(&b, "line %d of message %d: the quick brown fox jumps over the lazy dog %x\r\n", j, i, i*7919+j)
		}
		msgs[i] = corpus.Message{Folder: "INBOX", Body: b.Bytes(), MessageID: id}
	}
	return msgs
}

func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// TestDiskFull fills a 2 MB Maildir target with ~3 MB of mail: exit 1, a
// clear error naming the folder and the free space, no partial message in
// new/ or cur/; then the same command on a bigger disk completes the copy
// with exactly one copy of each message.
func TestDiskFull(t *testing.T) {
	disk := t.TempDir()
	mountTmpfs(t, disk, "2m")
	msgs := diskMessages(300)
	bodies := make([][]byte, len(msgs))
	whole := map[string]bool{}
	for i, m := range msgs {
		bodies[i] = m.Body
		whole[string(m.Body)] = true
	}
	srv, err := pop3test.Start(pop3test.Options{User: "u", Password: "pw", Messages: bodies})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	env := []string{"MAILFERRY_SOURCE_PASSWORD=pw"}
	root := filepath.Join(disk, "Maildir")
	args := []string{"migrate", "pop3://u@" + srv.Addr() + "?tls=none", "maildir:" + root, "--state", t.TempDir(), "--no-progress", "--timeout", "5s"}

	r := mf(t, env, args...)
	if r.code != 1 {
		t.Fatalf("exit %d on a full disk, want 1:\n%s", r.code, r)
	}
	if strings.Contains(r.stdout+r.stderr, "panic") || strings.Contains(r.stdout+r.stderr, "goroutine ") {
		t.Fatalf("stack trace:\n%s", r)
	}
	out := strings.ToLower(r.stdout + r.stderr)
	for _, want := range []string{"no space left", "inbox", "free"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output does not mention %q:\n%s", want, tail(r.String(), 40))
		}
	}
	// Every file in new/ and cur/ is a whole message.
	n := 0
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		switch filepath.Base(filepath.Dir(p)) {
		case "new", "cur":
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !whole[string(b)] {
				t.Errorf("partial or foreign file %s (%d bytes)", p, len(b))
			}
			n++
		}
		return nil
	})
	t.Logf("full disk: %d of %d messages stored, exit %d; stderr:\n%s", n, len(msgs), r.code, tail(r.stderr, 5))
	if n == 0 || n >= len(msgs) {
		t.Fatalf("%d messages stored on a 2 MB disk", n)
	}

	if out, err := exec.Command("mount", "-o", "remount,size=20m", disk).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v: %s", err, out)
	}
	r = mf(t, env, args...)
	if r.code != 0 {
		t.Fatalf("after the remount:\n%s", r)
	}
	checkReport(t, "POP3 → Maildir after a full disk", corpus.Compare(pop3Expect(msgs, "INBOX"), dovecottest.DumpMaildir(t, root), corpus.CompareOptions{Dates: true}))
}
