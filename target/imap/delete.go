package imap

import (
	"context"
	"fmt"

	"github.com/emersion/go-imap/v2/imapclient"
)

// DeleteFolder deletes a folder (canonical name) and the messages in it.
// Only plan's store probe uses it (cmd/mailferry), on a scratch folder it
// created: the engine never deletes a folder.
func (t *Target) DeleteFolder(ctx context.Context, canonical string) error {
	if _, err := t.conn(ctx); err != nil {
		return err
	}
	server := t.names.ToServer(canonical)
	if t.selected == server {
		// Some servers refuse to delete the selected folder: a fresh
		// connection has none selected (UNSELECT is an extension).
		t.drop()
		if _, err := t.conn(ctx); err != nil {
			return err
		}
	}
	err := t.short(ctx, fmt.Sprintf("delete folder %q", server), func(c *imapclient.Client) error {
		return c.Delete(server).Wait()
	})
	if err != nil {
		return fmt.Errorf("delete folder %q: %w", canonical, err)
	}
	// Ensure subscribed it; a subscription outlives its folder on some
	// servers. Best effort: the folder is gone either way.
	t.short(ctx, fmt.Sprintf("unsubscribe folder %q", server), func(c *imapclient.Client) error {
		return c.Unsubscribe(server).Wait()
	})
	delete(t.existing, server) // a nil map: nothing to forget
	delete(t.marks, server)
	delete(t.perm, server)
	return nil
}
