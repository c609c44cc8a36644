package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/source"
)

// sampleAccount is an in-memory source for the sample's tests: folders of
// UIDs, listed whole (List) or, when paged, in pages as IMAP's ListPage
// gives them (the cursor is a UID, the page the messages from it on);
// with opaque, the cursors are not numbers. It counts what List and
// ListPage returned and records each session's fetches.
type sampleAccount struct {
	folders []sampleAccFolder
	paged   bool
	opaque  bool

	mu        sync.Mutex
	listCalls int
	listed    int // messages List returned
	pageMax   int // most messages one ListPage returned
	sessions  []*sampleSession
}

type sampleAccFolder struct {
	name string
	uids []uint64 // ascending
}

func denseUIDs(n int) []uint64 {
	u := make([]uint64, n)
	for i := range u {
		u[i] = uint64(i + 1)
	}
	return u
}

func (a *sampleAccount) summary() *migrate.Summary {
	sum := &migrate.Summary{}
	for _, f := range a.folders {
		sum.Folders = append(sum.Folders, &migrate.FolderSummary{Source: f.name, Target: f.name, Listed: len(f.uids), ToCopy: len(f.uids)})
	}
	return sum
}

func (a *sampleAccount) open(context.Context) (source.Source, error) {
	s := &sampleSession{a: a}
	a.mu.Lock()
	a.sessions = append(a.sessions, s)
	a.mu.Unlock()
	return s, nil
}

func (a *sampleAccount) folder(name string) *sampleAccFolder {
	for i := range a.folders {
		if a.folders[i].name == name {
			return &a.folders[i]
		}
	}
	return nil
}

type sampleFetch struct {
	folder string
	ids    []string
}

type sampleSession struct {
	a       *sampleAccount
	fetches []sampleFetch
}

func meta(uid uint64) source.Meta {
	return source.Meta{ID: strconv.FormatUint(uid, 10), Size: 1000}
}

func (s *sampleSession) Folders(context.Context) ([]source.Folder, error) {
	var out []source.Folder
	for _, f := range s.a.folders {
		out = append(out, source.Folder{Name: f.name, Validity: 1, Messages: len(f.uids)})
	}
	return out, nil
}

func (s *sampleSession) List(_ context.Context, f source.Folder) ([]source.Meta, error) {
	fo := s.a.folder(f.Name)
	var out []source.Meta
	for _, u := range fo.uids {
		out = append(out, meta(u))
	}
	s.a.mu.Lock()
	s.a.listCalls++
	s.a.listed += len(out)
	s.a.mu.Unlock()
	return out, nil
}

func (s *sampleSession) ListPage(_ context.Context, f source.Folder, after string, n int) ([]source.Meta, string, error) {
	if !s.a.paged {
		return nil, "", fmt.Errorf("not a Pager")
	}
	fo := s.a.folder(f.Name)
	i := 0
	if s.a.opaque {
		if after != "" {
			var err error
			if i, err = strconv.Atoi(strings.TrimPrefix(after, "at-")); err != nil {
				return nil, "", fmt.Errorf("bad cursor %q", after)
			}
		}
	} else if after != "" {
		from, err := strconv.ParseUint(after, 10, 32)
		if err != nil {
			return nil, "", fmt.Errorf("bad cursor %q", after)
		}
		i = sort.Search(len(fo.uids), func(j int) bool { return fo.uids[j] >= from })
	}
	end := min(i+n, len(fo.uids))
	var out []source.Meta
	for _, u := range fo.uids[i:end] {
		out = append(out, meta(u))
	}
	s.a.mu.Lock()
	s.a.pageMax = max(s.a.pageMax, len(out))
	s.a.mu.Unlock()
	switch {
	case end == len(fo.uids):
		return out, "", nil
	case s.a.opaque:
		return out, "at-" + strconv.Itoa(end), nil
	default:
		return out, strconv.FormatUint(fo.uids[end-1]+1, 10), nil
	}
}

