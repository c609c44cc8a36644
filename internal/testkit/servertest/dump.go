package servertest

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
)

// Dump reads every message of every selectable folder of a logged-in
// session (read-only, in UID order, INBOX first, the rest by name) as the
// tests' oracle; canonical turns a server folder name into mailferry's
// canonical one. It logs out at the end.
func Dump(c *imapclient.Client, canonical func(name string, delim rune) string) ([]corpus.Message, error) {
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
		boxes = append(boxes, box{l.Mailbox, canonical(l.Mailbox, l.Delim)})
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
