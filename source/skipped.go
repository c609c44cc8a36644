package source

// Skip is a folder a source has but does not offer for copying, and why.
type Skip struct {
	// Name is the folder's name as the server shows it to its user, with
	// "/" as the separator (canonical for the personal namespace).
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// SkipLister is implemented by sources whose Folders leaves folders out:
// shared folders, other users' folders, folders that cannot be opened.
// Skipped returns those of the last successful Folders call, in the
// server's order, so that plan and the report can list them.
type SkipLister interface {
	Skipped() []Skip
}
