package imap

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/target"
)

// A stored copy is recognised by what the server says about it, not only
// by its bytes: servers rewrite messages on APPEND (Cyrus turns 8-bit
// header bytes into "X", others add headers). Mark gives a watermark
// before a store; Find then looks only at the messages at or above it and
// takes, among those no other source message stands for, the one with the
// same bytes, else one with the same Message-ID, the same internal date
// and about the same size.

var (
	_ target.Marker      = (*Target)(nil)
	_ target.Inventorier = (*Target)(nil)
)

// rewriteSlack bounds how much larger than what was sent a copy the server
// rewrote may be. A server's own header lines (Received, Return-Path, X-…:
// a few hundred octets each) and 8-bit header text re-encoded as RFC 2047
// encoded-words (a third more, on a header section rarely beyond a few KiB)
// fit in 4 KiB; the 1/64 covers line ends normalised to CRLF through a big
// body (the engine sends CRLF, so only stray CRs are left for that). A
// smaller copy is never taken: the servers seen replace bytes or add
// them.
func rewriteSlack(size int64) int64 { return 4096 + size/64 }

// folderMark is a folder's UIDVALIDITY and a UID that every message stored
// into it from now on will reach.
type folderMark struct {
	validity uint32
	next     imap.UID
}

func (m folderMark) String() string { return fmt.Sprintf("%d:%d", m.validity, m.next) }

// noteMark records where a folder stands. What the server says (SELECT,
// STATUS) replaces what was known: it is current, and lower than before
// only when the folder was re-created under the same UIDVALIDITY (a
// server at fault, but then only the new value is a bound). A stored UID
// plus one only raises the mark.
func (t *Target) noteMark(server string, validity uint32, next imap.UID) {
	t.setMark(server, validity, next, true)
}

func (t *Target) setMark(server string, validity uint32, next imap.UID, fresh bool) {
	if validity == 0 || next == 0 {
		return
	}
	if m, ok := t.marks[server]; ok && !fresh && m.validity == validity && m.next >= next {
		return
	}
	if t.marks == nil {
		t.marks = map[string]folderMark{}
	}
	t.marks[server] = folderMark{validity, next}
}

func (t *Target) noteReceipt(server, receipt string) {
	if v, uid, ok := parseReceipt(receipt); ok && uid < math.MaxUint32 {
		t.setMark(server, v, uid+1, false)
	}
}

// Mark returns "uidvalidity:uidnext" for folder: every message stored from
// now on gets a UID at least that high. A lower bound is all Find needs
// (an old one only makes it look at more messages), so Mark costs nothing
// while the store session has the folder selected: the UIDNEXT of its
// SELECT, advanced by every receipt since. Otherwise the store session
// SELECTs the folder (a Send into it would do so next anyway), or, without
// one, the main session asks STATUS. A folder that does not exist has no
// mark ("").
func (t *Target) Mark(ctx context.Context, folder string) (string, error) {
	if !t.haveNames {
		if _, err := t.conn(ctx); err != nil {
			return "", err
		}
	}
	server := t.names.ToServer(folder)
	m, cached := t.marks[server]
	if p := t.pipe; p != nil && p.broken() == nil && t.existing[server] {
		if cached && p.selected == server {
			return m.String(), nil
		}
		stop := p.s.CloseOnDone(ctx)
		err := p.selectFolder(ctx, server, folder)
		stop()
		if ctx.Err() != nil {
			return "", imapconn.Wrap(ctx, err)
		}
		if m, ok := t.marks[server]; err == nil && ok {
			return m.String(), nil
		}
		// Refused or broken: the main session answers.
	}
	if cached {
		return m.String(), nil
	}
	ok, err := t.folderExists(ctx, server)
	if err != nil || !ok {
		return "", err
	}
	sd, err := t.status(ctx, server, folder, &imap.StatusOptions{UIDValidity: true, UIDNext: true})
	if err != nil {
		return "", err
	}
	t.noteMark(server, sd.UIDValidity, sd.UIDNext)
	if m, ok := t.marks[server]; ok {
		return m.String(), nil
	}
	return "", nil
}