func (s *sampleSession) Fetch(_ context.Context, f source.Folder, ids []string, fn func(source.Meta, io.Reader) error) error {
	s.fetches = append(s.fetches, sampleFetch{f.Name, ids})
	for _, id := range ids {
		if err := fn(source.Meta{ID: id, Size: 1000}, strings.NewReader(strings.Repeat("x", 1000))); err != nil {
			return err
		}
	}
	return nil
}

func (s *sampleSession) Features() source.Features { return source.Features{Pages: s.a.paged} }
func (s *sampleSession) Close() error              { return nil }

// TestPlanSamplePaged: on a source that lists in pages, planSample picks
// its chunks without listing a folder whole (it called List on each,
// holding a 400,000-message folder in memory), and the chunks are spread
// through each folder as List's are: warm-up first, then chunks of the
// run's batch size that do not overlap, from near the start to near the
// end, on folders with gaps in the UIDs and with cursors that are not UIDs
// too.
func TestPlanSamplePaged(t *testing.T) {
	// Deleted messages: UIDs from 50,000, every third, and 200,000 of
	// them gone after the first 100,000 messages (lastUID goes past the
	// place the last UID would have without gaps, then back).
	gappy := make([]uint64, 150000)
	for i := range gappy {
		gappy[i] = 50000 + uint64(i)*3
		if i >= 100000 {
			gappy[i] += 200000
		}
	}
	folders := func(big []uint64) []sampleAccFolder {
		return []sampleAccFolder{{"INBOX", big}, {"Archive", denseUIDs(40000)}, {"Sent", denseUIDs(3000)}, {"Tiny", denseUIDs(50)}}
	}
	for _, tc := range []struct {
		name          string
		big           []uint64
		paged, opaque bool
	}{
		{"list", denseUIDs(400000), false, false},
		{"pages", denseUIDs(400000), true, false},
		{"pages, UIDs with gaps", gappy, true, false},
		{"pages, opaque cursors", denseUIDs(400000), true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &sampleAccount{folders: folders(tc.big), paged: tc.paged, opaque: tc.opaque}
			s, _ := a.open(context.Background())
			sum := a.summary()
			total := 0
			for _, f := range sum.Folders {
				total += f.ToCopy
			}
			size := sampleChunkSize(total, 4)
			sfs, err := planSample(context.Background(), s, sum, 4)
			if err != nil {
				t.Fatal(err)
			}
			if len(sfs) != len(a.folders) {
				t.Fatalf("%d folders sampled, want %d", len(sfs), len(a.folders))
			}
			if tc.paged {
				if a.listCalls != 0 {
					t.Errorf("List called %d times on a Pager (%d messages)", a.listCalls, a.listed)
				}
				bound := 2*size + warmMsgs
				if tc.opaque {
					bound = 1000 // walkChunks' pages
				}
				if a.pageMax > bound {
					t.Errorf("a ListPage returned %d messages, want at most %d", a.pageMax, bound)
				}
			}
			sampled := 0
			for _, sf := range sfs {
				fo := a.folder(sf.warm.folder.Name)
				pos := map[string]int{}
				for i, u := range fo.uids {
					pos[strconv.FormatUint(u, 10)] = i
				}
				if got := strings.Join(sf.warm.ids, ","); got != fmt.Sprint(fo.uids[0], ",", fo.uids[1], ",", fo.uids[2], ",", fo.uids[3]) {
					t.Errorf("%s: warm-up %s, want the first 4", fo.name, got)
				}
				last := warmMsgs - 1
				for j, c := range sf.chunks {
					if len(c.ids) == 0 || len(c.ids) > size {
						t.Fatalf("%s: chunk %d has %d messages, want 1 to %d", fo.name, j, len(c.ids), size)
					}
					for _, id := range c.ids {
						p, ok := pos[id]
						if !ok || p <= last {
							t.Fatalf("%s: chunk %d: message %s (at %d) is not in the folder or not after %d", fo.name, j, id, p, last)
						}
						last = p
					}
					sampled += len(c.ids)
				}
				// Spread over the UIDs (with gaps in them, the chunks are
				// placed by UID, not by place in the folder).
				if n := len(sf.chunks); n >= 2 {
					lo, hi := fo.uids[0], fo.uids[len(fo.uids)-1]
					first, _ := strconv.ParseUint(sf.chunks[0].ids[0], 10, 64)
					end, _ := strconv.ParseUint(sf.chunks[n-1].ids[len(sf.chunks[n-1].ids)-1], 10, 64)
					if first-lo > (hi-lo)/4 || hi-end > (hi-lo)/4 {
						t.Errorf("%s: %d chunks from UID %d to %d of %d–%d: not spread over the folder", fo.name, n, first, end, lo, hi)
					}
				}
			}
			if sampled < sampleMaxMsgs*3/4 || sampled > sampleMaxMsgs+len(sfs)*size {
				t.Errorf("%d messages in the chunks, want about %d", sampled, sampleMaxMsgs)
			}
			if tc.name == "pages" {
				// With UIDs without gaps a page at a UID is the message at
				// that place: the chunks are List's.
				l := &sampleAccount{folders: folders(tc.big)}
				ls, _ := l.open(context.Background())
				want, _ := planSample(context.Background(), ls, l.summary(), 4)
				for i := range want {
					if fmt.Sprint(want[i].chunks) != fmt.Sprint(sfs[i].chunks) {
						t.Errorf("%s: paged chunks differ from listed ones", want[i].warm.folder.Name)
					}
				}
			}
		})
	}
}

