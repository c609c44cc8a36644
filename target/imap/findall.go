package imap

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/target"
)

var _ target.BatchFinder = (*Target)(nil)

// A batch SEARCH ORs at most findAllTerms Message-IDs of at most
// findAllBytes octets in all, so that the command stays far below a
// server's line limit (Dovecot: 64 KiB) and its OR tree shallow.
const (
	findAllTerms = 64
	findAllBytes = 8 << 10
)

// FindAll settles the deliveries of one folder together: one SELECT, one
// UID SEARCH (per findAllTerms Message-IDs) over "UID lowest-mark:*" with
// an OR of their Message-IDs, one FETCH of the candidates' UID, size, date
// and Message-ID, and one FETCH of the bodies of those that have the size
// of a delivery, to hash. After a kill -9 in a folder of 400,000 messages,
// where each Find SELECTs (0.4 s on Dovecot) and searches from its mark,
// the hundred-odd open intents cost that once instead of a hundred times.
//
// Each delivery is then judged as Find judges it: the candidates at or
// above its own mark, not taken; a byte-exact copy wins, else a copy the
// server rewrote (same Message-ID and internal date, size from d's to
// rewriteSlack more). The exact copies of all are given out first, then the
// rewritten ones, in the order of ds; a copy given to one is not given to
// another. A delivery without a Message-ID or without a hash (which Find
// looks for by date and size, or by a unique size) is looked up with Find,
// the copies given out here counting as taken.
func (t *Target) FindAll(ctx context.Context, ds []target.Delivery) ([]target.Found, error) {
	out := make([]target.Found, len(ds))
	if len(ds) == 0 {
		return out, nil
	}
	folder := ds[0].Folder
	for _, d := range ds[1:] {
		if d.Folder != folder {
			return nil, fmt.Errorf("find in %q and %q at once: one folder at a time", folder, d.Folder)
		}
	}
	given := map[string]bool{}
	var batch, single []int
	for i, d := range ds {
		if d.Fingerprint.MessageID != "" && d.Fingerprint.SHA256 != ([32]byte{}) {
			batch = append(batch, i)
		} else {
			single = append(single, i)
		}
	}
	if len(batch) > 0 {
		if err := t.findBatch(ctx, ds, batch, out, given); err != nil {
			return nil, err
		}
	}
	for _, i := range single {
		d := ds[i]
		taken := d.Taken
		d.Taken = func(r string) bool { return given[r] || (taken != nil && taken(r)) }
		r, ok, err := t.Find(ctx, d)
		if err != nil {
			return nil, err
		}
		if ok {
			out[i] = target.Found{Receipt: r, OK: true}
			given[r] = true
		}
	}
	return out, nil
}

