package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/source/mbox"
)

// thunderbirdTree writes msgs as a Thunderbird "Local Folders" tree (one
// mboxrd file per folder, CRLF as on Windows, subfolders in Name.sbd/),
// with the flags in X-Mozilla-Status / X-Mozilla-Keys (and \Draft,
// \Deleted in X-Status, as mutt would), plus an expunged, not yet
// compacted message every 25. It returns what a copy must hold: the
// messages as stored (status headers included), dated by their "From "
// lines.
func thunderbirdTree(t *testing.T, root string, msgs []corpus.Message) []corpus.Message {
	t.Helper()
	files := map[string]*bytes.Buffer{}
	var want []corpus.Message
	for i, m := range msgs {
		path := "Inbox"
		if m.Folder != "INBOX" {
			parts := strings.Split(m.Folder, "/")
			for k := range parts[:len(parts)-1] {
				parts[k] += ".sbd"
			}
			path = filepath.Join(parts...)
		}
		b := files[path]
		if b == nil {
			b = new(bytes.Buffer)
			files[path] = b
		}
		status, xstatus := 0, ""
		var keys []string
		for _, f := range m.Flags {
			switch f {
			case `\Seen`:
				status |= 1
			case `\Answered`:
				status |= 2
			case `\Flagged`:
				status |= 4
			case "$Forwarded":
				status |= 0x1000
			case `\Draft`:
				xstatus += "T"
			case `\Deleted`:
				xstatus += "D"
			default:
				keys = append(keys, f)
			}
		}
		hdr := fmt.Sprintf("X-Mozilla-Status: %04x\r\nX-Mozilla-Status2: 00000000\r\nX-Mozilla-Keys: %-40s\r\n", status, strings.Join(keys, " "))
		if xstatus != "" {
			hdr += "X-Status: " + xstatus + "\r\n"
		}
		body := append([]byte(hdr), m.Body...)
		from := mbox.FromLine("-", m.Date.Unix())
		if err := mbox.Encode(b, mbox.MboxRD, from, body, true); err != nil {
			t.Fatal(err)
		}
		want = append(want, corpus.Message{Folder: m.Folder, Body: body, Flags: m.Flags, Date: m.Date.Truncate(time.Second), MessageID: m.MessageID})
		if i%25 == 0 {
			gone := append([]byte("X-Mozilla-Status: 0009\r\n"), m.Body...)
			mbox.Encode(b, mbox.MboxRD, from, gone, true)
		}
	}
	for path, b := range files {
		p := filepath.Join(root, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p+".msf", []byte("// <!-- <mdb:mork:z v=\"1.4\"/> -->\n"), 0o644)
	}
	return want
}

