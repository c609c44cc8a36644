package pop3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mailferry/mailferry/internal/message"
	"github.com/mailferry/mailferry/internal/pop3conn"
	"github.com/mailferry/mailferry/source"
)

// Source is a source.Source (and source.Deleter) over one POP3 session. It
// presents one folder, cfg.Folder ("INBOX" by default).
//
// Message IDs are the UIDLs. When the server has no UIDL command, the ID
// is "sha256:" + hex(SHA-256(header bytes from TOP n 0, then "\x00" and
// the size in decimal)); a second message with the same headers and size
// gets the suffix "#2", a third "#3", in message-number order.
type Source struct {
	c      *Client
	cfg    Config
	metas  []source.Meta // cached listing of this session
	num    map[string]int
	listed bool
	gone   map[string]bool // DELE'd in this session
}

var (
	_ source.Source           = (*Source)(nil)
	_ source.Deleter          = (*Source)(nil)
	_ source.Identifier       = (*Source)(nil)
	_ source.CapabilityLister = (*Source)(nil)
)

// Open dials and logs in.
func Open(ctx context.Context, cfg Config) (*Source, error) {
	if cfg.Folder == "" {
		cfg.Folder = "INBOX"
	}
	c, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Source{c: c, cfg: cfg, gone: map[string]bool{}}, nil
}

// Client returns the session's low-level client.
func (s *Source) Client() *Client { return s.c }

// Features declares what a POP3 source can do: one folder, no flags, no
// dates.
func (s *Source) Features() source.Features {
	return source.Features{Delete: true, Identities: true, Capabilities: true}
}

