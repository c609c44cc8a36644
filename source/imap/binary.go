package imap

// NUL bytes under BODY[]: Dovecot stores a message's NUL bytes exactly but
// serves each as 0x80 under BODY[] (and BODY.PEEK[]); BINARY.PEEK[] (RFC
// 3516) gives the stored bytes of an unencoded message. BINARY[] decodes
// the transfer encodings of parts and may rewrite headers, so it is never
// how a message is read: it only restores NULs, and only where it agrees
// with BODY[] everywhere else.
//
// So, on a server that announces BINARY, every body is held (in memory up
// to holdMem, else in a temporary file) before fn gets it; one holding a
// 0x80 octet goes to disk and waits for the end of its chunk's FETCH, then
// its BINARY.PEEK[] is fetched and used if it has the same length and
// differs only by 0x00 where BODY[] has 0x80. Bodies without 0x80 cost no
// second fetch.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/source"
)

// holdMem is the largest body held in memory; larger ones go to disk.
const holdMem = 1 << 20

// held is a body read in full: in mem, or in file (size octets).
type held struct {
	mem   []byte
	file  *os.File
	size  int64
	has80 bool // holds a 0x80 octet
}

// hold reads r (a whole literal, announced as size octets) into a held.
func hold(r io.Reader, size int64) (*held, error) {
	h := &held{}
	if size <= holdMem {
		b, err := io.ReadAll(io.LimitReader(r, holdMem+1))
		h.mem, h.size = b, int64(len(b))
		if err != nil {
			return nil, err
		}
		if h.size <= holdMem {
			h.has80 = bytes.IndexByte(b, 0x80) >= 0
			return h, nil
		}
		// Longer than announced: the literal reader would not allow it,
		// but a file keeps memory bounded whatever happens.
	}
	if err := h.toFile(); err != nil {
		return nil, err
	}
	n, err := io.Copy(h.file, &scan80{r: r, has80: &h.has80})
	h.size += n
	if err != nil {
		h.close()
		return nil, fmt.Errorf("spool a message body: %w", err)
	}
	return h, nil
}

// scan80 notes whether a 0x80 octet passed through.
type scan80 struct {
	r     io.Reader
	has80 *bool
}

func (s *scan80) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if !*s.has80 && bytes.IndexByte(p[:n], 0x80) >= 0 {
		*s.has80 = true
	}
	return n, err
}

// toFile moves a body held in memory to a temporary file.
func (h *held) toFile() error {
	if h.file != nil {
		return nil
	}
	f, err := os.CreateTemp("", "mailferry-imap-*")
	if err != nil {
		return fmt.Errorf("spool a message body: %w", err)
	}
	if _, err := f.Write(h.mem); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("spool a message body: %w", err)
	}
	h.file, h.mem = f, nil
	return nil
}

// reader reads the body from its start.
func (h *held) reader() (io.Reader, error) {
	if h.file == nil {
		return bytes.NewReader(h.mem), nil
	}
	if _, err := h.file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind a spooled message body: %w", err)
	}
	return io.LimitReader(h.file, h.size), nil
}

func (h *held) close() {
	if h != nil && h.file != nil {
		h.file.Close()
		os.Remove(h.file.Name())
		h.file = nil
	}
}

// pending is a body with 0x80 octets waiting for its BINARY.PEEK[].
type pending struct {
	seq  uint32
	uid  imap.UID
	meta source.Meta
	body *held
}

// deliverPending restores the NULs of the pending bodies where BINARY.PEEK[]
// allows it and calls fn for each, in order.
func (s *Source) deliverPending(ctx context.Context, folder string, ps []*pending, fn func(source.Meta, io.Reader) error) error {
	if len(ps) == 0 {
		return nil
	}
	fixed, err := s.binaries(ctx, folder, ps)
	defer func() {
		for _, h := range fixed {
			h.close()
		}
	}()
	if err != nil {
		return err
	}
	for i, p := range ps {
		h := p.body
		if fixed[i] != nil {
			h = fixed[i]
		}
		r, err := h.reader()
		if err != nil {
			return err
		}
		if err := fn(p.meta, r); err != nil {
			return fnError{err}
		}
	}
	return nil
}

