package imap

import (
	"context"
	"fmt"
	"strconv"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/source"
)

// Identities gives the Identity of every message of f in UID order, from
// one FETCH of UID, RFC822.SIZE, INTERNALDATE and the Message-ID header
// field over the EXAMINEd folder, calling fn as each response arrives.
//
// It fetches by sequence set (1:*), not UID FETCH: beta.8 drops a UID
// FETCH response whose header literal comes before its UID (see the
// package doc), which would silently leave a message out. Fewer answers
// than EXAMINE counted messages is an error, for the same reason.
func (s *Source) Identities(ctx context.Context, f source.Folder, fn func(source.Identity) error) error {
	v, err := s.examine(ctx, f, true, true)
	if err != nil {
		return err
	}
	if f.Validity == 0 && v != 0 && s.unknown.has(f.Name) {
		return &ValidityChangedError{Folder: f.Name, Old: 0, New: v}
	}
	if s.exists == 0 {
		return nil // FETCH 1:* is an error on an empty folder
	}
	c := s.c
	stop := imapconn.CloseOnDone(ctx, c)
	defer stop()
	var all imap.SeqSet
	all.AddRange(1, 0)
	cmd := c.Fetch(all, imapconn.HeaderIDItems)
	n := uint32(0)
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		id, cut, err := identity(m, f.Name)
		if err != nil {
			abort(c, cmd, cut)
			s.drop()
			return imapconn.Wrap(ctx, err)
		}
		if id.ID == "" {
			continue
		}
		n++
		if err := fn(id); err != nil {
			// Dropping the connection skips the rest of the responses.
			abort(c, cmd, false)
			s.drop()
			return err
		}
	}
	if err := cmd.Close(); err != nil {
		s.drop()
		return imapconn.Wrap(ctx, fmt.Errorf("read the Message-IDs of %q: %w", f.Name, err))
	}
	if n < s.exists {
		// A message left out would be taken for one the target lacks; an
		// error makes the caller match without identities instead.
		return fmt.Errorf("read the Message-IDs of %q: the server answered for %d of its %d messages", f.Name, n, s.exists)
	}
	return nil
}

// identity reads one FETCH response of Identities; ID "" when it carries
// no UID. cut: a header literal ended with an error.
func identity(m *imapclient.FetchMessageData, folder string) (source.Identity, bool, error) {
	h, cut, err := imapconn.ReadHeaderID(m, folder)
	if err != nil || h.UID == 0 {
		return source.Identity{}, cut, err
	}
	return source.Identity{ID: strconv.FormatUint(uint64(h.UID), 10), MessageID: h.MessageID, Date: h.Date, Size: h.Size}, false, nil
}