// findBatch answers for ds[idx] (each with a Message-ID and a hash) into
// out, and notes the receipts it gives out in given.
func (t *Target) findBatch(ctx context.Context, ds []target.Delivery, idx []int, out []target.Found, given map[string]bool) error {
	folder := ds[idx[0]].Folder
	sd, err := t.selectForLookup(ctx, folder)
	if err != nil || sd == nil {
		return err
	}
	receipt := func(u imap.UID) string { return fmt.Sprintf("%d:%d", sd.UIDValidity, u) }
	from := make([]imap.UID, len(ds))
	size := make([]int64, len(ds))
	lowest := imap.UID(0)
	var ids []string
	for n, i := range idx {
		d := ds[i]
		if v, u, ok := parseReceipt(d.Mark); ok && v == sd.UIDValidity {
			from[i] = u
		}
		if n == 0 || from[i] < lowest {
			lowest = from[i]
		}
		size[i] = d.Fingerprint.Size
		if size[i] == 0 {
			size[i] = d.Size
		}
		if !slices.Contains(ids, d.Fingerprint.MessageID) {
			ids = append(ids, d.Fingerprint.MessageID)
		}
	}
	cands, err := t.candidatesAll(ctx, folder, ids, lowest)
	if err != nil || len(cands) == 0 {
		return err
	}
	// open says whether candidate s may still be ds[i]'s copy.
	open := func(i int, s stored) bool {
		r := receipt(s.UID)
		return s.UID != 0 && s.UID >= from[i] && !given[r] && (ds[i].Taken == nil || !ds[i].Taken(r))
	}
	give := func(i int, s stored) {
		r := receipt(s.UID)
		out[i] = target.Found{Receipt: r, OK: true}
		given[r] = true
	}
	// The bodies to hash: candidates of a delivery's size. Those of a
	// delivery with NUL bytes are read one by one with BINARY (see hash).
	var plain []stored
	var binary []int // indexes into cands
	seen := map[imap.UID]bool{}
	for ci, s := range cands {
		for _, i := range idx {
			if s.Size != size[i] || !open(i, s) {
				continue
			}
			if ds[i].Binary {
				binary = append(binary, ci)
			} else if !seen[s.UID] {
				seen[s.UID] = true
				plain = append(plain, s)
			}
		}
	}
	sums, err := t.hashAll(ctx, folder, plain)
	if err != nil {
		return err
	}
	binSums := map[imap.UID][32]byte{}
	for _, ci := range binary {
		s := cands[ci]
		if _, ok := binSums[s.UID]; ok {
			continue
		}
		sum, err := t.hash(ctx, s.Seq, s.UID, true)
		if err != nil {
			return fmt.Errorf("find in %q: %w", folder, err)
		}
		binSums[s.UID] = sum
	}
	// Exact copies first, for every delivery.
	for _, i := range idx {
		d := ds[i]
		for _, s := range cands {
			if s.Size != size[i] || !open(i, s) {
				continue
			}
			sum, ok := sums[s.UID]
			if d.Binary {
				sum, ok = binSums[s.UID]
			}
			if ok && sum == d.Fingerprint.SHA256 {
				give(i, s)
				break
			}
		}
	}
	// Then copies the server rewrote; among twins any one will do.
	for _, i := range idx {
		d := ds[i]
		if out[i].OK || d.Date.IsZero() || size[i] == 0 {
			continue
		}
		for _, s := range cands {
			if open(i, s) && s.MessageID == d.Fingerprint.MessageID && s.Date.Unix() == d.Date.Unix() && s.Size >= size[i] && s.Size <= size[i]+rewriteSlack(size[i]) {
				give(i, s)
				break
			}
		}
	}
	return nil
}

