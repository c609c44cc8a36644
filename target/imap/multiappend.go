package imap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/target"
)

// The stores of a Target go over a second session, an appendPipe on an
// imapconn.Raw, when the server has LITERAL+ (see imapconn.Raw for why not
// go-imap). Consecutive messages for one folder are sent as one
// MULTIAPPEND command when the server has MULTIAPPEND (RFC 3502): the
// server then saves them in one transaction (Dovecot: one index and
// uidlist update, one fsync of its log for the lot), which about doubled
// what one Dovecot session stores per second on the benchmark. Commands
// are pipelined: the next one is written while the server works on the
// one before.
const (
	// maxMulti bounds the messages of one MULTIAPPEND command, and
	// maxMultiBytes its octets (a message bigger than that goes alone).
	// Dovecot's Maildir walks the folder's whole uidlist at each save
	// transaction (perf: maildir_sync_index, maildir_uidlist_iter_next), so
	// a command's cost grows with the folder: 150,000 messages into one
	// new folder took 71-73 s in commands of 32 and 52-53 s in commands of
	// 128. 128 is also the engine's largest default batch
	// (migrate.BatchSizeFor), and a worker drains its stores at the end of
	// each batch, so a bigger bound would rarely be reached.
	// The bodies are streamed, not kept: a bigger command costs no memory.
	maxMulti      = 128
	maxMultiBytes = 16 << 20
	// singleDepth is how many single APPENDs may be in flight.
	singleDepth = 16
)

// appendPipe writes APPEND commands on a Raw session and matches the
// server's answers to them in order.
type appendPipe struct {
	s        *imapconn.Raw
	multi    bool
	selected string     // server name of the folder SELECTed on s
	open     *appendCmd // the command still being written (MULTIAPPEND)
	sent     []*appendCmd
	// onSelect, when set, learns the UIDVALIDITY and UIDNEXT of each
	// folder SELECTed (the Target's marks).
	onSelect func(server string, validity uint32, next imap.UID)
	// singles is how many messages are still sent as single APPENDs after
	// a refused MULTIAPPEND (its messages come back one by one).
	singles int
}

// appendCmd is one APPEND (or SELECT) command and, once answered, its
// outcome.
type appendCmd struct {
	tag      string
	server   string // server folder name
	folder   string // canonical folder name, for messages
	n        int
	bytes    int64
	done     bool
	st       *imapconn.Status
	err      error // no answer: the outcome is unknown
	validity uint32
	uids     []imap.UID
	sel      bool              // a SELECT: its untagged data carry validity and next
	next     imap.UID          // UIDNEXT of a SELECT
	other    func(line string) // another command's untagged data
}

// untagged reads a SELECT's "* OK [UIDVALIDITY n]" and "* OK [UIDNEXT n]".
func (c *appendCmd) untagged(line string) {
	if c.other != nil {
		c.other(line)
		return
	}
	if !c.sel || len(line) < 6 || !strings.EqualFold(line[:6], "* OK [") {
		return
	}
	inner, _, ok := strings.Cut(line[6:], "]")
	if !ok {
		return
	}
	code, arg, _ := strings.Cut(inner, " ")
	n, err := strconv.ParseUint(strings.TrimSpace(arg), 10, 32)
	if err != nil || n == 0 {
		return
	}
	switch strings.ToUpper(code) {
	case "UIDVALIDITY":
		c.validity = uint32(n)
	case "UIDNEXT":
		c.next = imap.UID(n)
	}
}

func newAppendPipe(s *imapconn.Raw) *appendPipe {
	return &appendPipe{s: s, multi: s.Has("MULTIAPPEND")}
}

// depth is how many Sends may be in flight: two MULTIAPPEND commands' worth
// (one being answered while the next is written).
func (p *appendPipe) depth() int {
	if p.multi {
		return 2 * maxMulti
	}
	return singleDepth
}

// broken reports an unusable session.
func (p *appendPipe) broken() error { return p.s.Broken() }

// close ends the session. A command half written is not ended: the server
// then drops it and stores none of its messages.
func (p *appendPipe) close() error {
	return p.s.Close(p.open == nil)
}

