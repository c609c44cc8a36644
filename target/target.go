// Package target defines what mailferry writes mail to: the Target interface
// and the Delivery description. The concrete targets live in target/imap and
// target/maildir.
package target

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/mailferry/mailferry/internal/mailbox"
)

// Delivery describes one message to be stored, separately from its bytes.
type Delivery struct {
	// Folder is the target folder's canonical name: UTF-8, "/"-separated,
	// "INBOX" for the inbox, as returned by Ensure.
	Folder string
	// Flags in IMAP form (`\Seen`, ..., keywords).
	Flags []string
	// Date is the internal date to keep (IMAP APPEND date, Maildir mtime).
	Date time.Time
	// Size is the exact number of bytes the body reader will yield.
	Size int64
	// Fingerprint identifies the bytes, for Find.
	Fingerprint Fingerprint
	// Name is a unique name planned by the engine before the first byte is
	// sent (recorded in the journal's intent). Maildir uses it as the
	// file's unique part so that Find can look for it; IMAP ignores it.
	Name string
	// Taken, when set, tells Find that a stored message already stands for
	// another source message (its receipt is in the journal), so that two
	// byte-identical source messages are never both settled by one copy.
	Taken func(receipt string) bool
	// Mark is what Marker.Mark said about Folder before this store began
	// ("" when unknown). Find then looks only at messages that arrived
	// after it, and may recognise a copy the server rewrote on the way in
	// (by Message-ID, internal date and size) instead of by its bytes.
	Mark string
	// Binary says that the body holds NUL bytes. A target that implements
	// BinaryAppender then stores them as they are (IMAP: a literal8).
	Binary bool
}

// Fingerprint identifies a message's content.
type Fingerprint struct {
	MessageID string   // the Message-ID header value (with <>), "" if none
	Size      int64    // octets as stored in the target
	SHA256    [32]byte // of those octets
}

// Target stores mail. A Target is one session: not safe for concurrent use;
// the engine opens one per worker with an Opener.
type Target interface {
	// Ensure makes sure the folder exists (creating it and its parents if
	// needed) and returns its canonical name.
	Ensure(ctx context.Context, folder mailbox.Folder) (string, error)
	// Put stores one message and returns once it is durable, with a receipt
	// that names the stored copy (IMAP: "uidvalidity:uid" or ""; Maildir: the
	// file's base name).
	Put(ctx context.Context, d Delivery, body io.Reader) (receipt string, err error)
	// Find looks for a message that an interrupted Put may have stored.
	Find(ctx context.Context, d Delivery) (receipt string, ok bool, err error)
	// Features declares the session's optional abilities.
	Features() Features
	Close() error
}

// BatchFinder is implemented by targets that can settle several
// interrupted stores into one folder at once (Features.BatchFind): after a
// kill -9 the open intents of a folder are asked about together, with a
// few commands instead of a few per message.
type BatchFinder interface {
	// FindAll answers what Find would for each of ds, which all name the
	// same Folder: found[i] is ds[i]'s copy. The rules are Find's, and one
	// stored copy stands for one delivery at most: a copy ds[i].Taken says
	// is taken, or that FindAll gives to another delivery of ds, is not
	// given to ds[i]. Byte-exact copies are given out before rewritten ones,
	// so that a delivery never takes, by the rewritten-copy rule, the exact
	// copy of another.
	FindAll(ctx context.Context, ds []Delivery) (found []Found, err error)
}

// LookupWarmer is implemented by targets whose first lookup in a folder
// makes the server start slowly: a Dovecot session's first header SEARCH
// in a folder of 200,000 messages takes 0.5 s, the next ones a
// millisecond. WarmLookup opens folder for lookups and makes that start,
// so that the engine can run it while it reads the source. Nothing else uses
// the session meanwhile; an error is only a warm-up that did not happen.
type LookupWarmer interface {
	WarmLookup(ctx context.Context, folder string) error
}

// Found is one answer of FindAll: whether the delivery's copy is there,
// and its receipt.
type Found struct {
	Receipt string
	OK      bool
}

// Opener opens a new session to the same target.
type Opener func(ctx context.Context) (Target, error)

// FolderLister is implemented by targets that can list their folders (with
// special-use attributes), so that the engine can map source folders onto
// the target's own (`\Sent` onto the target's Sent folder).
type FolderLister interface {
	Folders(ctx context.Context) ([]mailbox.Folder, error)
}

// Rejected wraps an error for a message the target refused permanently
// (too big, bad bytes): the engine reports it and moves on.
type Rejected struct {
	Reason string // the server's words
	Err    error
}

func (e *Rejected) Error() string { return "rejected: " + e.Reason }
func (e *Rejected) Unwrap() error { return e.Err }

// ErrFolderFull is wrapped by Put when the folder or account is over quota.
var ErrFolderFull = errors.New("over quota")

// FlagSetter is implemented by targets that can change the flags of a
// message already stored (--sync-flags).
type FlagSetter interface {
	SetFlags(ctx context.Context, folder, receipt string, flags []string) (newReceipt string, err error)
}

// Pipeliner is implemented by targets that can have several messages in
// flight on one session (IMAP APPEND pipelining). Send returns once the body
// has been read (the reader may then be reused); wait, called in the order
// of the Sends, returns what Put would have returned.
type Pipeliner interface {
	Send(ctx context.Context, d Delivery, body io.Reader) (wait func() (receipt string, err error), err error)
}

// Marker is implemented by targets that can say, cheaply and before a
// store, where messages stored from now on will land in a folder (IMAP:
// "uidvalidity:uidnext"). The engine records the mark in the journal's
// intent, so that Find, even after a crash, knows which messages of the
// folder are new since then. "" means the target has no such notion.
type Marker interface {
	Mark(ctx context.Context, folder string) (string, error)
}

// Stored is one message a target folder holds, as Inventory sees it.
type Stored struct {
	Receipt   string    // what Put would have returned for it
	MessageID string    // the Message-ID header value (with <>), "" if none
	Date      time.Time // internal date (Maildir: the file's mtime)
	Size      int64     // octets as stored
}

// Census is how many messages a folder holds and the token that changes
// when the folder is deleted and created again (IMAP UIDVALIDITY; 0 when
// the target has none).
type Census struct {
	Messages int
	Validity uint32
}

// Inventorier is implemented by targets that can tell the engine what a
// folder holds without reading bodies: the engine reconciles against it
// when the journal cannot account for the folder's content (a lost state
// directory, a folder emptied or re-created, a target restored from a
// backup).
type Inventorier interface {
	// Census counts the messages of folder (IMAP: STATUS; Maildir: the
	// files of cur/ and new/). A folder that does not exist has none.
	Census(ctx context.Context, folder string) (Census, error)
	// Inventory calls fn for every message of folder, in any order
	// (IMAP: one UID FETCH of size, date and the Message-ID header field).
	Inventory(ctx context.Context, folder string, fn func(Stored) error) error
}
