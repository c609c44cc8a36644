package imap

import (
	"context"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/mailbox"
)

// creatable are the special uses a created folder may be given: the ones
// that name a real folder. \All, \Flagged and \Important are views over
// other folders; a copy of one is not that view.
var creatable = map[string]bool{
	string(imap.MailboxAttrSent): true, string(imap.MailboxAttrDrafts): true, string(imap.MailboxAttrTrash): true,
	string(imap.MailboxAttrJunk): true, string(imap.MailboxAttrArchive): true,
}

// noteUse remembers the special use f asks for, so that a re-creation after
// TRYCREATE gives it too.
func (t *Target) noteUse(f mailbox.Folder) {
	if !creatable[f.SpecialUse] {
		return
	}
	if t.wantUse == nil {
		t.wantUse = map[string]string{}
	}
	t.wantUse[strings.Trim(f.Name, "/")] = f.SpecialUse
}

// createLeaf CREATEs the folder canonical (server name), with USE (the
// special use Ensure was asked for) when the server has CREATE-SPECIAL-USE
// and no folder of that use yet. A server that refuses the use (Cyrus: NO
// [USEATTR] when another folder has it) gets a plain CREATE: the folder
// matters more than its attribute.
func (t *Target) createLeaf(ctx context.Context, canonical, name string) error {
	c, err := t.conn(ctx)
	if err != nil {
		return err
	}
	use := t.wantUse[strings.Trim(canonical, "/")]
	if use != "" && t.uses[use] == "" && c.Caps().Has(imap.CapCreateSpecialUse) {
		opts := &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttr(use)}}
		err := t.short(ctx, fmt.Sprintf("create folder %q with special use %s", name, use), func(c *imapclient.Client) error {
			return c.Create(name, opts).Wait()
		})
		if err == nil {
			t.uses[use] = name
			return nil
		}
		if !imapconn.IsNo(err) || imapconn.Code(err) == imap.ResponseCodeAlreadyExists {
			return err
		}
		t.log().Warn("imap target: the server refused the special use; creating the folder without it", "folder", name, "use", use, "err", err)
	}
	return t.short(ctx, fmt.Sprintf("create folder %q", name), func(c *imapclient.Client) error {
		return c.Create(name, nil).Wait()
	})
}

// CreatesSpecialUse reports whether folders created for a special use get
// it (the server offers CREATE-SPECIAL-USE, RFC 6154).
func (t *Target) CreatesSpecialUse(ctx context.Context) (bool, error) {
	c, err := t.conn(ctx)
	if err != nil {
		return false, err
	}
	return c.Caps().Has(imap.CapCreateSpecialUse), nil
}

// CreatableUse reports whether Ensure gives a created folder this special
// use (given CREATE-SPECIAL-USE).
func CreatableUse(use string) bool { return creatable[use] }
