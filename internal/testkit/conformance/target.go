// Package conformance is the test suite every Source and every Target
// driver runs (as restic's backend tests): the contracts the engine relies
// on (a lost answer is found again, twins are told apart with Taken, a
// rewritten copy is found after a mark, declared Features are implemented
// and implemented abilities declared), checked the same way for each
// driver. RunTarget and RunSource run them all; each Check function takes a
// testing.TB so that the suite's own tests can run one against a broken
// driver and see it fail.
package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/target"
)

// OpenTarget returns a new session to the target under test. Sessions of
// one RunTarget may share an account: every check uses folders of its own.
type OpenTarget func(t testing.TB) target.Target

// TargetCheck is one check of the target suite.
type TargetCheck func(t testing.TB, open OpenTarget)

// TargetChecks are the checks RunTarget runs, by name.
var TargetChecks = []struct {
	Name  string
	Check TargetCheck
}{
	{"Features", CheckTargetFeatures},
	{"Ensure", CheckEnsure},
	{"Put", CheckPut},
	{"FindLostAnswer", CheckFindLostAnswer},
	{"FindTwins", CheckFindTwins},
	{"FindRewritten", CheckFindRewritten},
	{"FindAll", CheckFindAll},
	{"SetFlags", CheckSetFlags},
	{"Pipeline", CheckPipeline},
}

// RunTarget runs every target check as a subtest.
func RunTarget(t *testing.T, open OpenTarget) {
	for _, c := range TargetChecks {
		t.Run(c.Name, func(t *testing.T) { c.Check(t, open) })
	}
}

// date is the internal date of every message the suite stores.
var date = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// Msg returns a CRLF message (valid for every target) with a Message-ID.
func Msg(id, text string) []byte {
	return []byte("Message-ID: <" + id + "@conformance.test>\r\nSubject: " + text + "\r\nDate: Mon, 6 May 2024 07:08:09 +0000\r\n\r\n" + text + "\r\n")
}

