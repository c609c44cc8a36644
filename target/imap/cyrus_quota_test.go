package imap

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/internal/testkit/cyrustest"
	"github.com/mailferry/mailferry/target"
)

// TestCyrusQuotaRoots: Cyrus refuses with "NO Over quota" and no code. A
// quota on the user's root is the account's (ErrAccountFull); a quota on a
// folder of its own stops only that folder (ErrFolderFull), in both of
// Cyrus' namespace setups, over the store session and the main one.
func TestCyrusQuotaRoots(t *testing.T) {
	for _, opt := range []cyrustest.Options{
		{Users: []string{"u"}},
		{Users: []string{"u"}, AltNamespace: true, UnixHierarchySep: true},
	} {
		t.Run(map[bool]string{false: "INBOX-prefix", true: "altnamespace"}[opt.AltNamespace], func(t *testing.T) {
			cy := cyrustest.Start(t, opt)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			tg, err := Open(ctx, imapconn.Config{Addr: cy.IMAP, Security: imapconn.None, User: "u", Password: cyrustest.Password, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			if _, err := tg.Ensure(ctx, mailbox.Folder{Name: "Small"}); err != nil {
				t.Fatal(err)
			}
			admin, err := cy.Login(cyrustest.Admin)
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			setQuota := func(mbox string, kb int64) {
				t.Helper()
				if err := admin.SetQuota(mbox, map[imap.QuotaResourceType]int64{imap.QuotaResourceStorage: kb}).Wait(); err != nil {
					t.Fatalf("SETQUOTA %s: %v", mbox, err)
				}
			}
			root := "user" + cy.Sep() + "u"
			setQuota(root+cy.Sep()+"Small", 20)
			setQuota(root, 200)
			body := append(bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), 600), "\r\n"...)
			body = append([]byte("Subject: q\r\nMessage-ID: <q@x>\r\n\r\n"), body...)
			d := func(folder string) target.Delivery {
				return target.Delivery{Folder: folder, Size: int64(len(body)), Date: time.Now()}
			}
			stores := map[string]func(target.Delivery) error{
				"Send": func(d target.Delivery) error { _, err := store(ctx, tg, d, body); return err },
				"Put":  func(d target.Delivery) error { _, err := tg.Put(ctx, d, bytes.NewReader(body)); return err },
			}
			for _, how := range []string{"Send", "Put"} {
				// 39 KB each: the folder's 20 KB never holds one.
				err := stores[how](d("Small"))
				if failure.KindOf(err) != failure.Quota || !errors.Is(err, target.ErrFolderFull) || errors.Is(err, target.ErrAccountFull) {
					t.Errorf("%s into the full folder: %v (kind %v)", how, err, failure.KindOf(err))
				}
			}
			var last error
			for range 8 {
				if last = stores["Send"](d("INBOX")); last != nil {
					break
				}
			}
			if failure.KindOf(last) != failure.Quota || !errors.Is(last, target.ErrAccountFull) {
				t.Errorf("Send into the full account: %v (kind %v)", last, failure.KindOf(last))
			}
			if err := stores["Put"](d("INBOX")); failure.KindOf(err) != failure.Quota || !errors.Is(err, target.ErrAccountFull) {
				t.Errorf("Put into the full account: %v (kind %v)", err, failure.KindOf(err))
			}
			t.Logf("account full: %v", last)
		})
	}
}
