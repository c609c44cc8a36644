package imapconn

import (
	"context"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Names translates folder names between the canonical form (UTF-8,
// "/"-separated, "INBOX" for the inbox) and a server's (its hierarchy
// delimiter, its personal namespace prefix such as "INBOX.").
//
// A canonical name component that contains the server's delimiter cannot be
// stored as is: the delimiter is replaced by a look-alike (U+2024 "․" for
// ".", U+2215 "∕" for "/", "_" otherwise) and ToCanonical maps the
// look-alike "∕" back to "/". A server component containing "/" becomes
// "∕" in the canonical name, so a name never gains a hierarchy level.
type Names struct {
	Delim  rune   // 0: flat server (no hierarchy)
	Prefix string // personal namespace prefix, e.g. "INBOX." or ""
}

const (
	slashLookalike = "\u2215" // ∕
	dotLookalike   = "\u2024" // ․
)

// LoadNames asks the server for its personal namespace (NAMESPACE when
// offered) and its hierarchy delimiter (LIST "" "").
func LoadNames(ctx context.Context, c *imapclient.Client, cfg Config) (Names, error) {
	stop := Guard(ctx, c, cfg.timeout())
	defer stop()
	var n Names
	if c.Caps().Has(imap.CapNamespace) {
		ns, err := c.Namespace().Wait()
		if err != nil {
			return n, Wrap(ctx, fmt.Errorf("ask for the namespaces: %w", err))
		}
		if len(ns.Personal) > 0 {
			n.Prefix, n.Delim = ns.Personal[0].Prefix, ns.Personal[0].Delim
			return n, nil
		}
	}
	l, err := c.List("", "", nil).Collect()
	if err != nil {
		return n, Wrap(ctx, fmt.Errorf("ask for the hierarchy delimiter: %w", err))
	}
	if len(l) > 0 {
		n.Delim = l[0].Delim
	}
	return n, nil
}

func (n Names) delim() string {
	if n.Delim == 0 {
		return ""
	}
	return string(n.Delim)
}

// ToServer converts a canonical name to the server's form.
func (n Names) ToServer(canonical string) string {
	canonical = strings.Trim(canonical, "/")
	if strings.EqualFold(canonical, "INBOX") || canonical == "" {
		return "INBOX"
	}
	parts := strings.Split(canonical, "/")
	if strings.EqualFold(parts[0], "INBOX") {
		parts[0] = "INBOX"
	}
	d := n.delim()
	for i, p := range parts {
		if d != "/" {
			p = strings.ReplaceAll(p, slashLookalike, "/")
		}
		if d != "" && strings.Contains(p, d) {
			p = strings.ReplaceAll(p, d, lookalike(n.Delim))
		}
		parts[i] = p
	}
	if d == "" {
		d = "_"
	}
	name := strings.Join(parts, d)
	if n.Prefix != "" && !strings.HasPrefix(strings.ToUpper(name), strings.ToUpper(n.Prefix)) {
		// "INBOX/x" on a server whose prefix is "INBOX.": children of the
		// inbox are the personal namespace.
		name = n.Prefix + name
	}
	return name
}

func lookalike(d rune) string {
	switch d {
	case '.':
		return dotLookalike
	case '/':
		return slashLookalike
	}
	return "_"
}

// ToCanonical converts a server name to the canonical form. ok is false
// for names outside the personal namespace (shared, other users).
func (n Names) ToCanonical(server string) (name string, ok bool) {
	if strings.EqualFold(server, "INBOX") {
		return "INBOX", true
	}
	if n.Prefix != "" {
		if len(server) < len(n.Prefix) || !strings.EqualFold(server[:len(n.Prefix)], n.Prefix) {
			return "", false
		}
		server = server[len(n.Prefix):]
		if server == "" {
			return "", false
		}
	}
	d := n.delim()
	var parts []string
	if d == "" {
		parts = []string{server}
	} else {
		parts = strings.Split(server, d)
	}
	for i, p := range parts {
		if d != "/" {
			p = strings.ReplaceAll(p, "/", slashLookalike)
		}
		parts[i] = p
	}
	if strings.EqualFold(parts[0], "INBOX") {
		parts[0] = "INBOX"
	}
	return strings.Join(parts, "/"), true
}

// SpecialUse returns the RFC 6154 attribute among attrs, or "".
func SpecialUse(attrs []imap.MailboxAttr) string {
	for _, a := range attrs {
		switch a {
		case imap.MailboxAttrAll, imap.MailboxAttrArchive, imap.MailboxAttrDrafts, imap.MailboxAttrFlagged,
			imap.MailboxAttrJunk, imap.MailboxAttrSent, imap.MailboxAttrTrash, imap.MailboxAttrImportant:
			return string(a)
		}
	}
	return ""
}

// Selectable reports whether a LIST entry can be selected.
func Selectable(attrs []imap.MailboxAttr) bool {
	for _, a := range attrs {
		if strings.EqualFold(string(a), string(imap.MailboxAttrNoSelect)) || strings.EqualFold(string(a), string(imap.MailboxAttrNonExistent)) {
			return false
		}
	}
	return true
}

// ListOptions returns LIST options asking for special-use attributes when
// the server supports them (nil otherwise).
func ListOptions(c *imapclient.Client) *imap.ListOptions {
	if c.Caps().Has(imap.CapSpecialUse) {
		return &imap.ListOptions{ReturnSpecialUse: true}
	}
	return nil
}