// send writes one message as an APPEND, or as the next message of the open
// MULTIAPPEND, and returns the function that waits for its outcome.
func (p *appendPipe) send(ctx context.Context, server string, d target.Delivery, flags []imap.Flag, body io.Reader, appendErr func(error) error) (func() (string, error), error) {
	if err := p.broken(); err != nil {
		return nil, err
	}
	if d.Binary && !p.s.Has("BINARY") {
		return nil, noBinary(d)
	}
	stop := p.s.CloseOnDone(ctx)
	defer stop()
	if p.selected != server {
		if err := p.selectFolder(ctx, server, d.Folder); err != nil {
			return nil, err
		}
	}
	multi := p.multi && p.singles <= 0
	if c := p.open; c != nil && (!multi || c.server != server || c.n >= maxMulti || c.bytes+d.Size > maxMultiBytes) {
		if err := p.end(); err != nil {
			return nil, imapconn.Wrap(ctx, fmt.Errorf("append to %q: %w", d.Folder, err))
		}
	}
	w := p.s.W()
	c := p.open
	if c == nil {
		c = &appendCmd{tag: p.s.Tag(), server: server, folder: d.Folder}
		w.WriteString(c.tag + " APPEND ")
		p.s.WriteMailbox(server)
	}
	w.WriteString(" (")
	for i, f := range flags {
		if i > 0 {
			w.WriteByte(' ')
		}
		w.WriteString(string(f))
	}
	w.WriteString(")")
	if !d.Date.IsZero() {
		w.WriteString(` "` + d.Date.Format(dateTimeLayout) + `"`)
	}
	w.WriteByte(' ')
	p.s.WriteLiteralHead(d.Size, d.Binary)
	bodyErr, werr := copyLiteral(w, body, d.Size)
	if werr != nil {
		// The connection failed under the literal.
		p.abandon(werr)
		return nil, imapconn.Wrap(ctx, fmt.Errorf("append to %q: %w", d.Folder, werr))
	}
	if bodyErr != nil {
		// The command must never end. Drop the session: the server
		// discards the unfinished command, and the messages already sent
		// in it have an unknown outcome.
		p.abandon(bodyErr)
		return nil, fmt.Errorf("append to %q: %w", d.Folder, bodyErr)
	}
	idx := c.n
	c.n++
	c.bytes += d.Size
	if !multi {
		if p.singles > 0 {
			p.singles--
		}
		w.WriteString("\r\n")
		p.sent = append(p.sent, c)
	} else {
		p.open = c
	}
	if err := p.s.Flush(); err != nil {
		p.abandon(err)
		return nil, imapconn.Wrap(ctx, fmt.Errorf("append to %q: %w", d.Folder, err))
	}
	return func() (string, error) { return p.result(ctx, c, idx, appendErr) }, nil
}

// dateTimeLayout is IMAP's date-time (RFC 3501), without the quotes.
const dateTimeLayout = "_2-Jan-2006 15:04:05 -0700"

// selectFolder ends the open command and SELECTs server (Dovecot keeps a
// selected folder open: storing into it is cheaper than into another).
func (p *appendPipe) selectFolder(ctx context.Context, server, folder string) error {
	if err := p.end(); err != nil {
		return imapconn.Wrap(ctx, fmt.Errorf("select %q: %w", folder, err))
	}
	c := &appendCmd{tag: p.s.Tag(), server: server, folder: folder, sel: true}
	p.s.W().WriteString(c.tag + " SELECT ")
	p.s.WriteMailbox(server)
	p.s.W().WriteString("\r\n")
	p.sent = append(p.sent, c)
	if err := p.wait(c); err != nil {
		return imapconn.Wrap(ctx, fmt.Errorf("select %q: %w", folder, err))
	}
	if err := c.st.Err(); err != nil {
		p.selected = ""
		return imapconn.Classify(fmt.Errorf("select %q: %w", folder, err))
	}
	p.selected = server
	if p.onSelect != nil {
		p.onSelect(server, c.validity, c.next)
	}
	return nil
}

