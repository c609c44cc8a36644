// Package source defines what mailferry reads mail from: the Source interface
// and the types every source (pop3, imap, maildir) shares. The concrete
// sources live in the sub-packages source/pop3, source/imap and source/maildir.
package source

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mailferry/mailferry/internal/mailbox"
)

// Folder is one mailbox of a source (an alias, so that targets need not
// import this package).
type Folder = mailbox.Folder

// Meta describes one message without its body.
type Meta = mailbox.Meta

// Source reads mail. A Source is one session: it is not safe for concurrent
// use; the engine opens one per worker with an Opener.
type Source interface {
	// Folders lists the folders to copy.
	Folders(ctx context.Context) ([]Folder, error)
	// List returns the messages of a folder, in the source's order.
	List(ctx context.Context, f Folder) ([]Meta, error)
	// Fetch streams the bodies of the given messages, calling fn once per
	// message in the order of ids. The reader is valid only during fn.
	// If fn returns an error, Fetch stops and returns it. IDs that no longer
	// exist on the source are skipped and reported at the end with a
	// *VanishedError after every other message was delivered.
	Fetch(ctx context.Context, f Folder, ids []string, fn func(Meta, io.Reader) error) error
	// Features declares the session's optional abilities.
	Features() Features
	// Close ends the session (for POP3: QUIT, which commits deletions).
	Close() error
}

// Pager is implemented by sources that can list a folder a window at a
// time, so that the engine's memory does not grow with the folder (IMAP:
// UID FETCH a:b ranges). Sources without it are listed whole with List.
type Pager interface {
	// ListPage returns messages of f after the cursor (start with ""), in
	// the order List would give them, about max of them (fewer or more is
	// allowed), and the cursor for the next call: "" when the folder ends.
	// The pages of one folder, read from start to end on one session,
	// list each message once, as List would. Errors are List's (a changed
	// UIDVALIDITY is a *ValidityChangedError).
	ListPage(ctx context.Context, f Folder, after string, max int) (metas []Meta, next string, err error)
}

// Skimmer is implemented by Pagers that can list a page more cheaply when
// the caller already has most of its messages (a re-run): IMAP lists the
// UIDs of the window (UID SEARCH; one ESEARCH range for a dense folder)
// and FETCHes flags, dates and sizes only for the rest. On Dovecot that is
// 0.08 s for 400,000 UIDs where the FETCH takes 1.3 s and its parsing
// here 2 s.
type Skimmer interface {
	// SkimPage lists the page ListPage would (the same windows and
	// cursors), giving in metas the full Meta of each message for which
	// want(ID) is true, and in known the IDs of the others, each message
	// in one of the two, both in ListPage's order.
	SkimPage(ctx context.Context, f Folder, after string, max int, want func(id string) bool) (metas []Meta, known []string, next string, err error)
}

// Opener opens a new session to the same source. The engine calls it once
// for listing and once per worker.
type Opener func(ctx context.Context) (Source, error)

// Deleter is implemented by sources that can remove messages after they are
// safely in the target (--delete-source).
type Deleter interface {
	Delete(ctx context.Context, f Folder, ids []string) error
}

// VanishedError lists messages that were listed but could not be fetched
// because they no longer exist on the source.
type VanishedError struct {
	Folder string
	IDs    []string
}

func (e *VanishedError) Error() string {
	return fmt.Sprintf("%d message(s) vanished from %q: %s", len(e.IDs), e.Folder, strings.Join(e.IDs, ", "))
}

// ValidityChangedError is returned by List and Fetch when a folder's
// UIDVALIDITY differs from the Folder's: its IDs were reassigned and the old
// ones are void. Call Folders again to get the new validity.
type ValidityChangedError struct {
	Folder   string
	Old, New uint32
}

func (e *ValidityChangedError) Error() string {
	return fmt.Sprintf("the UIDVALIDITY of folder %q changed from %d to %d: its message IDs were reassigned", e.Folder, e.Old, e.New)
}

// ErrSingleSession is returned (wrapped) by an Opener when the server refuses
// a second concurrent session (POP3 [IN-USE]); the engine then falls back to
// one session.
var ErrSingleSession = mailbox.ErrSingleSession

// Identity is what reconciliation knows of a source message without its
// body: enough to recognise its copy in a target.
type Identity struct {
	ID        string    // as in Meta
	MessageID string    // the Message-ID header value (with <>), "" if none
	Date      time.Time // the date the engine stores (Meta.Received, else the one derived from the headers as for POP3)
	Size      int64     // as in Meta
}

// Identifier is implemented by sources that can give the Identity of every
// message of a folder cheaply (IMAP: one FETCH of the Message-ID header
// field; POP3: TOP n 0; Maildir: the headers of each file).
type Identifier interface {
	Identities(ctx context.Context, f Folder, fn func(Identity) error) error
}