// TestSampleSessionsStayOnFolder: a session of sampleSource reads a
// folder's chunks before it moves to its next folder and does not come
// back (each move is an EXAMINE on IMAP, up to 0.4 s for a big folder;
// the sample alternated folders at every chunk, the run's workers do
// not), and it starts the timed part on the folder it warmed up last.
func TestSampleSessionsStayOnFolder(t *testing.T) {
	defer func(b time.Duration) { sampleBudget = b }(sampleBudget)
	sampleBudget = time.Minute // the fake is fast: the chunks run out first
	for _, workers := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) {
			a := &sampleAccount{paged: true, folders: []sampleAccFolder{
				{"INBOX", denseUIDs(40000)}, {"Archive", denseUIDs(20000)}, {"Sent", denseUIDs(15000)},
				{"Lists/go", denseUIDs(10000)}, {"Lists/dovecot", denseUIDs(8000)}, {"Drafts", denseUIDs(7000)},
			}}
			first, _ := a.open(context.Background())
			rs, err := sampleSource(context.Background(), first, a.open, a.summary(), workers)
			if err != nil || !rs.ok() {
				t.Fatalf("sample %+v, %v", rs, err)
			}
			if len(a.sessions) != workers {
				t.Fatalf("%d sessions, want %d", len(a.sessions), workers)
			}
			if workers > 1 && (rs.OneMsgs == 0 || rs.Sessions != workers) {
				t.Errorf("one session alone read %d messages, %d sessions together", rs.OneMsgs, rs.Sessions)
			}
			for i, s := range a.sessions {
				var warmed, seq []string
				for _, f := range s.fetches {
					if strings.Join(f.ids, ",") == "1,2,3,4" {
						warmed = append(warmed, f.folder)
					} else {
						seq = append(seq, f.folder)
					}
				}
				if len(seq) == 0 {
					t.Errorf("session %d read nothing timed", i)
					continue
				}
				if seq[0] != warmed[len(warmed)-1] {
					t.Errorf("session %d warmed up %v last, then read %s first", i, warmed, seq[0])
				}
				moves, seen := 0, map[string]bool{seq[0]: true}
				for j := 1; j < len(seq); j++ {
					if seq[j] != seq[j-1] {
						moves++
						if seen[seq[j]] {
							t.Errorf("session %d came back to %s after %d chunks", i, seq[j], j)
							break
						}
						seen[seq[j]] = true
					}
				}
				if moves > len(warmed)-1 {
					t.Errorf("session %d moved between its %d folders %d times: %v", i, len(warmed), moves, seq)
				}
			}
		})
	}
}