// folderExists consults the folder list, listing again when the folder is
// not known (another session may have created it).
func (t *Target) folderExists(ctx context.Context, server string) (bool, error) {
	if t.existing != nil && t.existing[server] {
		return true, nil
	}
	if _, err := t.loadFolders(ctx); err != nil {
		return false, err
	}
	return t.existing[server], nil
}

func (t *Target) status(ctx context.Context, server, folder string, opts *imap.StatusOptions) (*imap.StatusData, error) {
	var sd *imap.StatusData
	err := t.short(ctx, fmt.Sprintf("status of %q", folder), func(c *imapclient.Client) error {
		var err error
		sd, err = c.Status(server, opts).Wait()
		return err
	})
	return sd, err
}

// selectForLookup selects folder (afresh: another session may have stored
// into it) for Find, FindAll and Inventory, and notes its mark. A nil
// SelectData without error: the folder does not exist or holds nothing,
// so there is nothing to look at.
func (t *Target) selectForLookup(ctx context.Context, folder string) (*imap.SelectData, error) {
	if _, err := t.conn(ctx); err != nil {
		return nil, err
	}
	server := t.names.ToServer(folder)
	if ok, err := t.folderExists(ctx, server); err != nil || !ok {
		return nil, err
	}
	sd, err := t.selectFolder(ctx, server, true)
	if err != nil {
		return nil, err
	}
	t.noteMark(server, sd.UIDValidity, sd.UIDNext)
	if sd.NumMessages == 0 {
		return nil, nil
	}
	return sd, nil
}

// stored is one message as Find and Inventory fetch it.
type stored = imapconn.HeaderID

// Find looks in d.Folder for the copy an interrupted store may have left.
// The candidates are the messages at or above d.Mark (the whole folder
// without a mark, or when the folder's UIDVALIDITY changed since), with
// d's Message-ID (without one: d's date, give or take a day, and about its
// size); those that already stand for another source message (d.Taken) do
// not count. A candidate with d's exact bytes wins; else one the server
// may have rewritten: same Message-ID, same internal date to the second,
// and a size from d's to rewriteSlack more. Without a mark that second
// rule needs a Message-ID: date and size alone, over a whole folder, say
// too little.
func (t *Target) Find(ctx context.Context, d target.Delivery) (string, bool, error) {
	sd, err := t.selectForLookup(ctx, d.Folder)
	if err != nil || sd == nil {
		return "", false, err
	}
	receipt := func(u imap.UID) string { return fmt.Sprintf("%d:%d", sd.UIDValidity, u) }
	var from imap.UID
	if v, n, ok := parseReceipt(d.Mark); ok && v == sd.UIDValidity {
		from = n
	}
	size := d.Fingerprint.Size
	if size == 0 {
		size = d.Size
	}
	cands, err := t.candidates(ctx, d, from, size, receipt)
	if err != nil || len(cands) == 0 {
		return "", false, err
	}
	if s, ok, err := t.exactCopy(ctx, d, size, cands); err != nil {
		return "", false, err
	} else if ok {
		return receipt(s.UID), true, nil
	}
	// A copy the server rewrote. Among twins (same Message-ID, date and
	// size) any one not taken will do: they are interchangeable.
	if d.Date.IsZero() || size == 0 || (from == 0 && d.Fingerprint.MessageID == "") {
		return "", false, nil
	}
	for _, s := range cands {
		if s.MessageID == d.Fingerprint.MessageID && s.Date.Unix() == d.Date.Unix() && s.Size >= size && s.Size <= size+rewriteSlack(size) {
			return receipt(s.UID), true, nil
		}
	}
	return "", false, nil
}

