// Package imap is the IMAP source: it lists folders (with special-use
// attributes and UIDVALIDITY), lists messages (UID, flags, internal date,
// size) and streams their bodies with BODY.PEEK[] over an EXAMINEd folder,
// so that \Seen never changes on the source.
//
// Fetch works around go-imap v2 beta.8, which silently drops a UID FETCH
// response whose body literal arrives before its UID item: it maps the
// requested UIDs to sequence numbers (SEARCH UID, during which the server
// may not expunge), FETCHes by sequence set with the UID item, checks every
// requested UID arrived, and re-requests the missing ones one by one. A body
// that arrives before the UID, flags, date or size of its message is spooled
// to a temporary file so that fn always gets the right Meta.
//
// A body is whole only when its literal's announced length has arrived: a
// connection that ends sooner, even in order, is a retryable error wrapping
// io.ErrUnexpectedEOF, never a shorter message.
//
// On a server that announces BINARY, NUL octets served as 0x80 under
// BODY[] are restored from BINARY.PEEK[] (binary.go).
package imap

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/source"
)

// ChunkSize is the number of messages requested per FETCH.
const ChunkSize = 64

// Source is one IMAP session that reads mail.
type Source struct {
	cfg      imapconn.Config
	c        *imapclient.Client
	names    imapconn.Names
	selected string   // server name of the selected folder
	readOnly bool     // selected with EXAMINE
	validity uint32   // UIDVALIDITY of the selected folder
	exists   uint32   // messages in the selected folder when it was selected
	uidNext  imap.UID // UIDNEXT of the selected folder when it was selected (0: not announced)
	// unknown: folders Folders listed with Validity 0 because STATUS
	// failed; List reports their validity with a *ValidityChangedError.
	// Shared by the sessions of one Opener.
	unknown *nameSet
	// skipped are the folders the last Folders call left out.
	skipped []source.Skip
}

// nameSet is a set of folder names safe for concurrent use.
type nameSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (n *nameSet) set(name string, in bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if in {
		if n.m == nil {
			n.m = map[string]bool{}
		}
		n.m[name] = true
	} else {
		delete(n.m, name)
	}
}

func (n *nameSet) has(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.m[name]
}

var (
	_ source.Source     = (*Source)(nil)
	_ source.Deleter    = (*Source)(nil)
	_ source.Identifier = (*Source)(nil)
	_ source.Pager      = (*Source)(nil)
)

// Features declares what an IMAP source can do.
func (s *Source) Features() source.Features {
	return source.Features{Delete: true, Identities: true, Skipped: true, Pages: true, Skim: true, Flags: true, Dates: true}
}

// ValidityChangedError is source.ValidityChangedError.
type ValidityChangedError = source.ValidityChangedError

// Open connects and logs in.
func Open(ctx context.Context, cfg imapconn.Config) (*Source, error) {
	return open(ctx, cfg, &nameSet{})
}

