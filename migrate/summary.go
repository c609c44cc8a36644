package migrate

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats are live counters a progress display polls while Run works.
type Stats struct {
	// TotalMsgs and TotalBytes are what this run has to do: what is
	// planned so far plus, for the folders not yet listed, their message
	// counts (IMAP STATUS; bytes unknown); exact once everything is planned.
	TotalMsgs, TotalBytes atomic.Int64
	DoneMsgs, DoneBytes   atomic.Int64 // handled so far: copied, found already there, or failed
	Copied, Already       atomic.Int64
	Failed                atomic.Int64
	Listed                atomic.Bool // copying started: the totals are set (see TotalMsgs)
	folder                atomic.Value
}

// Folder is the folder being worked on most recently.
func (s *Stats) Folder() string {
	v, _ := s.folder.Load().(string)
	return v
}

func (s *Stats) setFolder(name string) { s.folder.Store(name) }

// Failure is one message (or folder) that could not be copied.
type Failure struct {
	Folder    string `json:"folder"`
	Key       string `json:"key,omitempty"` // the source's ID of the message
	MessageID string `json:"message_id,omitempty"`
	Size      int64  `json:"size,omitempty"`
	Reason    string `json:"reason"`
}

// FolderSummary is what happened to one source folder.
type FolderSummary struct {
	Source       string `json:"source"`
	Target       string `json:"target"`
	Skipped      string `json:"skipped,omitempty"`
	Renamed      string `json:"renamed,omitempty"` // why the target name differs from the planned one
	Listed       int    `json:"listed"`
	ListedBytes  int64  `json:"listed_bytes"`
	ToCopy       int    `json:"to_copy"`       // not yet in the target when the run started
	ToCopyBytes  int64  `json:"to_copy_bytes"` // their size as the source reports it
	Copied       int    `json:"copied"`
	AlreadyThere int    `json:"already_there"`
	Failed       int    `json:"failed"`
	FlagsSynced  int    `json:"flags_synced,omitempty"`
	Bytes        int64  `json:"bytes"`
	// SkippedMsgs were left out on purpose (--max-size): not a failure.
	SkippedMsgs int `json:"skipped_messages,omitempty"`
}

// Summary is the result of a run.
type Summary struct {
	Folders      []*FolderSummary `json:"folders"`
	Copied       int              `json:"copied"`
	AlreadyThere int              `json:"already_there"`
	Failed       int              `json:"failed"`
	FlagsSynced  int              `json:"flags_synced"`
	Bytes        int64            `json:"bytes"`
	BareLFFixed  int              `json:"bare_lf_fixed,omitempty"` // messages whose bare LF became CRLF
	NULStripped  int              `json:"nul_stripped,omitempty"`  // messages whose NUL bytes were removed (--strip-nul)
	Deleted      int              `json:"deleted_from_source,omitempty"`
	NotDeleted   int              `json:"not_deleted_from_source,omitempty"`
	Failures     []Failure        `json:"failures,omitempty"`
	SkippedMsgs  int              `json:"skipped_messages,omitempty"`
	Warnings     []string         `json:"warnings,omitempty"`     // e.g. a --map that matches no folder
	Skips        []Failure        `json:"skipped_list,omitempty"` // why each was skipped
	Workers      int              `json:"workers"`
	Elapsed      time.Duration    `json:"elapsed_ns"`
	Interrupted  bool             `json:"interrupted,omitempty"`

	mu sync.Mutex
}

// MessagesPerSecond is the copy rate of the run.
func (s *Summary) MessagesPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Copied) / s.Elapsed.Seconds()
}

func (s *Summary) add(fs *FolderSummary, fn func(*FolderSummary)) {
	s.mu.Lock()
	fn(fs)
	s.mu.Unlock()
}

// skip records a message left out on purpose (--max-size).
func (s *Summary) skip(fs *FolderSummary, f Failure) {
	s.mu.Lock()
	fs.SkippedMsgs++
	s.Skips = append(s.Skips, f)
	s.mu.Unlock()
}

// fail records a failed message, or a folder that could not be created or
// listed, in its folder's count and the run's list.
func (s *Summary) fail(fs *FolderSummary, f Failure) {
	s.mu.Lock()
	fs.Failed++
	s.Failures = append(s.Failures, f)
	s.mu.Unlock()
}

// totals fills the run-wide counts from the folders.
func (s *Summary) totals() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Copied, s.AlreadyThere, s.Failed, s.FlagsSynced, s.Bytes, s.SkippedMsgs = 0, 0, 0, 0, 0, 0
	for _, f := range s.Folders {
		s.SkippedMsgs += f.SkippedMsgs
		s.Copied += f.Copied
		s.AlreadyThere += f.AlreadyThere
		s.Failed += f.Failed
		s.FlagsSynced += f.FlagsSynced
		s.Bytes += f.Bytes
	}
}
