package target

import "context"

// Features declares, in one place per driver, which optional abilities a
// target session has. The engine and the CLI ask for them by name instead
// of guessing from the methods a type happens to have; a driver that claims
// a feature implements its interface (the conformance suite in
// internal/testkit/conformance checks both ways).
type Features struct {
	// CRLF: the target stores only CRLF line endings (IMAP); the engine
	// converts bare LF before Put and counts it.
	CRLF bool
	// NUL: a message holding NUL bytes is stored exactly, when its
	// Delivery says Binary (Maildir always; IMAP only with BINARY, see
	// BinaryAppender). Without it the engine refuses such a message
	// (or strips the bytes with --strip-nul).
	NUL bool
	// ExclusiveFolders: one session at a time should store into a folder
	// (IMAP: servers serialise the stores of a folder, and a second
	// appender makes each session re-sync); the engine's dispatcher then
	// gives a folder to one worker at a time.
	ExclusiveFolders bool
	// Pipeline is how many Sends may be in flight on one session
	// (Pipeliner); 0 when the target has no pipelining.
	Pipeline int
	// Marks: the target implements Marker.
	Marks bool
	// CheapFind: looking for a stored copy costs no round trip (Maildir:
	// a stat of the file name planned in the intent), so the engine
	// settles the open intents of an interrupted run one by one and never
	// reads a whole folder's inventory for them.
	CheapFind bool
	// BatchFind: the target implements BatchFinder, and settling a
	// folder's open intents with one FindAll costs less than a Find each
	// (IMAP: one SELECT and SEARCH for all, where Find costs both per
	// message).
	BatchFind bool
	// Inventory: the target implements Inventorier.
	Inventory bool
	// Flags: the target implements FlagSetter (--sync-flags).
	Flags bool
	// Folders: the target implements FolderLister.
	Folders bool
	// Quota: the target can report its storage quota
	// (Quota(ctx) (used, limit int64, ok bool, err error)).
	Quota bool
	// Capabilities: the target can list its protocol capabilities
	// (Capabilities(ctx) ([]string, error)), for the plan.
	Capabilities bool
	// AppendLimit: the target can report the largest message a folder
	// accepts (AppendLimit(ctx, folder) (int64, error)).
	AppendLimit bool
	// SpecialUseCreate: the target can say whether it creates folders
	// with a special use (CreatesSpecialUse(ctx) (bool, error)).
	SpecialUseCreate bool
}

// Quotaer is implemented by targets that can report their storage quota
// (Features.Quota); ok is false when the server has none.
type Quotaer interface {
	Quota(ctx context.Context) (used, limit int64, ok bool, err error)
}

// AppendLimiter is implemented by targets that can report the largest
// message a folder accepts (Features.AppendLimit).
type AppendLimiter interface {
	AppendLimit(ctx context.Context, folder string) (int64, error)
}

// CapabilityLister is implemented by targets that can list their protocol
// capabilities (Features.Capabilities).
type CapabilityLister interface {
	Capabilities(ctx context.Context) ([]string, error)
}

// SpecialUseCreator is implemented by targets that can say whether they
// create folders with a special use (Features.SpecialUseCreate).
type SpecialUseCreator interface {
	CreatesSpecialUse(ctx context.Context) (bool, error)
}
