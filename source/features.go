package source

import "context"

// Features declares, in one place per driver, which optional abilities a
// source session has; the engine and the CLI ask for them by name. A
// driver that claims a feature implements its interface (the conformance
// suite in internal/testkit/conformance checks both ways).
type Features struct {
	// Delete: the source implements Deleter (--delete-source).
	Delete bool
	// Identities: the source implements Identifier.
	Identities bool
	// Skipped: the source implements SkipLister.
	Skipped bool
	// Pages: the source implements Pager (a folder listed in windows).
	Pages bool
	// Skim: the source implements Skimmer (a page listed by ID, in full
	// only where asked).
	Skim bool
	// Capabilities: the source implements CapabilityLister (for the plan).
	Capabilities bool
	// Flags: List gives each message's flags (POP3 has none).
	Flags bool
	// Dates: List gives each message's internal date (POP3 has none; the
	// engine then derives it from the headers).
	Dates bool
}

// CapabilityLister is implemented by sources that can list what matters of
// their server's capabilities, for the plan.
type CapabilityLister interface {
	Capabilities(ctx context.Context) ([]string, error)
}
