package cyrustest

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailferry/internal/corpus"
)

// Load appends msgs as user, in order (UIDs follow it within each folder),
// with their flags and dates, creating and subscribing the folders. Cyrus
// refuses bare LF and NUL and turns 8-bit header bytes into X (or refuses
// them with Options.Reject8Bit): Load fails on a refusal.
func (s *Server) Load(tb testing.TB, user string, msgs []corpus.Message) {
	tb.Helper()
	if err := s.load(user, msgs); err != nil {
		tb.Fatalf("cyrustest: load %s: %v", user, err)
	}
}

func (s *Server) load(user string, msgs []corpus.Message) error {
	c, err := s.Login(user)
	if err != nil {
		return err
	}
	defer c.Close()
	made := map[string]bool{"INBOX": true}
	for _, m := range msgs {
		name := s.IMAPName(m.Folder)
		if !made[name] {
			// Parents first: Cyrus does not create them implicitly.
			parts := strings.Split(m.Folder, "/")
			for i := range parts {
				p := s.IMAPName(strings.Join(parts[:i+1], "/"))
				if made[p] {
					continue
				}
				if err := c.Create(p, nil).Wait(); err != nil {
					return fmt.Errorf("create %q: %w", p, err)
				}
				if err := c.Subscribe(p).Wait(); err != nil {
					return fmt.Errorf("subscribe %q: %w", p, err)
				}
				made[p] = true
			}
		}
		if err := appendMsg(c, name, m); err != nil {
			return err
		}
	}
	return c.Logout().Wait()
}

func appendMsg(c *imapclient.Client, mailbox string, m corpus.Message) error {
	var flags []imap.Flag
	for _, f := range m.Flags {
		if !strings.EqualFold(f, `\Recent`) {
			flags = append(flags, imap.Flag(f))
		}
	}
	cmd := c.Append(mailbox, int64(len(m.Body)), &imap.AppendOptions{Flags: flags, Time: m.Date})
	if _, err := cmd.Write(m.Body); err != nil {
		return fmt.Errorf("append to %q: %w", mailbox, err)
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("append to %q: %w", mailbox, err)
	}
	if _, err := cmd.Wait(); err != nil {
		return fmt.Errorf("append to %q: %w", mailbox, err)
	}
	return nil
}

// Dump reads every message of every selectable folder of user over IMAP:
// BODY.PEEK[] bytes, FLAGS without \Recent, INTERNALDATE, and the canonical
// folder name ("/"-separated, without the namespace prefix). Folders come
// INBOX first, then sorted; messages in UID order. It is the test oracle of
// Cyrus targets, like dovecottest's Dump.
func (s *Server) Dump(tb testing.TB, user string) []corpus.Message {
	tb.Helper()
	msgs, err := s.dump(user)
	if err != nil {
		tb.Fatalf("cyrustest: dump %s over IMAP: %v", user, err)
	}
	return msgs
}

func (s *Server) dump(user string) ([]corpus.Message, error) {
	c, err := s.Login(user)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	type box struct{ imapName, name string }
	var boxes []box
	for _, l := range list {
		if slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) || slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		boxes = append(boxes, box{l.Mailbox, s.canonical(l.Mailbox, l.Delim)})
	}
	sort.Slice(boxes, func(i, j int) bool {
		a, b := boxes[i].name, boxes[j].name
		if (a == "INBOX") != (b == "INBOX") {
			return a == "INBOX"
		}
		return a < b
	})
	var out []corpus.Message
	for _, b := range boxes {
		sel, err := c.Select(b.imapName, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return nil, fmt.Errorf("select %q: %w", b.imapName, err)
		}
		if sel.NumMessages == 0 {
			continue
		}
		var seq imap.SeqSet
		seq.AddRange(1, sel.NumMessages)
		section := &imap.FetchItemBodySection{Peek: true}
		cmd := c.Fetch(seq, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{section}})
		type got struct {
			uid imap.UID
			m   corpus.Message
		}
		var msgs []got
		for {
			md := cmd.Next()
			if md == nil {
				break
			}
			buf, err := md.Collect()
			if err != nil {
				cmd.Close()
				return nil, fmt.Errorf("fetch from %q: %w", b.imapName, err)
			}
			body := buf.FindBodySection(section)
			if body == nil {
				cmd.Close()
				return nil, fmt.Errorf("fetch from %q: message %d came without its body", b.imapName, buf.SeqNum)
			}
			var flags []string
			for _, f := range buf.Flags {
				if !strings.EqualFold(string(f), `\Recent`) {
					flags = append(flags, string(f))
				}
			}
			msgs = append(msgs, got{buf.UID, corpus.Message{Folder: b.name, Body: bytes.Clone(body), Flags: flags, Date: buf.InternalDate, MessageID: corpus.MessageIDOf(body)}})
		}
		if err := cmd.Close(); err != nil {
			return nil, fmt.Errorf("fetch from %q: %w", b.imapName, err)
		}
		if len(msgs) != int(sel.NumMessages) {
			return nil, fmt.Errorf("fetch from %q: got %d of %d messages", b.imapName, len(msgs), sel.NumMessages)
		}
		sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].uid < msgs[j].uid })
		for _, g := range msgs {
			out = append(out, g.m)
		}
	}
	if err := c.Logout().Wait(); err != nil {
		return nil, fmt.Errorf("logout: %w", err)
	}
	return out, nil
}

// Unchanged keeps the messages Cyrus stores byte for byte: no NUL, no bare
// CR or LF, no 8-bit byte in the header.
func Unchanged(msgs []corpus.Message) []corpus.Message {
	var out []corpus.Message
	for _, m := range msgs {
		if StoresUnchanged(m.Body) {
			out = append(out, m)
		}
	}
	return out
}

// StoresUnchanged reports whether Cyrus keeps body as it is.
func StoresUnchanged(body []byte) bool {
	if bytes.IndexByte(body, 0) >= 0 {
		return false
	}
	for i, c := range body {
		if c == '\n' && (i == 0 || body[i-1] != '\r') || c == '\r' && (i+1 == len(body) || body[i+1] != '\n') {
			return false
		}
	}
	head := body
	if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
		head = body[:i]
	}
	for _, c := range head {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
