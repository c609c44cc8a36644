// Package mailbox holds the types that sources, targets and the engine
// share: a folder and a message's metadata. It imports nothing of the
// project, so that neither source nor target has to import the other.
package mailbox

import (
	"errors"
	"time"
)

// Folder is one mailbox of a source or a target.
type Folder struct {
	// Name is the folder's name in UTF-8 with "/" as the hierarchy
	// separator whatever the server uses, and "INBOX" for the inbox.
	Name string
	// SpecialUse is the RFC 6154 attribute (`\Sent`, `\Drafts`, `\Trash`,
	// `\Junk`, `\Archive`, `\All`, `\Flagged`, `\Important`) or "".
	SpecialUse string
	// Validity is the IMAP UIDVALIDITY (or any value that changes when the
	// IDs of the folder are reassigned); 0 when the source has none.
	Validity uint32
	// Messages is how many messages the folder held when it was listed
	// (IMAP STATUS), for progress estimates only; 0 when unknown.
	Messages int
}

// ErrSingleSession is returned (wrapped) when a server refuses a second
// concurrent session (POP3 [IN-USE]); the engine then falls back to one.
// It is source.ErrSingleSession; it lives here so that protocol clients
// can return it without importing source.
var ErrSingleSession = errors.New("server allows only one session at a time")

// Meta describes one message without its body.
type Meta struct {
	// ID is the message's stable key inside its folder and validity:
	// the POP3 UIDL, the IMAP UID in decimal, the Maildir unique name.
	ID string
	// Size is the number of octets the source will deliver (0 if unknown).
	Size int64
	// Flags are IMAP-style flags: `\Seen`, `\Answered`, `\Flagged`,
	// `\Draft`, `\Deleted` and keywords. POP3 has none.
	Flags []string
	// Received is the internal date; zero when the source has none (POP3),
	// in which case the engine derives it from the headers.
	Received time.Time
}
