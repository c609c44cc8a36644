package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

// imapLogin opens a plain IMAP session to a test Dovecot (loopback).
func imapLogin(t *testing.T, addr, user string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(user, "secret").Wait(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func appendMsg(t *testing.T, c *imapclient.Client, m corpus.Message) {
	t.Helper()
	var flags []imap.Flag
	for _, f := range m.Flags {
		flags = append(flags, imap.Flag(f))
	}
	cmd := c.Append(m.Folder, int64(len(m.Body)), &imap.AppendOptions{Flags: flags, Time: m.Date})
	if _, err := cmd.Write(m.Body); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("append to %q: %v", m.Folder, err)
	}
}

func fullCorpus(n int, seed int64) []corpus.Message {
	return corpus.Generate(corpus.Options{Messages: n, Seed: seed})
}

var compareAll = corpus.CompareOptions{NormalizeCRLF: true, Flags: true, Dates: true}

func TestIMAPRoundTrip(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{})
	msgs := fullCorpus(700, 5)
	dv.Load(t, "src", msgs)
	state := t.TempDir()
	src := "imap://src@" + dv.IMAP
	backup := filepath.Join(t.TempDir(), "Backup")

	r := mf(t, secretEnv, "migrate", src, "imap://dst@"+dv.IMAP, "--ca-file", dv.CAFile, "--state", state)
	if r.code != 0 {
		t.Fatal(r)
	}
	checkReport(t, "IMAP → IMAP", corpus.Compare(msgs, dv.Dump(t, "dst"), compareAll))

	r = mf(t, secretEnv, "migrate", src, "maildir:"+backup, "--ca-file", dv.CAFile, "--state", state)
	if r.code != 0 {
		t.Fatal(r)
	}
	checkReport(t, "IMAP → Maildir", corpus.Compare(msgs, dovecottest.DumpMaildir(t, backup), compareAll))

	r = mf(t, secretEnv, "migrate", "maildir:"+backup, "imap://u1@"+dv.IMAP, "--ca-file", dv.CAFile, "--state", state)
	if r.code != 0 {
		t.Fatal(r)
	}
	checkReport(t, "IMAP → Maildir → IMAP", corpus.Compare(msgs, dv.Dump(t, "u1"), compareAll))

	for _, tgt := range []string{"imap://dst@" + dv.IMAP, "maildir:" + backup} {
		r = mf(t, secretEnv, "verify", "--deep", src, tgt, "--ca-file", dv.CAFile)
		if r.code != 0 {
			t.Fatal(r)
		}
	}
}

func TestIMAPCrashResume(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{})
	msgs := fullCorpus(1500, 6)
	dv.Load(t, "src", msgs)
	src := "imap://src@" + dv.IMAP
	t.Run("to IMAP", func(t *testing.T) {
		crashLoop(t, 6, 800*time.Millisecond, "migrate", src, "imap://dst@"+dv.IMAP, "--ca-file", dv.CAFile, "--state", t.TempDir(), "--no-progress")
		checkReport(t, "IMAP → IMAP after kill -9", corpus.Compare(msgs, dv.Dump(t, "dst"), compareAll))
	})
	t.Run("to Maildir", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "Maildir")
		crashLoop(t, 6, 600*time.Millisecond, "migrate", src, "maildir:"+root, "--ca-file", dv.CAFile, "--state", t.TempDir(), "--no-progress")
		checkReport(t, "IMAP → Maildir after kill -9", corpus.Compare(msgs, dovecottest.DumpMaildir(t, root), compareAll))
		// The run that finished removed what the killed ones left in tmp/.
		left, _ := filepath.Glob(filepath.Join(root, "tmp", "*"))
		sub, _ := filepath.Glob(filepath.Join(root, ".*", "tmp", "*"))
		if left = append(left, sub...); len(left) > 0 {
			t.Errorf("tmp/ files left after the last run: %v", left)
		}
	})
}

