package e2e

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/cyrustest"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
)

// TestCyrusFolders is issue 11 items 2, 3 and 6 on Cyrus → Cyrus, in both
// of Cyrus' namespace setups: folders created for Sent, Drafts, Trash and
// Junk carry their special use on the target; the children of Archive,
// which goes to the target's \Archive folder "Archives", land under
// "Archives"; the other user's and the shared folder the source account
// can read are left out and listed as skipped by plan. plan into a target
// without CREATE-SPECIAL-USE says which folders will lack their use.
func TestCyrusFolders(t *testing.T) {
	for _, opt := range []cyrustest.Options{
		{Users: []string{"src", "dst", "other"}},
		{Users: []string{"src", "dst", "other"}, AltNamespace: true, UnixHierarchySep: true},
	} {
		t.Run(fmt.Sprintf("altnamespace=%v", opt.AltNamespace), func(t *testing.T) {
			cy := cyrustest.Start(t, opt)
			sep := cy.Sep()
			admin, err := cy.Login(cyrustest.Admin)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []string{"user" + sep + "other" + sep + "proj", "shared" + sep + "team"} {
				if err := admin.Create(m, nil).Wait(); err != nil {
					t.Fatalf("create %s: %v", m, err)
				}
				if err := admin.SetACL(m, "src", imap.RightModificationReplace, imap.RightSet("lrs")).Wait(); err != nil {
					t.Fatalf("setacl %s: %v", m, err)
				}
			}
			admin.Close()

			// Source: Sent, Deleted Stuff and Junk announce their use;
			// Drafts and Archive are known by name only.
			base := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
			var msgs []corpus.Message
			add := func(folder string) corpus.Message {
				i := len(msgs)
				id := fmt.Sprintf("<folders-%d@mailferry.test>", i)
				body := fmt.Sprintf("From: a@example.org\r\nTo: b@example.org\r\nSubject: in %s\r\nDate: %s\r\nMessage-ID: %s\r\n\r\nMessage %d in %s.\r\n",
					folder, base.Add(time.Duration(i)*time.Hour).Format(time.RFC1123Z), id, i, folder)
				m := corpus.Message{Folder: folder, Body: []byte(body), Date: base.Add(time.Duration(i) * time.Hour), MessageID: id}
				msgs = append(msgs, m)
				return m
			}
			c, err := cy.Login("src")
			if err != nil {
				t.Fatal(err)
			}
			for folder, use := range map[string]imap.MailboxAttr{"Sent": imap.MailboxAttrSent, "Deleted Stuff": imap.MailboxAttrTrash, "Junk": imap.MailboxAttrJunk} {
				name := cy.IMAPName(folder)
				if err := c.Create(name, &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{use}}).Wait(); err != nil {
					t.Fatalf("create %s: %v", name, err)
				}
				m := add(folder)
				cmd := c.Append(name, int64(len(m.Body)), &imap.AppendOptions{Time: m.Date})
				cmd.Write(m.Body)
				cmd.Close()
				if _, err := cmd.Wait(); err != nil {
					t.Fatalf("append to %s: %v", name, err)
				}
			}
			c.Close()
			var loaded []corpus.Message
			for _, f := range []string{"INBOX", "Drafts", "Archive", "Archive/2024", "Archive/2024", "Archive/2023/Q4 Reports"} {
				loaded = append(loaded, add(f))
			}
			cy.Load(t, "src", loaded)

			d, err := cy.Login("dst")
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Create(cy.IMAPName("Archives"), &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrArchive}}).Wait(); err != nil {
				t.Fatal(err)
			}
			d.Close()

			src, dst := "imap://src@"+cy.IMAP+"?tls=none", "imap://dst@"+cy.IMAP+"?tls=none"
			other, shared := "user/other/proj", "shared/team"
			if opt.AltNamespace {
				other, shared = "Other Users/other/proj", "Shared Folders/shared/team"
			}
			r := mf(t, secretEnv, "plan", src, dst, "--state", t.TempDir())
			if r.code != 0 {
				t.Fatal(r)
			}
			mustContain(t, r.stdout, other, "(skipped: another user's folder", shared, "(skipped: shared folder")
			for _, child := range []string{"Archive/2024", "Archive/2023/Q4 Reports"} {
				if !regexp.MustCompile(`(?m)^\s*` + child + `\s+Archives/` + child[len("Archive/"):] + `\s`).MatchString(r.stdout) {
					t.Errorf("plan does not send %q to the target's Archives:\n%s", child, r.stdout)
				}
			}
			if strings.Contains(r.stdout, "has no CREATE-SPECIAL-USE") {
				t.Errorf("plan says Cyrus cannot create special-use folders:\n%s", r.stdout)
			}

			r = mf(t, secretEnv, "migrate", src, dst, "--state", t.TempDir(), "--no-progress")
			if r.code != 0 {
				t.Fatal(r)
			}
			mustContain(t, r.stdout+r.stderr, other, "(skipped: another user's folder", shared, "(skipped: shared folder")

			// Where each source folder must land.
			want := map[string]string{"INBOX": "INBOX", "Sent": "Sent", "Deleted Stuff": "Deleted Stuff", "Junk": "Junk", "Drafts": "Drafts",
				"Archive": "Archives", "Archive/2024": "Archives/2024", "Archive/2023/Q4 Reports": "Archives/2023/Q4 Reports"}
			var expect []corpus.Message
			for _, m := range msgs {
				m.Folder = want[m.Folder]
				expect = append(expect, m)
			}
			got := cy.Dump(t, "dst")
			checkReport(t, "Cyrus → Cyrus folders", corpus.Compare(expect, got, corpus.CompareOptions{Dates: true}))

			d, err = cy.Login("dst")
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			list, err := d.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
			if err != nil {
				t.Fatal(err)
			}
			uses := map[string]string{}
			var names []string
			for _, l := range list {
				if !strings.HasPrefix(l.Mailbox, cy.Prefix()) || strings.HasPrefix(l.Mailbox, "Shared Folders/") || strings.HasPrefix(l.Mailbox, "Other Users/") {
					if l.Mailbox != "INBOX" {
						continue // not the user's own
					}
				}
				name := strings.TrimPrefix(l.Mailbox, cy.Prefix())
				name = strings.ReplaceAll(name, sep, "/")
				names = append(names, name)
				for _, a := range l.Attrs {
					switch a {
					case imap.MailboxAttrSent, imap.MailboxAttrDrafts, imap.MailboxAttrTrash, imap.MailboxAttrJunk, imap.MailboxAttrArchive:
						uses[name] = string(a)
					}
				}
			}
			t.Logf("target folders %q, special uses %v", names, uses)
			wantUses := map[string]string{"Sent": `\Sent`, "Drafts": `\Drafts`, "Deleted Stuff": `\Trash`, "Junk": `\Junk`, "Archives": `\Archive`}
			for f, u := range wantUses {
				if uses[f] != u {
					t.Errorf("target folder %q has special use %q, want %q", f, uses[f], u)
				}
			}
			if len(uses) != len(wantUses) {
				t.Errorf("target special uses %v, want %v", uses, wantUses)
			}
			for _, n := range names {
				if n == "Archive" || strings.HasPrefix(n, "Archive/") || strings.Contains(n, "proj") || strings.Contains(n, "team") {
					t.Errorf("target has folder %q", n)
				}
			}

			// A target without CREATE-SPECIAL-USE: plan says which folders
			// will be created without their use.
			mem := imaptest.Start(t, imaptest.Options{})
			r = mf(t, []string{"MAILFERRY_SOURCE_PASSWORD=secret", "MAILFERRY_TARGET_PASSWORD=" + imaptest.Password},
				"plan", src, "imap://"+imaptest.User+"@"+mem.Addr+"?tls=none", "--state", t.TempDir())
			if r.code != 0 {
				t.Fatal(r)
			}
			mustContain(t, r.stdout, "the target has no CREATE-SPECIAL-USE: 5 folder(s) will be created without their special use:",
				`Sent (\Sent)`, `Deleted Stuff (\Trash)`, `Junk (\Junk)`, `Drafts (\Drafts)`, `Archive (\Archive)`)
			if bytes.Count([]byte(r.stdout), []byte("CREATE-SPECIAL-USE")) != 1 {
				t.Errorf("want one line about CREATE-SPECIAL-USE:\n%s", r.stdout)
			}
		})
	}
}