// candidates searches the selected folder for the messages at or above
// from that may be d's copy (by Message-ID; without one by date and size)
// and are not taken.
func (t *Target) candidates(ctx context.Context, d target.Delivery, from imap.UID, size int64, receipt func(imap.UID) string) ([]stored, error) {
	crit := &imap.SearchCriteria{}
	if from > 0 {
		var above imap.UIDSet
		above.AddRange(from, 0)
		crit.UID = []imap.UIDSet{above}
	}
	if d.Fingerprint.MessageID != "" {
		crit.Header = []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: d.Fingerprint.MessageID}}
	} else {
		if size > 0 {
			crit.Larger, crit.Smaller = size-1, size+rewriteSlack(size)+1
		}
		if !d.Date.IsZero() {
			crit.Since, crit.Before = d.Date.AddDate(0, 0, -1), d.Date.AddDate(0, 0, 2)
		}
	}
	// SEARCH and FETCH by sequence number: no EXPUNGE may come between
	// them (RFC 3501 §7.4.1), and see imapconn.HeaderIDItems.
	var seqs []uint32
	err := t.short(ctx, fmt.Sprintf("search folder %q", d.Folder), func(c *imapclient.Client) error {
		sr, err := c.Search(crit, nil).Wait()
		if err != nil {
			return err
		}
		seqs = sr.AllSeqNums()
		return nil
	})
	if err != nil || len(seqs) == 0 {
		return nil, err
	}
	var set imap.SeqSet
	for _, s := range seqs {
		set.AddNum(s)
	}
	var cands []stored
	err = t.short(ctx, fmt.Sprintf("fetch candidates in %q", d.Folder), func(c *imapclient.Client) error {
		cmd := c.Fetch(set, imapconn.HeaderIDItems)
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			s, _, err := imapconn.ReadHeaderID(m, d.Folder)
			if err != nil {
				cmd.Close()
				return err
			}
			// "from:*" also matches the last message when it is below
			// from; copies that stand for another source message do
			// not count.
			if s.UID == 0 || s.UID < from || (d.Taken != nil && d.Taken(receipt(s.UID))) {
				continue
			}
			cands = append(cands, s)
		}
		return cmd.Close()
	})
	return cands, err
}

// exactCopy returns the candidate of d's size holding d's exact bytes (by
// SHA-256); without a hash to compare, the one candidate of that size with
// d's Message-ID.
func (t *Target) exactCopy(ctx context.Context, d target.Delivery, size int64, cands []stored) (stored, bool, error) {
	var exact []stored
	for _, s := range cands {
		if size == 0 || s.Size == size {
			exact = append(exact, s)
		}
	}
	fp := d.Fingerprint
	if fp.SHA256 == ([32]byte{}) {
		ok := fp.MessageID != "" && len(exact) == 1 && exact[0].MessageID == fp.MessageID
		if ok {
			return exact[0], true, nil
		}
		return stored{}, false, nil
	}
	for _, s := range exact {
		sum, err := t.hash(ctx, s.Seq, s.UID, d.Binary)
		if err != nil {
			return stored{}, false, fmt.Errorf("find in %q: %w", d.Folder, err)
		}
		if sum == fp.SHA256 {
			return s, true, nil
		}
	}
	return stored{}, false, nil
}

// hash returns the SHA-256 of message seq's bytes, streamed; it checks that
// seq is still uid. With binary (d holds NUL) it reads BINARY.PEEK[]:
// Dovecot serves NUL as 0x80 under BODY[], Cyrus as a literal8 that go-imap
// cannot parse there. BINARY[] decodes encoded parts, so such a copy only
// misses the byte match (and is left to the rewritten-copy rule), as when
// the server cannot decode (NO): the zero sum.
func (t *Target) hash(ctx context.Context, seq uint32, uid imap.UID, binary bool) ([32]byte, error) {
	var sum [32]byte
	c, err := t.conn(ctx)
	if err != nil {
		return sum, err
	}
	stop := imapconn.CloseOnDone(ctx, c)
	defer stop()
	opts := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
	if binary {
		opts = &imap.FetchOptions{UID: true, BinarySection: []*imap.FetchItemBinarySection{{Peek: true}}}
	}
	cmd := c.Fetch(imap.SeqSetNum(seq), opts)
	found := false
	var got imap.UID
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		for it := m.Next(); it != nil; it = m.Next() {
			var lit imap.LiteralReader
			switch it := it.(type) {
			case imapclient.FetchItemDataUID:
				got = it.UID
			case imapclient.FetchItemDataBodySection:
				lit = it.Literal
			case imapclient.FetchItemDataBinarySection:
				lit = it.Literal
			}
			if lit == nil {
				continue
			}
			h := sha256.New()
			// A cut literal would hash to a wrong sum: "not there", and
			// the message stored again.
			full := imapconn.NewFullLiteral(lit, lit.Size(), func() string { return fmt.Sprintf("message UID %d", uid) })
			if _, err := io.Copy(h, full); err != nil {
				cmd.Close()
				t.drop()
				return sum, imapconn.Wrap(ctx, fmt.Errorf("read message %d: %w", uid, err))
			}
			copy(sum[:], h.Sum(nil))
			found = true
		}
	}
	if err := cmd.Close(); err != nil {
		if binary && imapconn.IsNo(err) && ctx.Err() == nil {
			return [32]byte{}, nil
		}
		t.drop()
		return sum, imapconn.Wrap(ctx, fmt.Errorf("fetch message %d: %w", uid, err))
	}
	if !found || got != uid {
		return sum, fmt.Errorf("fetch message %d: no body returned (UID %d)", uid, got)
	}
	return sum, nil
}

