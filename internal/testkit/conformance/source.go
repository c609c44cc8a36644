package conformance

import (
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/source"
)

// Seed is one message the source under test is to hold, in INBOX.
type Seed struct {
	Body  []byte   // CRLF line endings
	Flags []string // IMAP form; ignored by a source without Flags
}

// Seeds are the messages every source check starts from: with and without
// flags, a keyword, an empty body.
func Seeds() []Seed {
	return []Seed{
		{Body: Msg("s1", "plain"), Flags: nil},
		{Body: Msg("s2", "read and answered"), Flags: []string{`\Seen`, `\Answered`}},
		{Body: Msg("s3", "flagged"), Flags: []string{`\Flagged`}},
		{Body: []byte("Message-ID: <s4@conformance.test>\r\nSubject: empty body\r\n\r\n")},
	}
}

// Date is the internal date seeders give each message (a source with
// Dates must report it).
var Date = date

// OpenSource returns an opener for a source holding msgs in INBOX, with
// Date as their internal date where the driver keeps one. Each call
// starts from a fresh account.
type OpenSource func(t testing.TB, msgs []Seed) source.Opener

// SourceCheck is one check of the source suite.
type SourceCheck func(t testing.TB, open OpenSource)

// SourceChecks are the checks RunSource runs, by name.
var SourceChecks = []struct {
	Name  string
	Check SourceCheck
}{
	{"Features", CheckSourceFeatures},
	{"ListFetch", CheckListFetch},
	{"Vanished", CheckVanished},
	{"Identities", CheckIdentities},
	{"Delete", CheckDelete},
}

// RunSource runs every source check as a subtest.
func RunSource(t *testing.T, open OpenSource) {
	for _, c := range SourceChecks {
		t.Run(c.Name, func(t *testing.T) { c.Check(t, open) })
	}
}