func TestIMAPIncrementalAndUIDValidity(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{})
	msgs := fullCorpus(300, 7)
	dv.Load(t, "src", msgs)
	state := t.TempDir()
	args := []string{"migrate", "imap://src@" + dv.IMAP, "imap://dst@" + dv.IMAP, "--ca-file", dv.CAFile, "--state", state, "--sync-flags"}
	if r := mf(t, secretEnv, args...); r.code != 0 {
		t.Fatal(r)
	}

	// 10 new messages, and flag changes on 10 others.
	c := imapLogin(t, dv.IMAP, "src")
	extra := corpus.Generate(corpus.Options{Messages: 10, Seed: 99, OnlyInbox: true})
	for i := range extra {
		extra[i].Body = append([]byte(fmt.Sprintf("X-Extra: %d\r\n", i)), extra[i].Body...)
		appendMsg(t, c, extra[i])
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var seqs imap.SeqSet
	seqs.AddRange(1, 10)
	if err := c.Store(seqs, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged, "$Label1"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	before := dv.Dump(t, "src")

	r := mf(t, secretEnv, args...)
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, r.stdout, "copied         10 messages", "flags updated  10")
	checkReport(t, "incremental", corpus.Compare(before, dv.Dump(t, "dst"), compareAll))

	// The source folder is recreated (new UIDVALIDITY, same messages):
	// nothing is copied again.
	var work []corpus.Message
	for _, m := range before {
		if m.Folder == "INBOX" {
			work = append(work, m)
		}
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	folder := ""
	for _, m := range before {
		if m.Folder != "INBOX" && !strings.Contains(m.Folder, "/") {
			folder = m.Folder
			break
		}
	}
	var moved []corpus.Message
	for _, m := range before {
		if m.Folder == folder {
			moved = append(moved, m)
		}
	}
	if err := c.Delete(folder).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, m := range moved {
		appendMsg(t, c, m)
	}
	r = mf(t, secretEnv, args...)
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, r.stdout, "copied         0 messages")
	checkReport(t, "after UIDVALIDITY change", corpus.Compare(before, dv.Dump(t, "dst"), compareAll))
	_ = work
}

func TestDotSeparatorNamespace(t *testing.T) {
	std := dovecottest.Start(t, dovecottest.Options{})
	dotted := dovecottest.Start(t, dovecottest.Options{Separator: ".", Prefix: "INBOX."})
	msgs := fullCorpus(250, 8)
	std.Load(t, "src", msgs)
	state := t.TempDir()
	// Each instance has its own self-signed CA: trust both.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	a, _ := os.ReadFile(std.CAFile)
	b, _ := os.ReadFile(dotted.CAFile)
	if err := os.WriteFile(ca, append(a, b...), 0o600); err != nil {
		t.Fatal(err)
	}
	// "/" without prefix → "." with INBOX. prefix
	r := mf(t, secretEnv, "migrate", "imap://src@"+std.IMAP, "imap://dst@"+dotted.IMAP, "--ca-file", ca, "--state", state)
	if r.code != 0 {
		t.Fatal(r)
	}
	got := dotted.Dump(t, "dst")
	checkReport(t, "to a '.'-separated INBOX. server", corpus.Compare(msgs, got, compareAll))
	// and back: "." with prefix → "/" without
	r = mf(t, secretEnv, "migrate", "imap://dst@"+dotted.IMAP, "imap://u2@"+std.IMAP, "--ca-file", ca, "--state", state)
	if r.code != 0 {
		t.Fatal(r)
	}
	checkReport(t, "back to a '/'-separated server", corpus.Compare(msgs, std.Dump(t, "u2"), compareAll))
}

func TestSpecialUseSentItemsToSent(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{})
	msgs := []corpus.Message{}
	for i, m := range corpus.Generate(corpus.Options{Messages: 6, Seed: 3, OnlyInbox: true}) {
		if i%2 == 0 {
			m.Folder = "Sent Items"
		}
		msgs = append(msgs, m)
	}
	dv.Load(t, "src", msgs)
	// The target has its \Sent folder, named "Sent".
	c := imapLogin(t, dv.IMAP, "dst")
	if err := c.Create("Sent", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrSent}}).Wait(); err != nil {
		// Dovecot without special-use on CREATE: the harness config
		// declares Sent as \Sent.
		t.Logf("create Sent: %v", err)
	}
	r := mf(t, secretEnv, "migrate", "imap://src@"+dv.IMAP, "imap://dst@"+dv.IMAP, "--ca-file", dv.CAFile, "--state", t.TempDir())
	if r.code != 0 {
		t.Fatal(r)
	}
	got := dv.Dump(t, "dst")
	want := slices.Clone(msgs)
	for i := range want {
		if want[i].Folder == "Sent Items" {
			want[i].Folder = "Sent"
		}
	}
	checkReport(t, "Sent Items → Sent", corpus.Compare(want, got, compareAll))
	for _, m := range got {
		if m.Folder == "Sent Items" {
			t.Fatal("a \"Sent Items\" folder was created on the target")
		}
	}
	_ = bytes.Equal
}