// Census counts the messages of folder with STATUS; a folder that does not
// exist has none (and is not created).
func (t *Target) Census(ctx context.Context, folder string) (target.Census, error) {
	if _, err := t.conn(ctx); err != nil {
		return target.Census{}, err
	}
	server := t.names.ToServer(folder)
	if ok, err := t.folderExists(ctx, server); err != nil || !ok {
		return target.Census{}, err
	}
	sd, err := t.status(ctx, server, folder, &imap.StatusOptions{NumMessages: true, UIDValidity: true, UIDNext: true})
	if err != nil {
		if imapconn.IsNo(err) {
			// Deleted since it was listed?
			if ok, lerr := t.folderExists(ctx, server); lerr == nil && !ok {
				return target.Census{}, nil
			}
		}
		return target.Census{}, err
	}
	t.noteMark(server, sd.UIDValidity, sd.UIDNext)
	c := target.Census{Validity: sd.UIDValidity}
	if sd.NumMessages != nil {
		c.Messages = int(*sd.NumMessages)
	}
	return c, nil
}

// Inventory calls fn for every message of folder with one streamed FETCH
// of UID, size, internal date and the Message-ID header field (never a
// body, never BINARY). A folder that does not exist has none.
func (t *Target) Inventory(ctx context.Context, folder string, fn func(target.Stored) error) error {
	sd, err := t.selectForLookup(ctx, folder)
	if err != nil || sd == nil {
		return err // none is no error: FETCH 1:* is one in an empty folder
	}
	c, err := t.conn(ctx)
	if err != nil {
		return err
	}
	// Closing the connection is how to give up early (fn failed): reading
	// the rest of a big folder only to drop it would take long. go-imap
	// must still be let past the response it is in (cmd.Close).
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := imapconn.CloseOnDone(ictx, c)
	defer stop()
	var all imap.SeqSet
	all.AddRange(1, 0)
	cmd := c.Fetch(all, imapconn.HeaderIDItems)
	fail := func(err error) error {
		cancel()
		cmd.Close()
		t.drop()
		return err
	}
	n := uint32(0)
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		s, _, err := imapconn.ReadHeaderID(m, folder)
		if err == nil && s.UID == 0 {
			err = fmt.Errorf("the server sent message %d without its UID", s.Seq)
		}
		if err != nil {
			return fail(imapconn.Wrap(ctx, fmt.Errorf("list the messages of %q: %w", folder, err)))
		}
		n++
		if err := fn(target.Stored{Receipt: fmt.Sprintf("%d:%d", sd.UIDValidity, s.UID), MessageID: s.MessageID, Date: s.Date, Size: s.Size}); err != nil {
			return fail(err)
		}
	}
	if err := cmd.Close(); err != nil {
		t.drop()
		return imapconn.Wrap(ctx, fmt.Errorf("list the messages of %q: %w", folder, err))
	}
	if n < sd.NumMessages {
		// A message left out would be taken for one the folder lacks, and
		// copied again; as the source's Identities does, say so instead.
		return failure.Mark(failure.Temporary, fmt.Errorf("list the messages of %q: the server answered for %d of its %d messages", folder, n, sd.NumMessages))
	}
	return nil
}