// binaries fetches BINARY.PEEK[] of ps in one command and returns, for
// each, its body with NULs restored (nil: keep the body as it is). The
// FETCH that found them is over and the folder is still selected: no
// command since could expunge, so their sequence numbers still hold (and
// the UIDs are checked anyway). A server that refuses the command (NO: a
// part it cannot decode) is asked again message by message.
func (s *Source) binaries(ctx context.Context, folder string, ps []*pending) ([]*held, error) {
	out := make([]*held, len(ps))
	fail := func(err error) ([]*held, error) {
		for _, h := range out {
			h.close()
		}
		return nil, err
	}
	c := s.c
	if c == nil {
		return fail(fmt.Errorf("restore NUL octets of messages of %q: the connection is gone", folder))
	}
	stop := imapconn.CloseOnDone(ctx, c)
	defer stop()
	bySeq := map[uint32]int{}
	var set imap.SeqSet
	for i, p := range ps {
		bySeq[p.seq] = i
		set.AddNum(p.seq)
	}
	why := make([]string, len(ps))
	same := make([]bool, len(ps))
	uids := make([]imap.UID, len(ps))
	sec := &imap.FetchItemBinarySection{Peek: true}
	cmd := c.Fetch(set, &imap.FetchOptions{UID: true, BinarySection: []*imap.FetchItemBinarySection{sec}})
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		i, ok := bySeq[m.SeqNum]
		if !ok {
			continue
		}
		p := ps[i]
		for it := m.Next(); it != nil; it = m.Next() {
			switch it := it.(type) {
			case imapclient.FetchItemDataUID:
				uids[i] = it.UID
			case imapclient.FetchItemDataBinarySection:
				if it.Literal == nil || out[i] != nil || same[i] || why[i] != "" {
					continue
				}
				if it.Literal.Size() > 2*p.body.size+1<<20 {
					// Not read: the connection is dropped (as for BODY[]).
					abort(c, cmd, false)
					s.drop()
					return fail(failure.Mark(failure.Message, fmt.Errorf("imap %s announced a BINARY[] of %d octets for message UID %d of %q whose BODY[] has %d; refusing it (broken or hostile server)",
						s.cfg.Addr, it.Literal.Size(), p.uid, folder, p.body.size)))
				}
				if it.Literal.Size() != p.body.size {
					why[i] = fmt.Sprintf("BINARY[] has %d octets, BODY[] %d", it.Literal.Size(), p.body.size)
					continue
				}
				lit := imapconn.NewFullLiteral(it.Literal, it.Literal.Size(), func() string {
					return fmt.Sprintf("BINARY[] of message UID %d of %q", p.uid, folder)
				})
				h, reason, err := onlyNULs(p.body, lit)
				if err != nil {
					abort(c, cmd, true)
					s.drop()
					return fail(imapconn.Wrap(ctx, err))
				}
				out[i], why[i], same[i] = h, reason, h == nil && reason == ""
			}
		}
	}
	if err := cmd.Close(); err != nil {
		if !imapconn.IsNo(err) {
			s.drop()
			return fail(imapconn.Wrap(ctx, fmt.Errorf("fetch BINARY[] of messages of %q: %w", folder, err)))
		}
		for i, p := range ps {
			if out[i] != nil || same[i] || why[i] != "" {
				continue
			}
			if len(ps) == 1 {
				why[i] = "the server refused BINARY[]: " + err.Error()
				continue
			}
			one, err := s.binaries(ctx, folder, []*pending{p})
			if err != nil {
				return fail(err)
			}
			out[i], same[i] = one[0], one[0] == nil
			uids[i], why[i] = p.uid, "-" // answered (and warned) alone
		}
	}
	for i, p := range ps {
		if (out[i] != nil || same[i]) && uids[i] != p.uid {
			out[i].close()
			out[i], same[i], why[i] = nil, false, fmt.Sprintf("the answer was for UID %d", uids[i])
		}
		if out[i] == nil && !same[i] && why[i] == "" {
			why[i] = "no BINARY[] in the answer"
		}
		if out[i] == nil && !same[i] && why[i] != "-" {
			s.cfg.Log().Warn("IMAP source: a message's 0x80 octets may stand for NUL octets the server would not give back; copied as served under BODY[]",
				"folder", folder, "uid", p.uid, "why", why[i])
		}
	}
	return out, nil
}

// onlyNULs reads bin, as long as body, and compares: it returns bin when it
// differs from body only by 0x00 where body has 0x80; nil and "" when they
// are the same; else nil and why.
func onlyNULs(body *held, bin io.Reader) (*held, string, error) {
	if body.file == nil {
		b := make([]byte, body.size)
		if _, err := io.ReadFull(bin, b); err != nil {
			return nil, "", err
		}
		if _, err := io.Copy(io.Discard, bin); err != nil {
			return nil, "", err
		}
		if why := nulsFor80(body.mem, b, 0); why != "" {
			return nil, why, nil
		}
		if bytes.Equal(body.mem, b) {
			return nil, "", nil
		}
		return &held{mem: b, size: body.size}, "", nil
	}
	br, err := body.reader()
	if err != nil {
		return nil, "", err
	}
	out := &held{}
	if err := out.toFile(); err != nil {
		return nil, "", err
	}
	a := make([]byte, 32<<10)
	b := make([]byte, len(a))
	var off int64
	reason := ""
	for {
		n, rerr := io.ReadFull(bin, b)
		if n > 0 && reason == "" {
			if _, err := io.ReadFull(br, a[:n]); err != nil {
				out.close()
				return nil, "", fmt.Errorf("read back a spooled message body: %w", err)
			}
			if reason = nulsFor80(a[:n], b[:n], off); reason == "" {
				if _, err := out.file.Write(b[:n]); err != nil {
					out.close()
					return nil, "", fmt.Errorf("spool a message body: %w", err)
				}
				out.size += int64(n)
			}
		}
		off += int64(n)
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break // in order: fullLiteral reports a short literal itself
		}
		if rerr != nil {
			out.close()
			return nil, "", rerr
		}
	}
	if reason != "" || out.size != body.size {
		out.close()
		return nil, reason, nil
	}
	return out, "", nil
}

// nulsFor80 says why bin is not body with some 0x80 turned into 0x00 ("":
// it is), off being their offset in the message.
func nulsFor80(body, bin []byte, off int64) string {
	for i := range body {
		if body[i] != bin[i] && (body[i] != 0x80 || bin[i] != 0) {
			return fmt.Sprintf("BINARY[] differs from BODY[] at octet %d (%#02x, not NUL for 0x80)", off+int64(i), bin[i])
		}
	}
	return ""
}