// Capabilities lists what matters of the server's CAPA, sorted.
func (s *Source) Capabilities(ctx context.Context) ([]string, error) {
	if s.c == nil {
		return nil, errors.New("pop3: no session")
	}
	var out []string
	for k, v := range s.c.Capabilities() {
		switch k {
		case "PIPELINING", "UIDL", "TOP", "RESP-CODES", "AUTH-RESP-CODE", "SASL", "STLS", "USER", "EXPIRE", "LOGIN-DELAY":
			if len(v) > 0 {
				k += " " + strings.Join(v, " ")
			}
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Folders returns the one folder.
func (s *Source) Folders(ctx context.Context) ([]source.Folder, error) {
	return []source.Folder{{Name: s.cfg.Folder}}, nil
}

// List returns the messages in message-number order. POP3 has neither
// flags nor dates.
func (s *Source) List(ctx context.Context, f source.Folder) ([]source.Meta, error) {
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	out := make([]source.Meta, 0, len(s.metas))
	for _, m := range s.metas {
		if !s.gone[m.ID] {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *Source) load(ctx context.Context) error {
	if s.listed {
		return nil
	}
	sizes, err := s.c.List(ctx)
	if err != nil {
		return fmt.Errorf("list messages: %w", err)
	}
	ids := map[int]string{}
	useUIDL := s.c.HasCapability("UIDL") || !s.c.CapaKnown()
	if useUIDL {
		uidl, err := s.c.UIDL(ctx)
		if e, ok := pop3conn.AsError(err); ok && !s.c.HasCapability("UIDL") && e.Code == "" {
			useUIDL = false // no CAPA and no UIDL: fall back to hashing
		} else if err != nil {
			return fmt.Errorf("list unique ids: %w", err)
		}
		for _, u := range uidl {
			ids[u.Num] = u.UID
		}
	}
	if !useUIDL {
		ids, err = s.hashIDs(ctx, sizes)
		if err != nil {
			return err
		}
	}
	s.metas = make([]source.Meta, 0, len(sizes))
	s.num = make(map[string]int, len(sizes))
	for _, m := range sizes {
		id, ok := ids[m.Num]
		if !ok {
			return s.c.ProtoErr("UIDL", fmt.Sprintf("no unique id for message %d", m.Num))
		}
		if _, dup := s.num[id]; dup {
			return s.c.ProtoErr("UIDL", fmt.Sprintf("unique id %q used twice", id))
		}
		s.num[id] = m.Num
		s.metas = append(s.metas, source.Meta{ID: id, Size: m.Size})
	}
	s.listed = true
	return nil
}

// hashIDs derives IDs from TOP n 0 for a server without UIDL.
func (s *Source) hashIDs(ctx context.Context, sizes []MsgSize) (map[int]string, error) {
	cmds := make([]string, len(sizes))
	for i, m := range sizes {
		cmds[i] = fmt.Sprintf("TOP %d 0", m.Num)
	}
	ids := make(map[int]string, len(sizes))
	seen := map[string]int{}
	err := s.c.Pipeline(ctx, cmds, func(i int, r io.Reader, e *Error) error {
		if e != nil {
			return fmt.Errorf("read headers for a key (the server has no UIDL): %w", pop3conn.CmdError(s.c.Addr(), e))
		}
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			return err
		}
		h.Write([]byte("\x00" + strconv.FormatInt(sizes[i].Size, 10)))
		id := "sha256:" + hex.EncodeToString(h.Sum(nil))
		seen[id]++
		if n := seen[id]; n > 1 {
			id += "#" + strconv.Itoa(n)
		}
		ids[sizes[i].Num] = id
		return nil
	})
	return ids, err
}

// Fetch streams the messages ids in the given order. IDs that are not on
// the server (or were deleted in this session) are reported at the end
// with a *source.VanishedError.
func (s *Source) Fetch(ctx context.Context, f source.Folder, ids []string, fn func(source.Meta, io.Reader) error) error {
	if err := s.load(ctx); err != nil {
		return err
	}
	var vanished []string
	var want []source.Meta
	var cmds []string
	for _, id := range ids {
		n, ok := s.num[id]
		if !ok || s.gone[id] {
			vanished = append(vanished, id)
			continue
		}
		want = append(want, s.metas[s.index(n)])
		cmds = append(cmds, "RETR "+strconv.Itoa(n))
	}
	err := s.c.Pipeline(ctx, cmds, func(i int, r io.Reader, e *Error) error {
		if e != nil {
			if e.Code == "" && looksGone(e.Text) {
				vanished = append(vanished, want[i].ID)
				return nil
			}
			return fmt.Errorf("fetch message %s: %w", want[i].ID, pop3conn.CmdError(s.c.Addr(), e))
		}
		return fn(want[i], r)
	})
	if err != nil {
		return err
	}
	if len(vanished) > 0 {
		return &source.VanishedError{Folder: f.Name, IDs: vanished}
	}
	return nil
}

// Identities gives the Identity of every listed message, in List's order,
// from TOP n 0 (pipelined when the server offers PIPELINING; RETR when its
// CAPA lacks TOP). Date is what the engine stores for a POP3 message, from
// the same Scanner method: the newest Received date, else the Date header,
// else zero. Messages the server says are gone are skipped.
func (s *Source) Identities(ctx context.Context, f source.Folder, fn func(source.Identity) error) error {
	if err := s.load(ctx); err != nil {
		return err
	}
	verb := "TOP %d 0"
	if s.c.CapaKnown() && !s.c.HasCapability("TOP") {
		verb = "RETR %d"
	}
	var want []source.Meta
	var cmds []string
	for _, m := range s.metas {
		if s.gone[m.ID] {
			continue
		}
		want = append(want, m)
		cmds = append(cmds, fmt.Sprintf(verb, s.num[m.ID]))
	}
	return s.c.Pipeline(ctx, cmds, func(i int, r io.Reader, e *Error) error {
		if e != nil {
			if e.Code == "" && looksGone(e.Text) {
				return nil
			}
			return fmt.Errorf("read the headers of message %s: %w", want[i].ID, pop3conn.CmdError(s.c.Addr(), e))
		}
		// The Scanner keeps only the header section (TOP n 0 sends just
		// that and the blank line).
		var sc message.Scanner
		if _, err := io.Copy(&sc, r); err != nil {
			return err
		}
		return fn(source.Identity{ID: want[i].ID, MessageID: sc.MessageID(), Date: sc.InternalDate(time.Time{}), Size: want[i].Size})
	})
}

// index returns the position of message number n in s.metas.
func (s *Source) index(n int) int {
	// Message numbers are 1..count in LIST order on every server we know;
	// fall back to a search when that does not hold.
	if n-1 < len(s.metas) && s.num[s.metas[n-1].ID] == n {
		return n - 1
	}
	for i, m := range s.metas {
		if s.num[m.ID] == n {
			return i
		}
	}
	return -1
}

// looksGone tells whether a RETR refusal means the message is not there.
func looksGone(text string) bool {
	t := strings.ToLower(text)
	for _, w := range []string{"no such message", "deleted", "expunged", "there's no message", "no message", "invalid message"} {
		if strings.Contains(t, w) {
			return true
		}
	}
	return false
}

// Delete marks the messages for deletion; the server deletes them when the
// session ends with Close (QUIT). IDs not on the server are ignored.
func (s *Source) Delete(ctx context.Context, f source.Folder, ids []string) error {
	if err := s.load(ctx); err != nil {
		return err
	}
	for _, id := range ids {
		n, ok := s.num[id]
		if !ok || s.gone[id] {
			continue
		}
		if err := s.c.Dele(ctx, n); err != nil {
			return fmt.Errorf("delete message %s: %w", id, err)
		}
		s.gone[id] = true
	}
	return nil
}

// Close ends the session with QUIT, which commits deletions. An error
// means deletions were pending and may not have been committed; without
// pending deletions a failed QUIT is not an error.
func (s *Source) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.c.Timeout())
	defer cancel()
	err := s.c.Quit(ctx)
	if len(s.gone) == 0 {
		return nil
	}
	return err
}