// end finishes the open MULTIAPPEND command.
func (p *appendPipe) end() error {
	c := p.open
	if c == nil {
		return nil
	}
	p.open = nil
	p.s.W().WriteString("\r\n")
	p.sent = append(p.sent, c)
	if err := p.s.Flush(); err != nil {
		p.abandon(err)
		return err
	}
	return nil
}

// abandon drops the session: every command not answered has an unknown
// outcome.
func (p *appendPipe) abandon(err error) {
	p.s.Close(false)
	berr := p.s.Broken()
	if berr == nil {
		berr = err
	}
	for _, c := range p.sent {
		if !c.done {
			c.done, c.err = true, berr
		}
	}
	if p.open != nil {
		p.open.done, p.open.err = true, berr
		p.open = nil
	}
	p.sent = nil
}

// wait reads answers until c has its own.
func (p *appendPipe) wait(c *appendCmd) error {
	for !c.done {
		if len(p.sent) == 0 {
			return errors.New("internal error: waiting for a command that was not sent")
		}
		head := p.sent[0]
		st, err := p.s.Wait(head.tag, head.untagged)
		if err != nil {
			p.abandon(err)
			break
		}
		p.sent = p.sent[1:]
		head.done, head.st = true, st
		if st.Type == "OK" && st.Code == "APPENDUID" {
			head.validity, head.uids = parseAppendUID(st.Args, head.n)
		}
	}
	return c.err
}

// result is what became of message idx of command c.
func (p *appendPipe) result(ctx context.Context, c *appendCmd, idx int, appendErr func(error) error) (string, error) {
	if p.open == c {
		if err := p.end(); err != nil {
			return "", imapconn.Wrap(ctx, fmt.Errorf("append to %q: %w", c.folder, err))
		}
	}
	if !c.done {
		stop := p.s.CloseOnDone(ctx)
		err := p.wait(c)
		stop()
		if err != nil {
			return "", imapconn.Wrap(ctx, fmt.Errorf("append to %q: %w", c.folder, err))
		}
	}
	if c.err != nil {
		return "", imapconn.Wrap(ctx, fmt.Errorf("append to %q: %w", c.folder, c.err))
	}
	if err := c.st.Err(); err != nil {
		if c.n > 1 {
			// Over quota too: the batch may be too big for the room
			// left, while some of its messages still fit alone.
			// RFC 3502: a refused MULTIAPPEND stores none of its
			// messages (ErrNotStored). Which one the server minds is not
			// said: the next messages go alone, so that each gets its
			// own answer.
			p.singles = max(p.singles, 4*maxMulti)
			return "", failure.Mark(failure.Temporary, fmt.Errorf("append to %q: %w (a MULTIAPPEND of %d messages; each is sent again alone): %w", c.folder, target.ErrNotStored, c.n, err))
		}
		return "", appendErr(err)
	}
	if idx < len(c.uids) {
		return fmt.Sprintf("%d:%d", c.validity, c.uids[idx]), nil
	}
	return "", nil
}

// parseAppendUID reads "uidvalidity uid-set" (RFC 4315) into the UIDs of
// the n messages, in order; on anything unexpected it returns no UIDs (the
// receipts are then empty, which is allowed).
func parseAppendUID(args string, n int) (uint32, []imap.UID) {
	v, set, ok := strings.Cut(strings.TrimSpace(args), " ")
	if !ok {
		return 0, nil
	}
	validity, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, nil
	}
	var uids []imap.UID
	for _, part := range strings.Split(set, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err1 := strconv.ParseUint(lo, 10, 32)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 32)
		}
		if err1 != nil || err2 != nil || a == 0 || b == 0 {
			return 0, nil
		}
		if a > b {
			a, b = b, a
		}
		if b-a >= uint64(n) || len(uids)+int(b-a)+1 > n {
			return 0, nil
		}
		for u := a; u <= b; u++ {
			uids = append(uids, imap.UID(u))
		}
	}
	if len(uids) != n {
		return 0, nil
	}
	return uint32(validity), uids
}
