package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/source"
)

var _ source.SkipLister = (*Source)(nil)

// Skipped returns the folders the last Folders call left out, with why.
func (s *Source) Skipped() []source.Skip { return append([]source.Skip(nil), s.skipped...) }

// skipReason says why a LIST entry is not offered for copying, or "".
// canonical is its canonical name when ok.
func (s *Source) skipReason(ns imapconn.Namespaces, d *imap.ListData) (name, reason string) {
	display := strings.ReplaceAll(d.Mailbox, string(d.Delim), "/")
	if d.Delim == 0 || d.Delim == '/' {
		display = d.Mailbox
	}
	if why := ns.Outside(d.Mailbox); why != "" {
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