// candidatesAll searches the selected folder for the messages at or above
// from with one of the Message-IDs ids, and fetches their UID, size, date
// and Message-ID, in the folder's order.
func (t *Target) candidatesAll(ctx context.Context, folder string, ids []string, from imap.UID) ([]stored, error) {
	var set imap.SeqSet
	for len(ids) > 0 {
		n, octets := 0, 0
		for n < len(ids) && n < findAllTerms && (n == 0 || octets+len(ids[n]) <= findAllBytes) {
			octets += len(ids[n])
			n++
		}
		terms := make([]imap.SearchCriteria, n)
		for k, id := range ids[:n] {
			terms[k].Header = []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: id}}
		}
		ids = ids[n:]
		crit := anyOf(terms)
		if from > 0 {
			var above imap.UIDSet
			above.AddRange(from, 0)
			crit.UID = []imap.UIDSet{above}
		}
		// SEARCH and FETCH by sequence number: no EXPUNGE may come
		// between them (RFC 3501 §7.4.1), and see imapconn.HeaderIDItems.
		err := t.short(ctx, fmt.Sprintf("search folder %q", folder), func(c *imapclient.Client) error {
			sr, err := c.Search(&crit, nil).Wait()
			if err != nil {
				return err
			}
			for _, s := range sr.AllSeqNums() {
				set.AddNum(s)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(set) == 0 {
		return nil, nil
	}
	var cands []stored
	err := t.short(ctx, fmt.Sprintf("fetch candidates in %q", folder), func(c *imapclient.Client) error {
		cmd := c.Fetch(set, imapconn.HeaderIDItems)
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			s, _, err := imapconn.ReadHeaderID(m, folder)
			if err != nil {
				cmd.Close()
				return err
			}
			cands = append(cands, s)
		}
		return cmd.Close()
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(cands, func(a, b stored) int { return cmp.Compare(a.Seq, b.Seq) })
	return cands, nil
}

// anyOf is the OR of terms, as a balanced tree (a chain of a hundred ORs
// nests a hundred deep).
func anyOf(terms []imap.SearchCriteria) imap.SearchCriteria {
	if len(terms) == 1 {
		return terms[0]
	}
	m := len(terms) / 2
	return imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{anyOf(terms[:m]), anyOf(terms[m:])}}}
}

// hashAll returns the SHA-256 of the bytes of each of cands (BODY.PEEK[],
// streamed) with one FETCH, by UID.
func (t *Target) hashAll(ctx context.Context, folder string, cands []stored) (map[imap.UID][32]byte, error) {
	sums := make(map[imap.UID][32]byte, len(cands))
	if len(cands) == 0 {
		return sums, nil
	}
	c, err := t.conn(ctx)
	if err != nil {
		return nil, err
	}
	stop := imapconn.CloseOnDone(ctx, c)
	defer stop()
	var set imap.SeqSet
	want := make(map[uint32]imap.UID, len(cands))
	for _, s := range cands {
		set.AddNum(s.Seq)
		want[s.Seq] = s.UID
	}
	opts := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
	cmd := c.Fetch(set, opts)
	fail := func(err error) (map[imap.UID][32]byte, error) {
		cmd.Close()
		t.drop()
		return nil, imapconn.Wrap(ctx, fmt.Errorf("find in %q: %w", folder, err))
	}
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		var got imap.UID
		var sum [32]byte
		found := false
		for it := m.Next(); it != nil; it = m.Next() {
			switch it := it.(type) {
			case imapclient.FetchItemDataUID:
				got = it.UID
			case imapclient.FetchItemDataBodySection:
				if it.Literal == nil {
					continue
				}
				h := sha256.New()
				// A cut literal would hash to a wrong sum: "not there",
				// and the message stored again.
				seq := m.SeqNum
				full := imapconn.NewFullLiteral(it.Literal, it.Literal.Size(), func() string { return fmt.Sprintf("message %d (sequence number)", seq) })
				if _, err := io.Copy(h, full); err != nil {
					return fail(fmt.Errorf("read message %d (sequence number): %w", seq, err))
				}
				copy(sum[:], h.Sum(nil))
				found = true
			}
		}
		uid, asked := want[m.SeqNum]
		if !asked {
			continue // an unsolicited FETCH (flags changed)
		}
		if found && got == uid {
			sums[uid] = sum
		}
	}
	if err := cmd.Close(); err != nil {
		t.drop()
		return nil, imapconn.Wrap(ctx, fmt.Errorf("find in %q: fetch %d messages: %w", folder, len(cands), err))
	}
	for _, s := range cands {
		if _, ok := sums[s.UID]; !ok {
			return nil, fmt.Errorf("find in %q: fetch message %d: no body returned", folder, s.UID)
		}
	}
	return sums, nil
}

var _ target.LookupWarmer = (*Target)(nil)

// WarmLookup selects folder for lookups and searches its last message's
// header for a Message-ID no message has. A Dovecot session's first header
// SEARCH in a folder loads what it keeps of the folder's messages (its
// cache file and UID-to-file map): 0.5 s at 200,000 messages, else paid by
// FindAll's own SEARCH. Reading a message's first byte does not do that.
func (t *Target) WarmLookup(ctx context.Context, folder string) error {
	sd, err := t.selectForLookup(ctx, folder)
	if err != nil || sd == nil {
		return err
	}
	return t.short(ctx, fmt.Sprintf("search %q", folder), func(c *imapclient.Client) error {
		crit := &imap.SearchCriteria{
			SeqNum: []imap.SeqSet{imap.SeqSetNum(sd.NumMessages)},
			Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "<warm-up.lookup@mailferry.invalid>"}},
		}
		_, err := c.Search(crit, nil).Wait()
		return err
	})
}