// delivery describes body for folder with a planned name.
func delivery(folder, name string, body []byte, flags ...string) target.Delivery {
	mid := ""
	if i := bytes.Index(body, []byte("Message-ID: ")); i >= 0 {
		rest := body[i+len("Message-ID: "):]
		mid = string(rest[:bytes.IndexByte(rest, '\r')])
	}
	return target.Delivery{
		Folder: folder, Flags: flags, Date: date, Size: int64(len(body)), Name: name,
		Fingerprint: target.Fingerprint{MessageID: mid, Size: int64(len(body)), SHA256: sha256.Sum256(body)},
	}
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// session opens a session closed at the end of the check.
func session(t testing.TB, open OpenTarget) target.Target {
	t.Helper()
	tg := open(t)
	t.Cleanup(func() { tg.Close() })
	return tg
}

func ensure(t testing.TB, ctx context.Context, tg target.Target, name string) string {
	t.Helper()
	got, err := tg.Ensure(ctx, mailbox.Folder{Name: name})
	if err != nil {
		t.Fatalf("Ensure %q: %v", name, err)
	}
	return got
}

func put(t testing.TB, ctx context.Context, tg target.Target, d target.Delivery, body []byte) string {
	t.Helper()
	r, err := tg.Put(ctx, d, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("Put %s into %q: %v", d.Name, d.Folder, err)
	}
	return r
}

func find(t testing.TB, ctx context.Context, tg target.Target, d target.Delivery) (string, bool) {
	t.Helper()
	r, ok, err := tg.Find(ctx, d)
	if err != nil {
		t.Fatalf("Find %s in %q: %v", d.Name, d.Folder, err)
	}
	return r, ok
}

func takenOf(receipts ...string) func(string) bool {
	return func(r string) bool { return slices.Contains(receipts, r) }
}

// CheckTargetFeatures: each declared feature has its interface, and each
// optional interface the session has is declared.
func CheckTargetFeatures(t testing.TB, open OpenTarget) {
	tg := session(t, open)
	f := tg.Features()
	has := func(name string, declared, implemented bool) {
		t.Helper()
		if declared != implemented {
			t.Errorf("feature %s: declared %v, implemented %v", name, declared, implemented)
		}
	}
	_, ok := tg.(target.Pipeliner)
	has("Pipeline (Pipeliner)", f.Pipeline > 0, ok)
	_, ok = tg.(target.Marker)
	has("Marks (Marker)", f.Marks, ok)
	_, ok = tg.(target.BatchFinder)
	has("BatchFind (BatchFinder)", f.BatchFind, ok)
	_, ok = tg.(target.Inventorier)
	has("Inventory (Inventorier)", f.Inventory, ok)
	_, ok = tg.(target.FlagSetter)
	has("Flags (FlagSetter)", f.Flags, ok)
	_, ok = tg.(target.FolderLister)
	has("Folders (FolderLister)", f.Folders, ok)
	_, ok = tg.(target.Quotaer)
	has("Quota (Quotaer)", f.Quota, ok)
	_, ok = tg.(target.CapabilityLister)
	has("Capabilities (CapabilityLister)", f.Capabilities, ok)
	_, ok = tg.(target.AppendLimiter)
	has("AppendLimit (AppendLimiter)", f.AppendLimit, ok)
	_, ok = tg.(target.SpecialUseCreator)
	has("SpecialUseCreate (SpecialUseCreator)", f.SpecialUseCreate, ok)
	if ba, ok := tg.(target.BinaryAppender); ok && ba.AppendsBinary() != f.NUL {
		t.Errorf("feature NUL is %v but AppendsBinary says %v", f.NUL, ba.AppendsBinary())
	}
	if f.Pipeline < 0 {
		t.Errorf("Pipeline depth %d", f.Pipeline)
	}
}

// CheckEnsure: Ensure creates a folder (parents included), is idempotent,
// keeps INBOX, and a FolderLister lists what it created.
func CheckEnsure(t testing.TB, open OpenTarget) {
	ctx := ctxFor(t)
	tg := session(t, open)
	name := ensure(t, ctx, tg, "Conformance/Ensure")
	if again := ensure(t, ctx, tg, "Conformance/Ensure"); again != name {
		t.Errorf("Ensure again: %q, first %q", again, name)
	}
	if in := ensure(t, ctx, tg, "INBOX"); in != "INBOX" {
		t.Errorf("Ensure INBOX: %q", in)
	}
	if !tg.Features().Folders {
		return
	}
	fs, err := tg.(target.FolderLister).Folders(ctx)
	if err != nil {
		t.Fatalf("Folders: %v", err)
	}
	if !slices.ContainsFunc(fs, func(f mailbox.Folder) bool { return f.Name == name }) {
		t.Errorf("Folders does not list %q: %v", name, fs)
	}
}

// CheckPut: a stored message is durable and counted: a new session finds
// it, and an Inventorier counts and lists it with its size and Message-ID.
func CheckPut(t testing.TB, open OpenTarget) {
	ctx := ctxFor(t)
	tg := session(t, open)
	folder := ensure(t, ctx, tg, "Conformance/Put")
	body := Msg("put", "stored once")
	d := delivery(folder, "conformance-put", body, `\Seen`)
	r := put(t, ctx, tg, d, body)
	other := session(t, open)
	got, ok := find(t, ctx, other, d)
	if !ok {
		t.Fatalf("a new session does not find the stored message")
	}
	if r != "" && got != r {
		t.Errorf("Find: receipt %q, Put said %q", got, r)
	}
	if !tg.Features().Inventory {
		return
	}
	inv := other.(target.Inventorier)
	c, err := inv.Census(ctx, folder)
	if err != nil {
		t.Fatalf("Census: %v", err)
	}
	if c.Messages != 1 {
		t.Errorf("Census: %d messages, want 1", c.Messages)
	}
	var seen []target.Stored
	if err := inv.Inventory(ctx, folder, func(s target.Stored) error { seen = append(seen, s); return nil }); err != nil {
		t.Fatalf("Inventory: %v", err)
	}
	if len(seen) != 1 {
		t.Fatalf("Inventory: %d messages, want 1", len(seen))
	}
	if s := seen[0]; s.Size != int64(len(body)) || s.MessageID != d.Fingerprint.MessageID || (r != "" && s.Receipt != r) {
		t.Errorf("Inventory: %+v; want size %d, Message-ID %s, receipt %q", s, len(body), d.Fingerprint.MessageID, r)
	}
	if c, err := inv.Census(ctx, "Conformance/Put/Missing"); err != nil || c.Messages != 0 {
		t.Errorf("Census of a missing folder: %+v, %v", c, err)
	}
}

// CheckFindLostAnswer: after a store whose answer was lost, Find gives
// back its receipt; a message never stored, or a folder that does not
// exist, is not found (and is no error).
func CheckFindLostAnswer(t testing.TB, open OpenTarget) {
	ctx := ctxFor(t)
	tg := session(t, open)
	folder := ensure(t, ctx, tg, "Conformance/Lost")
	var ds []target.Delivery
	var rs []string
	for i := range 3 {
		body := Msg(fmt.Sprintf("lost%d", i), fmt.Sprintf("answer %d lost", i))
		d := delivery(folder, fmt.Sprintf("conformance-lost-%d", i), body)
		ds, rs = append(ds, d), append(rs, put(t, ctx, tg, d, body))
	}
	again := session(t, open)
	for i, d := range ds {
		got, ok := find(t, ctx, again, d)
		if !ok {
			t.Errorf("message %d: not found after its answer was lost", i)
		} else if rs[i] != "" && got != rs[i] {
			t.Errorf("message %d: Find says %q, Put said %q", i, got, rs[i])
		}
	}
	never := Msg("never", "never stored")
	if r, ok := find(t, ctx, again, delivery(folder, "conformance-never", never)); ok {
		t.Errorf("a message never stored is found: %q", r)
	}
	if r, ok := find(t, ctx, again, delivery("Conformance/NoSuchFolder", "conformance-nofolder", never)); ok {
		t.Errorf("found in a folder that does not exist: %q", r)
	}
}

// CheckFindTwins: two source messages with the same bytes are stored
// twice; Find for each gives its own copy when the other's is taken, and
// nothing for a third twin once both are taken.
func CheckFindTwins(t testing.TB, open OpenTarget) {
	ctx := ctxFor(t)
	tg := session(t, open)
	folder := ensure(t, ctx, tg, "Conformance/Twins")
	body := Msg("twin", "twice the same bytes")
	d1 := delivery(folder, "conformance-twin-1", body)
	d2 := delivery(folder, "conformance-twin-2", body)
	r1 := put(t, ctx, tg, d1, body)
	r2 := put(t, ctx, tg, d2, body)
	again := session(t, open)
	if r1 == "" || r2 == "" {
		t.Skip("the target gives no receipts: Taken cannot name a copy")
	}
	if r1 == r2 {
		t.Fatalf("two stores, one receipt %q", r1)
	}
	d1.Taken, d2.Taken = takenOf(r2), takenOf(r1)
	if got, ok := find(t, ctx, again, d1); !ok || got != r1 {
		t.Errorf("twin 1 with twin 2 taken: %q, %v; want %q", got, ok, r1)
	}
	if got, ok := find(t, ctx, again, d2); !ok || got != r2 {
		t.Errorf("twin 2 with twin 1 taken: %q, %v; want %q", got, ok, r2)
	}
	d3 := delivery(folder, "conformance-twin-3", body)
	d3.Taken = takenOf(r1, r2)
	if got, ok := find(t, ctx, again, d3); ok {
		t.Errorf("a third twin, never stored, is settled by a taken copy: %q", got)
	}
}

// CheckFindRewritten: on a target that marks (Marker), a copy the server
// rewrote on the way in (same Message-ID and date, a few bytes more) is
// found by Find with the mark taken before the store, and not when it is
// taken. Targets without Marks are skipped.
func CheckFindRewritten(t testing.TB, open OpenTarget) {
	ctx := ctxFor(t)
	tg := session(t, open)
	if !tg.Features().Marks {
		t.Skip("the target does not claim Marks")
	}
	folder := ensure(t, ctx, tg, "Conformance/Rewritten")
	// Something else in the folder first, so that the mark means something.
	before := Msg("before", "stored before the mark")
	put(t, ctx, tg, delivery(folder, "conformance-before", before), before)
	mark, err := tg.(target.Marker).Mark(ctx, folder)
	if err != nil {
		t.Fatalf("Mark: %v", err)
	}
	body := Msg("rewritten", "the server adds a header")
	d := delivery(folder, "conformance-rewritten", body)
	d.Mark = mark
	// What the server made of it: a header more, the same date.
	served := append([]byte("X-Scanned: yes\r\n"), body...)
	ds := delivery(folder, "conformance-rewritten", served)
	ds.Fingerprint.MessageID = d.Fingerprint.MessageID
	r := put(t, ctx, tg, ds, served)
	again := session(t, open)
	got, ok := find(t, ctx, again, d)
	if !ok {
		t.Fatalf("a copy the server rewrote is not found after the mark %q", mark)
	}
	if r != "" && got != r {
		t.Errorf("Find: %q, the rewritten copy is %q", got, r)
	}
	if r != "" {
		d.Taken = takenOf(r)
		if got, ok := find(t, ctx, again, d); ok {
			t.Errorf("the rewritten copy is found although taken: %q", got)
		}
	}
}

// CheckFindAll: on a BatchFinder, FindAll over stores whose answers were
// lost gives each its own copy, as Find would: twins get one copy each,
// a third twin and a message never stored get none, a copy Taken says is
// taken is not given, and a message without a Message-ID is found too.
// Targets without BatchFind are skipped.
func CheckFindAll(t testing.TB, open OpenTarget) {
	ctx := ctxFor(t)
	tg := session(t, open)
	if !tg.Features().BatchFind {
		t.Skip("the target does not claim BatchFind")
	}
	folder := ensure(t, ctx, tg, "Conformance/FindAll")
	var mark string
	if m, ok := tg.(target.Marker); ok {
		var err error
		if mark, err = m.Mark(ctx, folder); err != nil {
			t.Fatalf("Mark: %v", err)
		}
	}
	var ds []target.Delivery
	var want []string
	add := func(name string, body []byte, store bool) {
		d := delivery(folder, name, body)
		d.Mark = mark
		r := ""
		if store {
			r = put(t, ctx, tg, d, body)
		}
		ds, want = append(ds, d), append(want, r)
	}
	for i := range 5 {
		add(fmt.Sprintf("conformance-all-%d", i), Msg(fmt.Sprintf("all%d", i), fmt.Sprintf("batch %d", i)), i%2 == 0)
	}
	twin := Msg("alltwin", "twice in one batch")
	add("conformance-all-twin-1", twin, true)
	add("conformance-all-twin-2", twin, true)
	add("conformance-all-twin-3", twin, false)
	noID := []byte("Subject: no Message-ID\r\nDate: Mon, 6 May 2024 07:08:09 +0000\r\n\r\nnone\r\n")
	add("conformance-all-noid", noID, true)
	taken := Msg("alltaken", "stored, but another's")
	add("conformance-all-taken", taken, true)
	tr := want[len(want)-1]
	if tr == "" {
		t.Skip("the target gives no receipts: Taken cannot name a copy")
	}
	ds[len(ds)-1].Taken, want[len(want)-1] = takenOf(tr), ""
	again := session(t, open)
	found, err := again.(target.BatchFinder).FindAll(ctx, ds)
	if err != nil {
		t.Fatalf("FindAll: %v", err)
	}
	if len(found) != len(ds) {
		t.Fatalf("FindAll: %d answers for %d deliveries", len(found), len(ds))
	}
	given := map[string]string{}
	for i, f := range found {
		name := ds[i].Name
		if f.OK && given[f.Receipt] != "" {
			t.Errorf("%s: given %q, already given to %s", name, f.Receipt, given[f.Receipt])
		}
		if f.OK {
			given[f.Receipt] = name
		}
		switch {
		case f.OK != (want[i] != ""):
			t.Errorf("%s: found %v (%q); want %v", name, f.OK, f.Receipt, want[i] != "")
		case f.OK && !strings.HasPrefix(name, "conformance-all-twin") && f.Receipt != want[i]:
			t.Errorf("%s: found %q, stored as %q", name, f.Receipt, want[i])
		}
	}
}

// CheckSetFlags: on a FlagSetter, changing the flags of a stored message
// gives a receipt that names it, and leaves one copy.
func CheckSetFlags(t testing.TB, open OpenTarget) {
	ctx := ctxFor(t)
	tg := session(t, open)
	if !tg.Features().Flags {
		t.Skip("the target does not claim Flags")
	}
	folder := ensure(t, ctx, tg, "Conformance/Flags")
	body := Msg("flags", "flags change")
	d := delivery(folder, "conformance-flags", body, `\Seen`)
	r := put(t, ctx, tg, d, body)
	if r == "" {
		t.Skip("no receipt to change the flags of")
	}
	r2, err := tg.(target.FlagSetter).SetFlags(ctx, folder, r, []string{`\Seen`, `\Flagged`, `\Answered`})
	if err != nil {
		t.Fatalf("SetFlags: %v", err)
	}
	if r2 == "" {
		t.Errorf("SetFlags gave no receipt")
	}
	got, ok := find(t, ctx, session(t, open), d)
	if !ok || (r2 != "" && got != r2) {
		t.Errorf("after SetFlags Find says %q, %v; want %q", got, ok, r2)
	}
	if tg.Features().Inventory {
		c, err := tg.(target.Inventorier).Census(ctx, folder)
		if err != nil || c.Messages != 1 {
			t.Errorf("after SetFlags the folder holds %+v (%v), want 1 message", c, err)
		}
	}
}

// CheckPipeline: on a Pipeliner, Sends up to the declared depth, then
// their waits in order, store every message, each found by Find.
func CheckPipeline(t testing.TB, open OpenTarget) {
	ctx := ctxFor(t)
	tg := session(t, open)
	depth := tg.Features().Pipeline
	if depth == 0 {
		t.Skip("the target does not claim Pipeline")
	}
	folder := ensure(t, ctx, tg, "Conformance/Pipeline")
	n := min(depth, 5)
	var ds []target.Delivery
	var waits []func() (string, error)
	for i := range n {
		body := Msg(fmt.Sprintf("pipe%d", i), strings.Repeat("x", i))
		d := delivery(folder, fmt.Sprintf("conformance-pipe-%d", i), body)
		wait, err := tg.(target.Pipeliner).Send(ctx, d, io.MultiReader(bytes.NewReader(body)))
		if err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		ds, waits = append(ds, d), append(waits, wait)
	}
	for i, wait := range waits {
		r, err := wait()
		if err != nil {
			t.Fatalf("wait %d: %v", i, err)
		}
		got, ok := find(t, ctx, session(t, open), ds[i])
		if !ok || (r != "" && got != r) {
			t.Errorf("pipelined message %d: Find %q, %v; wait said %q", i, got, ok, r)
		}
	}
}
