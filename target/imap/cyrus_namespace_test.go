package imap

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/testkit/cyrustest"
)

// TestCyrusFoldersAreTheUsersOwn: other users' and shared folders the
// target account can see (Cyrus lists them beside its own, under an empty
// personal prefix with altnamespace) are not the target's folders: the
// engine must never map a source folder onto one of them.
func TestCyrusFoldersAreTheUsersOwn(t *testing.T) {
	for _, opt := range []cyrustest.Options{
		{Users: []string{"dst", "other"}},
		{Users: []string{"dst", "other"}, AltNamespace: true, UnixHierarchySep: true},
	} {
		t.Run(map[bool]string{false: "INBOX-prefix", true: "altnamespace"}[opt.AltNamespace], func(t *testing.T) {
			cy := cyrustest.Start(t, opt)
			admin, err := cy.Login(cyrustest.Admin)
			if err != nil {
				t.Fatal(err)
			}
			sep := cy.Sep()
			for _, m := range []string{"user" + sep + "other" + sep + "Sent", "shared" + sep + "team"} {
				if err := admin.Create(m, &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrSent}}).Wait(); err != nil {
					if err := admin.Create(m, nil).Wait(); err != nil {
						t.Fatalf("create %s: %v", m, err)
					}
				}
				if err := admin.SetACL(m, "dst", imap.RightModificationReplace, imap.RightSet("lrs")).Wait(); err != nil {
					t.Fatalf("setacl %s: %v", m, err)
				}
			}
			admin.Logout().Wait()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			tg, err := Open(ctx, imapconn.Config{Addr: cy.IMAP, Security: imapconn.None, User: "dst", Password: cyrustest.Password, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			folders, err := tg.Folders(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range folders {
				names = append(names, f.Name+" "+f.SpecialUse)
				if strings.Contains(f.Name, "other") || strings.Contains(f.Name, "team") || f.SpecialUse != "" {
					t.Errorf("the target offers %q (%s) as its own", f.Name, f.SpecialUse)
				}
			}
			if len(folders) == 0 {
				t.Fatalf("no folders at all")
			}
			t.Logf("folders: %v", names)
		})
	}
}