// takeoutFile writes msgs as a Google Takeout mbox (LF, mboxrd): the
// folder as a label, every 7th message with two more labels, flags as
// Takeout has them (Unread, Starred). It returns the copies expected with
// --gmail-labels each.
func takeoutFile(t *testing.T, path string, msgs []corpus.Message) []corpus.Message {
	t.Helper()
	var b bytes.Buffer
	var want []corpus.Message
	for i, m := range msgs {
		label := map[string]string{"INBOX": "Inbox"}[m.Folder]
		if label == "" {
			label = m.Folder
		}
		labels := []string{label}
		folders := []string{m.Folder}
		if i%7 == 0 {
			labels = append(labels, "Extra/One", "Important", "Category Updates", "Extra Two")
			folders = append(folders, "Extra/One", "Extra Two")
		}
		flags := []string{}
		if slices.Contains(m.Flags, `\Flagged`) {
			labels = append(labels, "Starred")
			flags = append(flags, `\Flagged`)
		}
		if slices.Contains(m.Flags, `\Seen`) {
			labels = append(labels, "Opened")
			flags = append(flags, `\Seen`)
		} else {
			labels = append(labels, "Unread")
		}
		if m.Folder == "Drafts" {
			flags = append(flags, `\Draft`)
		}
		body := bytes.ReplaceAll(m.Body, []byte("\r\n"), []byte("\n"))
		body = append([]byte("X-GM-THRID: 1\nX-Gmail-Labels: "+strings.Join(labels, ",")+"\n"), body...)
		from := fmt.Sprintf("From %d@xxx %s", 1700000000000+i, m.Date.UTC().Format("Mon Jan 02 15:04:05 -0700 2006"))
		if err := mbox.Encode(&b, mbox.MboxRD, from, body, false); err != nil {
			t.Fatal(err)
		}
		for _, f := range folders {
			want = append(want, corpus.Message{Folder: f, Body: body, Flags: flags, Date: m.Date.Truncate(time.Second), MessageID: m.MessageID})
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return want
}

// mboxCrashLoop runs args and SIGKILLs it at kills random moments while
// it copies: each once the target (counted by stored) has grown by a random
// share of what is left, then lets a last run finish.
func mboxCrashLoop(t *testing.T, kills int, stored func() int, total int, args ...string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14))
	killed, last := 0, stored()
	for i := 0; i < kills*3 && killed < kills; i++ {
		kill, done := startKill(t, secretEnv, args...)
		step := (total - last) / (kills - killed + 1)
		want := last + 1 + rng.IntN(max(step, 1))
		deadline := time.Now().Add(2 * time.Minute)
		n := last
		for !done() && time.Now().Before(deadline) {
			if n = stored(); n >= want {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		finished := done()
		kill()
		if finished {
			break
		}
		n = stored()
		if n > last && n < total {
			killed++
		}
		t.Logf("SIGKILL %d with %d of %d messages in the target", i+1, n, total)
		last = max(last, n)
	}
	if killed < kills {
		t.Errorf("only %d kills landed while messages were being copied, want %d", killed, kills)
	}
	if r := mf(t, secretEnv, args...); r.code != 0 {
		t.Fatal(r)
	}
}

// TestMboxCrashResume (issue 14): a Thunderbird tree into Dovecot IMAP and
// into a Maildir, and a Takeout file into a Maildir, each SIGKILLed at 5 or
// more random moments and then finished: every message once, byte for
// byte, with its flags, its "From " date and its folder(s); expunged
// Thunderbird messages are not copied. A re-run copies nothing.
func TestMboxCrashResume(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{})
	msgs := fullCorpus(1200, 14)
	tree := filepath.Join(t.TempDir(), "Local Folders")
	want := thunderbirdTree(t, tree, msgs)

	t.Run("Thunderbird to IMAP", func(t *testing.T) {
		state := t.TempDir()
		args := []string{"migrate", "mbox:" + tree, "imap://dst@" + dv.IMAP, "--ca-file", dv.CAFile, "--state", state, "--no-progress"}
		mboxCrashLoop(t, 5, maildirCount(dv.Maildir("dst")), len(want), args...)
		checkReport(t, "mbox → IMAP after kill -9", corpus.Compare(want, dv.Dump(t, "dst"), compareAll))
		r, s := migrateReport(t, args[1:]...)
		if r.code != 0 || s.Copied != 0 {
			t.Errorf("re-run copied %d\n%s", s.Copied, r)
		}
	})
	t.Run("Thunderbird to Maildir", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "Maildir")
		args := []string{"migrate", "mbox:" + tree, "maildir:" + root, "--state", t.TempDir(), "--no-progress"}
		mboxCrashLoop(t, 5, maildirCount(root), len(want), args...)
		// Byte for byte: the Maildir holds the CRLF messages as they were.
		checkReport(t, "mbox → Maildir after kill -9", corpus.Compare(want, dovecottest.DumpMaildir(t, root), corpus.CompareOptions{Flags: true, Dates: true}))

		// Thunderbird compacts the Inbox (the expunged messages go, every
		// later offset moves) and new mail arrives: the next run reconciles
		// and copies only the new message.
		inbox := filepath.Join(tree, "Inbox")
		old, err := os.ReadFile(inbox)
		if err != nil {
			t.Fatal(err)
		}
		var compacted bytes.Buffer
		for _, part := range bytes.SplitAfter(old, []byte("\r\nFrom - ")) {
			if !bytes.Contains(part, []byte("X-Mozilla-Status: 0009")) {
				compacted.Write(part)
			} else if compacted.Len() > 0 {
				// keep the separator's start that ends the dropped part
				compacted.Write([]byte("\r\nFrom - "))
			}
		}
		fixed := bytes.ReplaceAll(compacted.Bytes(), []byte("\r\nFrom - \r\nFrom - "), []byte("\r\nFrom - "))
		if bytes.Count(fixed, []byte("\nFrom - ")) >= bytes.Count(old, []byte("\nFrom - ")) {
			t.Fatal("nothing compacted")
		}
		newMsg := []byte("X-Mozilla-Status: 0000\r\nMessage-ID: <new-after-compaction@x>\r\nSubject: new\r\n\r\nnew mail\r\n")
		var nb bytes.Buffer
		nb.Write(fixed)
		mbox.Encode(&nb, mbox.MboxRD, mbox.FromLine("-", 1790000000), newMsg, true)
		if err := os.WriteFile(inbox, nb.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		r, s := migrateReport(t, args[1:]...)
		if r.code != 0 || s.Copied != 1 {
			t.Fatalf("after compaction and new mail: copied %d, want 1\n%s", s.Copied, r)
		}
		want2 := append(slices.Clone(want), corpus.Message{Folder: "INBOX", Body: newMsg, Date: time.Unix(1790000000, 0), MessageID: "<new-after-compaction@x>"})
		checkReport(t, "mbox → Maildir after compaction", corpus.Compare(want2, dovecottest.DumpMaildir(t, root), corpus.CompareOptions{Flags: true, Dates: true}))
	})
	t.Run("Takeout to Maildir", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "All mail Including Spam and Trash.mbox")
		twant := takeoutFile(t, file, msgs)
		root := filepath.Join(t.TempDir(), "Maildir")
		state := t.TempDir()
		// plan lists the label folders and what a run would copy.
		if r := mf(t, secretEnv, "plan", "mbox:"+file, "maildir:"+root, "--state", state); r.code != 0 {
			t.Fatalf("plan:\n%s", r)
		} else {
			mustContain(t, r.stdout, "Extra/One", "Extra Two", "INBOX", "TOTAL", fmt.Sprint(len(twant)))
		}
		args := []string{"migrate", "mbox:" + file, "maildir:" + root, "--state", state, "--no-progress"}
		mboxCrashLoop(t, 5, maildirCount(root), len(twant), args...)
		checkReport(t, "Takeout → Maildir after kill -9", corpus.Compare(twant, dovecottest.DumpMaildir(t, root), corpus.CompareOptions{Flags: true, Dates: true}))
		// The journal lost: reconciled against the target, nothing copied.
		r, s := migrateReport(t, "mbox:"+file, "maildir:"+root, "--state", t.TempDir())
		if r.code != 0 || s.Copied != 0 {
			t.Errorf("run with a new journal copied %d\n%s", s.Copied, r)
		}
		// verify agrees.
		if r := mf(t, secretEnv, "verify", "mbox:"+file, "maildir:"+root); r.code != 0 {
			t.Errorf("verify:\n%s", r)
		}
	})
}

// maildirCount counts the messages of a Maildir++ tree.
func maildirCount(root string) func() int {
	return func() int {
		n := 0
		for _, pat := range []string{"cur/*", "new/*", ".*/cur/*", ".*/new/*"} {
			m, _ := filepath.Glob(filepath.Join(root, pat))
			n += len(m)
		}
		return n
	}
}
