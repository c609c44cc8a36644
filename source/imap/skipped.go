package imap

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"

	"mailferry/internal/imapconn"
	"mailferry/source"
)

var _ source.SkipLister = (*Source)(nil)

// Skipped returns the folders the last Folders call left out, with why.
func (s *Source) Skipped() []source.Skip { return append([]source.Skip(nil), s.skipped...) }

// namespaces are the prefixes of a server's NAMESPACE response (RFC 2342).
type namespaces struct {
	personal, other, shared []imap.NamespaceDescriptor
}

func newNamespaces(ns *imap.NamespaceData) namespaces {
	if ns == nil {
		return namespaces{}
	}
	return namespaces{ns.Personal, ns.Other, ns.Shared}
}

// outside returns why a server folder name is not the user's own (another
// user's, shared) or "". A name belongs to the namespace with the longest
// prefix it starts with (Cyrus: personal "INBOX.", shared ""); a
// namespace's root ("Other Users") belongs to it too.
func (n namespaces) outside(mailbox string) string {
	if strings.EqualFold(mailbox, "INBOX") {
		return ""
	}
	best, why := -1, ""
	try := func(l []imap.NamespaceDescriptor, reason string) {
		for _, d := range l {
			p := d.Prefix
			root := p
			if d.Delim != 0 {
				root = strings.TrimSuffix(p, string(d.Delim))
			}
			match := len(mailbox) >= len(p) && strings.EqualFold(mailbox[:len(p)], p) ||
				root != "" && strings.EqualFold(mailbox, root)
			if match && len(p) > best {
				best, why = len(p), ""
				if reason != "" {
					why = fmt.Sprintf(reason, p)
				}
			}
		}
	}
	try(n.personal, "")
	try(n.other, "another user's folder (namespace %q): not copied")
	try(n.shared, "shared folder (namespace %q): not copied")
	return why
}

// skipReason says why a LIST entry is not offered for copying, or "".
// canonical is its canonical name when ok.
func (s *Source) skipReason(ns namespaces, d *imap.ListData) (name, reason string) {
	display := strings.ReplaceAll(d.Mailbox, string(d.Delim), "/")
	if d.Delim == 0 || d.Delim == '/' {
		display = d.Mailbox
	}
	if why := ns.outside(d.Mailbox); why != "" {
		return display, why
	}
	name, ok := s.names.ToCanonical(d.Mailbox)
	if !ok {
		return display, "outside the personal namespace: not copied"
	}
	for _, a := range d.Attrs {
		switch {
		case strings.EqualFold(string(a), string(imap.MailboxAttrNoSelect)):
			return name, `cannot be opened (\Noselect): holds only folders, no messages`
		case strings.EqualFold(string(a), string(imap.MailboxAttrNonExistent)):
			return name, `does not exist (\NonExistent): holds only folders, no messages`
		}
	}
	if !imapconn.Selectable(d.Attrs) {
		return name, "cannot be opened"
	}
	return name, ""
}
