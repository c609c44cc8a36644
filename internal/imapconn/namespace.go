package imapconn

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Namespaces are the prefixes of a server's NAMESPACE response (RFC 2342),
// to tell the user's own folders from other users' and shared ones (which
// mailferry neither copies from a source nor maps onto in a target).
type Namespaces struct {
	personal, other, shared []imap.NamespaceDescriptor
}

// AskNamespaces asks for the namespaces when the server offers NAMESPACE;
// without it (or on a NO) every folder counts as the user's own.
func AskNamespaces(c *imapclient.Client) (Namespaces, error) {
	if !c.Caps().Has(imap.CapNamespace) {
		return Namespaces{}, nil
	}
	ns, err := c.Namespace().Wait()
	if err != nil {
		if IsNo(err) {
			return Namespaces{}, nil
		}
		return Namespaces{}, fmt.Errorf("ask for the namespaces: %w", err)
	}
	if ns == nil {
		return Namespaces{}, nil
	}
	return Namespaces{ns.Personal, ns.Other, ns.Shared}, nil
}

// Outside returns why a server folder name is not the user's own (another
// user's, shared) or "". A name belongs to the namespace with the longest
// prefix it starts with (Cyrus: personal "INBOX.", shared ""); a
// namespace's root ("Other Users") belongs to it too.
func (n Namespaces) Outside(mailbox string) string {
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