func open(ctx context.Context, cfg imapconn.Config, unknown *nameSet) (*Source, error) {
	s := &Source{cfg: cfg, unknown: unknown}
	if _, err := s.conn(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Opener returns a source.Opener for cfg.
func Opener(cfg imapconn.Config) source.Opener {
	unknown := &nameSet{}
	return func(ctx context.Context) (source.Source, error) { return open(ctx, cfg, unknown) }
}

func (s *Source) conn(ctx context.Context) (*imapclient.Client, error) {
	if c := imapconn.Live(s.c, s.drop); c != nil {
		return c, nil
	}
	c, names, err := imapconn.DialNames(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	s.c, s.names = c, names
	return c, nil
}

func (s *Source) drop() {
	if s.c != nil {
		s.c.Close()
	}
	s.c, s.selected, s.validity = nil, "", 0
}

// Close logs out and closes the connection.
func (s *Source) Close() error {
	if s.c == nil {
		return nil
	}
	c := s.c
	s.c = nil
	return imapconn.Logout(c)
}

func (s *Source) short(ctx context.Context, what string, f func(c *imapclient.Client) error) error {
	c, err := s.conn(ctx)
	if err != nil {
		return err
	}
	return imapconn.Do(ctx, &s.cfg, c, s.drop, what, f)
}

// Folders lists the selectable folders of the personal namespace with
// their special-use attribute and UIDVALIDITY (STATUS, pipelined). The
// others (other users', shared, \Noselect) are left out and listed by
// Skipped.
//
// A STATUS that fails (a name the server chokes on, a timeout that costs
// the connection and so the STATUS pipelined after it) does not fail the
// listing: the folder is listed with Validity 0 and remembered by every
// session of the same Opener, so that List EXAMINEs it and reports its
// failure for that folder alone, or returns a *ValidityChangedError with
// the validity EXAMINE found (never keys with a made-up validity). No
// STATUS is retried here: EXAMINE is the retry, and a folder that hangs
// costs two timeouts, not three.
func (s *Source) Folders(ctx context.Context) ([]source.Folder, error) {
	var out []source.Folder
	var servers []string
	var skipped []source.Skip
	err := s.short(ctx, "list folders", func(c *imapclient.Client) error {
		ns, err := imapconn.AskNamespaces(c)
		if err != nil {
			return err
		}
		l, err := c.List("", "*", imapconn.ListOptions(c)).Collect()
		if err != nil {
			return err
		}
		for _, d := range l {
			name, why := s.skipReason(ns, d)
			if why != "" {
				skipped = append(skipped, source.Skip{Name: name, Reason: why})
				continue
			}
			out = append(out, source.Folder{Name: name, SpecialUse: imapconn.SpecialUse(d.Attrs)})
			servers = append(servers, d.Mailbox)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	failed := make([]bool, len(servers))
	lost := false
	err = s.short(ctx, "ask the UIDVALIDITY of the folders", func(c *imapclient.Client) error {
		cmds := make([]*imapclient.StatusCommand, len(servers))
		for i, m := range servers {
			cmds[i] = c.Status(m, &imap.StatusOptions{UIDValidity: true, NumMessages: true})
		}
		for i, cmd := range cmds {
			sd, err := cmd.Wait()
			if err != nil {
				failed[i] = true
				lost = lost || !imapconn.IsNo(err)
				continue
			}
			out[i].Validity = sd.UIDValidity
			if sd.NumMessages != nil {
				out[i].Messages = int(*sd.NumMessages)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if lost {
		// A STATUS that failed other than with NO (a timeout) cost the
		// connection, but the client may not have noticed yet when the
		// next command is sent on it: drop it now, so that the next
		// command dials afresh.
		s.drop()
	}
	for i, bad := range failed {
		s.unknown.set(out[i].Name, bad)
	}
	s.skipped = skipped
	return out, nil
}

// examine selects a folder read-only (EXAMINE) unless it is already
// selected, and checks its UIDVALIDITY against want (0: no check).
func (s *Source) examine(ctx context.Context, f source.Folder, readOnly, force bool) (uint32, error) {
	if _, err := s.conn(ctx); err != nil {
		return 0, err
	}
	server := s.names.ToServer(f.Name)
	if force || s.selected != server || (s.readOnly && !readOnly) {
		var sd *imap.SelectData
		verb := "examine"
		if !readOnly {
			verb = "select"
		}
		err := s.short(ctx, fmt.Sprintf("%s folder %q", verb, f.Name), func(c *imapclient.Client) error {
			var err error
			sd, err = c.Select(server, &imap.SelectOptions{ReadOnly: readOnly}).Wait()
			return err
		})
		if err != nil {
			// A folder the server refuses to open (NO) fails that folder
			// only: not failure.Fatal.
			s.selected = ""
			return 0, err
		}
		s.selected, s.readOnly, s.validity, s.exists, s.uidNext = server, readOnly, sd.UIDValidity, sd.NumMessages, sd.UIDNext
	}
	if f.Validity != 0 && s.validity != f.Validity {
		return 0, &ValidityChangedError{Folder: f.Name, Old: f.Validity, New: s.validity}
	}
	return s.validity, nil
}

func mkMeta(uid imap.UID, flags []imap.Flag, date time.Time, size int64) source.Meta {
	m := source.Meta{ID: strconv.FormatUint(uint64(uid), 10), Size: size, Received: date}
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		m.Flags = append(m.Flags, string(f))
	}
	return m
}

// List returns every message of f (UID, flags, internal date, size) in
// UID order, streaming the FETCH responses. If the folder's UIDVALIDITY is
// no longer f.Validity it returns a *ValidityChangedError.
func (s *Source) List(ctx context.Context, f source.Folder) ([]source.Meta, error) {
	if err := s.examineForList(ctx, f, true); err != nil {
		return nil, err
	}
	// UID FETCH 1:* is valid on an empty folder (FETCH 1:* is not), and
	// without a body beta.8 cannot drop a response.
	var all imap.UIDSet
	all.AddRange(1, 0)
	out, err := s.fetchMetas(ctx, f, all, 1, nil)
	if err != nil {
		return nil, err
	}
	sortByUID(out)
	return out, nil
}

// examineForList EXAMINEs f (again with force, so that the counts are
// current) and reports the validity of a folder whose STATUS failed.
func (s *Source) examineForList(ctx context.Context, f source.Folder, force bool) error {
	v, err := s.examine(ctx, f, true, force)
	if err != nil {
		return err
	}
	if f.Validity == 0 && v != 0 && s.unknown.has(f.Name) {
		// STATUS failed in Folders; EXAMINE worked: give the caller the
		// validity its keys need.
		return &ValidityChangedError{Folder: f.Name, Old: 0, New: v}
	}
	return nil
}

// maxPageWidth bounds the UID range one ListPage FETCH asks for.
const maxPageWidth = 1 << 22

// ListPage lists the messages of f with UIDs from the cursor on (a decimal
// UID; "" is the start, which EXAMINEs the folder again) with UID FETCH
// a:b windows of about max UIDs, widened while they come back sparse, and
// a:* for the last one, so that a message that arrived since the EXAMINE
// is listed as List would list it. The next cursor is the UID after the
// window; "" once the folder's end was listed.
func (s *Source) ListPage(ctx context.Context, f source.Folder, after string, max int) ([]source.Meta, string, error) {
	var out []source.Meta
	next, err := s.windows(ctx, f, after, max, func(set imap.UIDSet, from imap.UID) (int, error) {
		n := len(out)
		got, err := s.fetchMetas(ctx, f, set, from, out)
		out = got
		return len(out) - n, err
	})
	if err != nil {
		return nil, "", err
	}
	sortByUID(out)
	return out, next, nil
}

// SkimPage lists the page ListPage would (source.Skimmer): the UIDs of
// each window with UID SEARCH (ESEARCH's RETURN (ALL) when the server has
// it: a dense folder answers with one range), then flags, dates and sizes
// with one UID FETCH of the UIDs want keeps.
func (s *Source) SkimPage(ctx context.Context, f source.Folder, after string, size int, want func(id string) bool) ([]source.Meta, []string, string, error) {
	var (
		known []string
		keep  imap.UIDSet
		n     int
	)
	next, err := s.windows(ctx, f, after, size, func(set imap.UIDSet, from imap.UID) (int, error) {
		uids, err := s.searchUIDs(ctx, f, set)
		if err != nil {
			return 0, err
		}
		got := 0
		for _, r := range uids {
			if r.Stop < from {
				continue
			}
			for u := max(r.Start, from); ; u++ {
				got++
				if id := strconv.FormatUint(uint64(u), 10); want(id) {
					keep.AddNum(u)
					n++
				} else {
					known = append(known, id)
				}
				if u == r.Stop {
					break // not u <= r.Stop: r.Stop may be the highest UID
				}
			}
		}
		return got, nil
	})
	if err != nil {
		return nil, nil, "", err
	}
	var metas []source.Meta
	if n > 0 {
		if metas, err = s.fetchMetas(ctx, f, keep, 1, make([]source.Meta, 0, n)); err != nil {
			return nil, nil, "", err
		}
		sortByUID(metas)
	}
	return metas, known, next, nil
}

// searchUIDs returns the UIDs of set in the selected folder as ranges.
func (s *Source) searchUIDs(ctx context.Context, f source.Folder, set imap.UIDSet) (imap.UIDSet, error) {
	var all imap.UIDSet
	err := s.short(ctx, fmt.Sprintf("search messages in %q", f.Name), func(c *imapclient.Client) error {
		var opts *imap.SearchOptions
		if c.Caps().Has(imap.CapESearch) {
			opts = &imap.SearchOptions{ReturnAll: true}
		}
		sd, err := c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{set}}, opts).Wait()
		if err != nil {
			return err
		}
		if sd.All != nil {
			all, _ = sd.All.(imap.UIDSet)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, r := range all {
		if r.Start == 0 || r.Stop == 0 || r.Stop < r.Start {
			// "*" or a reversed range: not a list of existing UIDs.
			return nil, fmt.Errorf("search messages in %q: the server answered with the range %v", f.Name, r)
		}
	}
	return all, nil
}

// windows walks the UID windows of one ListPage call from the cursor,
// calling list for each with the window's set and the lowest UID wanted
// (a:* with a above the highest UID means the last message, RFC 3501
// §6.4.8: list keeps only UIDs from on); list returns how many messages
// it found. It returns the next cursor.
func (s *Source) windows(ctx context.Context, f source.Folder, after string, max int, list func(set imap.UIDSet, from imap.UID) (int, error)) (string, error) {
	max = min(maxPageWidth, std(max))
	start := uint64(1)
	if after == "" {
		if err := s.examineForList(ctx, f, true); err != nil {
			return "", err
		}
	} else {
		var err error
		if start, err = strconv.ParseUint(after, 10, 32); err != nil || start == 0 {
			return "", fmt.Errorf("list messages of %q: bad cursor %q", f.Name, after)
		}
		// After a reconnect the folder is EXAMINEd again (and its
		// validity checked); otherwise the session stays on it.
		if err := s.examineForList(ctx, f, false); err != nil {
			return "", err
		}
	}
	found := 0
	width := uint64(max)
	for {
		var set imap.UIDSet
		end := start + width - 1
		last := s.uidNext == 0 || end+1 >= uint64(s.uidNext) || end >= 1<<32-1
		if last {
			set.AddRange(imap.UID(start), 0)
		} else {
			set.AddRange(imap.UID(start), imap.UID(end))
		}
		n, err := list(set, imap.UID(start))
		if err != nil {
			return "", err
		}
		found += n
		if last {
			return "", nil
		}
		start = end + 1
		if found >= max/2 {
			return strconv.FormatUint(start, 10), nil
		}
		width = min(width*2, maxPageWidth)
	}
}

// std is n, or 1000 when n is not positive.
func std(n int) int {
	if n <= 0 {
		return 1000
	}
	return n
}

func sortByUID(out []source.Meta) {
	slices.SortFunc(out, func(a, b source.Meta) int {
		x, _ := strconv.ParseUint(a.ID, 10, 32)
		y, _ := strconv.ParseUint(b.ID, 10, 32)
		return int(int64(x) - int64(y))
	})
}

// fetchMetas appends to out the UID, flags, internal date and size of the
// messages of set (UIDs below from left out), over the selected folder.
func (s *Source) fetchMetas(ctx context.Context, f source.Folder, set imap.UIDSet, from imap.UID, out []source.Meta) ([]source.Meta, error) {
	c := s.c
	stop := imapconn.CloseOnDone(ctx, c)
	defer stop()
	cmd := c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true})
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		var (
			uid   imap.UID
			flags []imap.Flag
			date  time.Time
			size  int64
		)
		for it := m.Next(); it != nil; it = m.Next() {
			switch it := it.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataFlags:
				flags = it.Flags
			case imapclient.FetchItemDataInternalDate:
				date = it.Time
			case imapclient.FetchItemDataRFC822Size:
				size = it.Size
			}
		}
		if uid != 0 && uid >= from {
			out = append(out, mkMeta(uid, flags, date, size))
		}
	}
	if err := cmd.Close(); err != nil {
		s.drop()
		return nil, imapconn.Wrap(ctx, fmt.Errorf("list messages of %q: %w", f.Name, err))
	}
	return out, nil
}

func parseUIDs(ids []string) ([]imap.UID, []string) {
	var uids []imap.UID
	var bad []string
	for _, id := range ids {
		u, err := strconv.ParseUint(id, 10, 32)
		if err != nil || u == 0 {
			bad = append(bad, id)
			continue
		}
		uids = append(uids, imap.UID(u))
	}
	return uids, bad
}

// chunks splits uids into runs of at most n strictly increasing UIDs, so
// that each run comes back from the server in the caller's order.
func chunks(uids []imap.UID, n int) [][]imap.UID {
	var out [][]imap.UID
	start := 0
	for i := 1; i <= len(uids); i++ {
		if i == len(uids) || i-start == n || uids[i] <= uids[i-1] {
			out = append(out, uids[start:i])
			start = i
		}
	}
	return out
}

// Fetch streams the bodies of ids (decimal UIDs) to fn, in order, in
// chunks of ChunkSize. IDs that no longer exist are reported at the end
// with a *source.VanishedError. If fn fails the connection is dropped (to
// skip the rest of the chunk) and its error is returned.
func (s *Source) Fetch(ctx context.Context, f source.Folder, ids []string, fn func(source.Meta, io.Reader) error) error {
	uids, vanished := parseUIDs(ids)
	for _, ch := range chunks(uids, ChunkSize) {
		missing, err := s.fetchChunk(ctx, f, ch, fn)
		if err != nil {
			return err
		}
		for _, u := range missing {
			// Once more, alone: a server may have sent it in a form we
			// could not match.
			again, err := s.fetchChunk(ctx, f, []imap.UID{u}, fn)
			if err != nil {
				return err
			}
			if len(again) > 0 {
				vanished = append(vanished, strconv.FormatUint(uint64(u), 10))
			}
		}
	}
	if len(vanished) > 0 {
		return &source.VanishedError{Folder: f.Name, IDs: vanished}
	}
	return nil
}

// fetchChunk delivers the messages of uids (strictly increasing) and
// returns those that did not arrive.
func (s *Source) fetchChunk(ctx context.Context, f source.Folder, uids []imap.UID, fn func(source.Meta, io.Reader) error) ([]imap.UID, error) {
	if _, err := s.examine(ctx, f, true, false); err != nil {
		return nil, err
	}
	var want imap.UIDSet
	for _, u := range uids {
		want.AddNum(u)
	}
	var seqs []uint32
	err := s.short(ctx, fmt.Sprintf("search messages in %q", f.Name), func(c *imapclient.Client) error {
		sd, err := c.Search(&imap.SearchCriteria{UID: []imap.UIDSet{want}}, nil).Wait()
		if err != nil {
			return err
		}
		seqs = sd.AllSeqNums()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(seqs) == 0 {
		return uids, nil
	}
	var seqSet imap.SeqSet
	for _, n := range seqs {
		seqSet.AddNum(n)
	}
	c := s.c
	bin := c.Caps().Has(imap.CapBinary)
	var waiting []*pending
	defer func() {
		for _, p := range waiting {
			p.body.close()
		}
	}()
	stop := imapconn.CloseOnDone(ctx, c)
	defer stop()
	cmd := c.Fetch(seqSet, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	got := map[imap.UID]bool{}
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		uid, cut, err := s.deliver(m, f.Name, want, got, bin, &waiting, fn)
		if err != nil {
			abort(c, cmd, cut)
			s.drop()
			if ctx.Err() != nil {
				return nil, imapconn.Wrap(ctx, fmt.Errorf("fetch from %q: %w", f.Name, err))
			}
			return nil, err
		}
		if uid != 0 {
			got[uid] = true
		}
	}
	if err := cmd.Close(); err != nil {
		s.drop()
		return nil, imapconn.Wrap(ctx, fmt.Errorf("fetch messages from %q: %w", f.Name, err))
	}
	if err := s.deliverPending(ctx, f.Name, waiting, fn); err != nil {
		return nil, err
	}
	var missing []imap.UID
	for _, u := range uids {
		if !got[u] {
			missing = append(missing, u)
		}
	}
	return missing, nil
}

// abort closes c in the middle of a FETCH. go-imap's Close waits for its
// reader goroutine, which waits for the current body literal to be
// consumed: so close the connection in the background and drain the
// command, whose reads now fail fast.
//
// cut: a body literal already failed. go-imap then lets its reader
// goroutine go on while draining the command reads that literal again
// from the same buffer (a data race), so wait for the reader to end first.
func abort(c *imapclient.Client, cmd *imapclient.FetchCommand, cut bool) {
	done := make(chan struct{})
	go func() {
		c.Close()
		close(done)
	}()
	if cut {
		// Bounded: should the reader parse what follows into a response
		// and wait for us to take it, draining the command frees it.
		select {
		case <-c.Closed():
		case <-time.After(5 * time.Second):
		}
	}
	cmd.Close()
	<-done
}

// fnError marks an error returned by the caller's fn, passed through as is.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }
func (e fnError) Unwrap() error { return e.err }

// deliver reads one FETCH response and calls fn when it carries a wanted,
// not yet delivered UID and a body. It returns the UID delivered (0: none),
// and cut when a body literal ended with an error. With bin (the server
// announces BINARY) a body holding 0x80 is appended to waiting instead, and
// its UID returned: see binary.go.
func (s *Source) deliver(m *imapclient.FetchMessageData, folder string, want imap.UIDSet, got map[imap.UID]bool, bin bool, waiting *[]*pending, fn func(source.Meta, io.Reader) error) (_ imap.UID, cut bool, _ error) {
	var lit *imapconn.FullLiteral
	defer func() { cut = lit != nil && lit.Err != nil }()
	var (
		uid                                    imap.UID
		flags                                  []imap.Flag
		date                                   time.Time
		haveUID, haveFlags, haveDate, haveSize bool
		spool                                  *held
		size                                   int64
		delivered                              bool
	)
	defer func() { spool.close() }()
	what := func() string {
		if haveUID {
			return fmt.Sprintf("message UID %d of %q", uid, folder)
		}
		return fmt.Sprintf("message %d (sequence number) of %q", m.SeqNum, folder)
	}
	wanted := func() bool { return haveUID && want.Contains(uid) && !got[uid] }
	for it := m.Next(); it != nil; it = m.Next() {
		switch it := it.(type) {
		case imapclient.FetchItemDataUID:
			uid, haveUID = it.UID, true
		case imapclient.FetchItemDataFlags:
			flags, haveFlags = it.Flags, true
		case imapclient.FetchItemDataInternalDate:
			date, haveDate = it.Time, true
		case imapclient.FetchItemDataRFC822Size:
			haveSize = true // the literal's own size is what fn gets
			size = it.Size
		case imapclient.FetchItemDataBodySection:
			if it.Literal == nil || delivered || spool != nil {
				continue
			}
			if haveSize && it.Literal.Size() > 2*size+1<<20 {
				// Refused before reading it: the connection is dropped.
				return 0, false, failure.Mark(failure.Message, fmt.Errorf("imap %s announced a body of %d octets for %s whose RFC822.SIZE is %d; refusing it (broken or hostile server)",
					s.cfg.Addr, it.Literal.Size(), what(), size))
			}
			lit = imapconn.NewFullLiteral(it.Literal, it.Literal.Size(), what)
			if haveUID && haveFlags && haveDate && haveSize && !wanted() {
				continue
			}
			if haveUID && haveFlags && haveDate && haveSize && !bin {
				meta := mkMeta(uid, flags, date, lit.Size)
				delivered = true
				if err := fn(meta, lit); err != nil {
					return 0, false, fnError{err}
				}
				if err := lit.Rest(); err != nil {
					return 0, false, err
				}
				continue
			}
			// The body came before the rest, or may need its NULs back:
			// keep it until we know its meta and whether it holds 0x80.
			h, err := hold(lit, lit.Size)
			if err != nil {
				return 0, false, err
			}
			spool = h
		}
	}
	if delivered {
		return uid, false, nil
	}
	if spool == nil || !wanted() {
		return 0, false, nil
	}
	meta := mkMeta(uid, flags, date, spool.size)
	if bin && spool.has80 {
		// The bodies waiting stay in memory up to holdMem in all.
		inMem := spool.size
		for _, p := range *waiting {
			if p.body.file == nil {
				inMem += p.body.size
			}
		}
		if inMem > holdMem {
			if err := spool.toFile(); err != nil {
				return 0, false, err
			}
		}
		*waiting = append(*waiting, &pending{seq: m.SeqNum, uid: uid, meta: meta, body: spool})
		spool = nil
		return uid, false, nil
	}
	r, err := spool.reader()
	if err != nil {
		return 0, false, err
	}
	if err := fn(meta, r); err != nil {
		return 0, false, fnError{err}
	}
	return uid, false, nil
}

// Delete flags ids \Deleted and expunges exactly those (UID EXPUNGE,
// which needs UIDPLUS; without it nothing is deleted and an error is
// returned, never a plain EXPUNGE).
func (s *Source) Delete(ctx context.Context, f source.Folder, ids []string) error {
	uids, _ := parseUIDs(ids)
	if len(uids) == 0 {
		return nil
	}
	c, err := s.conn(ctx)
	if err != nil {
		return err
	}
	if !c.Caps().Has(imap.CapUIDPlus) && !c.Caps().Has(imap.CapIMAP4rev2) {
		return failure.Mark(failure.Config, fmt.Errorf("delete from %q: the server lacks UIDPLUS, so messages cannot be expunged one by one", f.Name))
	}
	if _, err := s.examine(ctx, f, false, false); err != nil {
		return err
	}
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(u)
	}
	return s.short(ctx, fmt.Sprintf("delete %d message(s) from %q", len(uids), f.Name), func(c *imapclient.Client) error {
		if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return err
		}
		return c.UIDExpunge(set).Close()
	})
}