func openSource(t testing.TB, op source.Opener) source.Source {
	t.Helper()
	s, err := op(ctxFor(t))
	if err != nil {
		t.Fatalf("open the source: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func inbox(t testing.TB, s source.Source) source.Folder {
	t.Helper()
	fs, err := s.Folders(ctxFor(t))
	if err != nil {
		t.Fatalf("Folders: %v", err)
	}
	i := slices.IndexFunc(fs, func(f source.Folder) bool { return f.Name == "INBOX" })
	if i < 0 {
		t.Fatalf("Folders has no INBOX: %v", fs)
	}
	return fs[i]
}

func list(t testing.TB, s source.Source, f source.Folder) []source.Meta {
	t.Helper()
	ms, err := s.List(ctxFor(t), f)
	if err != nil {
		t.Fatalf("List %q: %v", f.Name, err)
	}
	return ms
}

func ids(ms []source.Meta) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// fetch returns the bodies by ID, and Fetch's error.
func fetch(t testing.TB, s source.Source, f source.Folder, want []string) (map[string][]byte, error) {
	t.Helper()
	got := map[string][]byte{}
	err := s.Fetch(ctxFor(t), f, want, func(m source.Meta, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if _, dup := got[m.ID]; dup {
			t.Errorf("Fetch delivered %s twice", m.ID)
		}
		got[m.ID] = b
		return nil
	})
	return got, err
}

// CheckSourceFeatures: each declared feature has its interface, and each
// optional interface the session has is declared.
func CheckSourceFeatures(t testing.TB, open OpenSource) {
	s := openSource(t, open(t, Seeds()))
	f := s.Features()
	has := func(name string, declared, implemented bool) {
		t.Helper()
		if declared != implemented {
			t.Errorf("feature %s: declared %v, implemented %v", name, declared, implemented)
		}
	}
	_, ok := s.(source.Deleter)
	has("Delete (Deleter)", f.Delete, ok)
	_, ok = s.(source.Identifier)
	has("Identities (Identifier)", f.Identities, ok)
	_, ok = s.(source.SkipLister)
	has("Skipped (SkipLister)", f.Skipped, ok)
	_, ok = s.(source.Pager)
	has("Pages (Pager)", f.Pages, ok)
	_, ok = s.(source.Skimmer)
	has("Skim (Skimmer)", f.Skim, ok)
	_, ok = s.(source.CapabilityLister)
	has("Capabilities (CapabilityLister)", f.Capabilities, ok)
}

// lowerSet is a set of flags, case-folded, without \Recent.
func lowerSet(flags []string) []string {
	var out []string
	for _, f := range flags {
		if l := strings.ToLower(f); l != `\recent` && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// CheckListFetch: List has every message once, with the size Fetch
// delivers; Fetch delivers the exact bytes, in any order; flags and dates
// are there exactly when the source declares them.
func CheckListFetch(t testing.TB, open OpenSource) {
	seeds := Seeds()
	s := openSource(t, open(t, seeds))
	f := inbox(t, s)
	ms := list(t, s, f)
	if len(ms) != len(seeds) {
		t.Fatalf("List: %d messages, want %d", len(ms), len(seeds))
	}
	got, err := fetch(t, s, f, ids(ms))
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	bySeed := map[string]Seed{}
	for _, sd := range seeds {
		bySeed[string(sd.Body)] = sd
	}
	feat := s.Features()
	for _, m := range ms {
		b, ok := got[m.ID]
		if !ok {
			t.Errorf("%s: listed, not delivered", m.ID)
			continue
		}
		sd, ok := bySeed[string(b)]
		if !ok {
			t.Errorf("%s: delivered bytes no seed has: %q", m.ID, b)
			continue
		}
		delete(bySeed, string(b))
		if m.Size != 0 && m.Size != int64(len(b)) {
			t.Errorf("%s: listed size %d, delivered %d", m.ID, m.Size, len(b))
		}
		switch {
		case feat.Flags && !slices.Equal(lowerSet(m.Flags), lowerSet(sd.Flags)):
			t.Errorf("%s: flags %q, want %q", m.ID, m.Flags, sd.Flags)
		case !feat.Flags && len(m.Flags) > 0:
			t.Errorf("%s: flags %q from a source that declares none", m.ID, m.Flags)
		}
		switch {
		case feat.Dates && !m.Received.Equal(Date):
			t.Errorf("%s: internal date %v, want %v", m.ID, m.Received, Date)
		case !feat.Dates && !m.Received.IsZero():
			t.Errorf("%s: internal date %v from a source that declares none", m.ID, m.Received)
		}
	}
	if len(bySeed) > 0 {
		t.Errorf("%d seeded messages not delivered: %q", len(bySeed), slices.Collect(maps.Keys(bySeed)))
	}
}

// CheckVanished: Fetch skips an ID that does not exist, delivers the
// others, and names it in a *source.VanishedError at the end.
func CheckVanished(t testing.TB, open OpenSource) {
	s := openSource(t, open(t, Seeds()))
	f := inbox(t, s)
	ms := list(t, s, f)
	want := ids(ms)
	const gone = "999999"
	ask := append([]string{want[0], gone}, want[1:]...)
	got, err := fetch(t, s, f, ask)
	var ve *source.VanishedError
	if !errors.As(err, &ve) {
		t.Fatalf("Fetch with an unknown ID: %v, want a *source.VanishedError", err)
	}
	if !slices.Equal(ve.IDs, []string{gone}) {
		t.Errorf("vanished %q, want [%s]", ve.IDs, gone)
	}
	if len(got) != len(want) {
		t.Errorf("delivered %d of %d existing messages", len(got), len(want))
	}
}

// CheckIdentities: an Identifier gives one identity per listed message,
// with its Message-ID and listed size.
func CheckIdentities(t testing.TB, open OpenSource) {
	s := openSource(t, open(t, Seeds()))
	if !s.Features().Identities {
		t.Skip("the source does not claim Identities")
	}
	f := inbox(t, s)
	ms := list(t, s, f)
	got := map[string]source.Identity{}
	if err := s.(source.Identifier).Identities(ctxFor(t), f, func(id source.Identity) error {
		got[id.ID] = id
		return nil
	}); err != nil {
		t.Fatalf("Identities: %v", err)
	}
	bodies, err := fetch(t, s, f, ids(ms))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		id, ok := got[m.ID]
		if !ok {
			t.Errorf("%s: no identity", m.ID)
			continue
		}
		b := string(bodies[m.ID])
		i := strings.Index(b, "Message-ID: ")
		want := b[i+len("Message-ID: ") : i+strings.Index(b[i:], "\r\n")]
		if id.MessageID != want {
			t.Errorf("%s: Message-ID %q, want %q", m.ID, id.MessageID, want)
		}
		if id.Size != m.Size {
			t.Errorf("%s: identity size %d, listed %d", m.ID, id.Size, m.Size)
		}
	}
}

// CheckDelete: a Deleter's deletion holds once the session is closed: a
// new session no longer lists the message, and lists the others.
func CheckDelete(t testing.TB, open OpenSource) {
	op := open(t, Seeds())
	s, err := op(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Features().Delete {
		s.Close()
		t.Skip("the source does not claim Delete")
	}
	f := inbox(t, s)
	ms := list(t, s, f)
	if err := s.(source.Deleter).Delete(ctxFor(t), f, []string{ms[0].ID}); err != nil {
		s.Close()
		t.Fatalf("Delete: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after Delete: %v", err)
	}
	s2 := openSource(t, op)
	left := ids(list(t, s2, inbox(t, s2)))
	if slices.Contains(left, ms[0].ID) || len(left) != len(ms)-1 {
		t.Errorf("after deleting %s: %q", ms[0].ID, left)
	}
}
