package migrate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/checkpoint"
	"github.com/mailferry/mailferry/source"
)

func testMsg(folder string, i int) memMsg {
	body := fmt.Sprintf("Message-ID: <m%d.%s@test>\r\nSubject: test %d\r\nDate: Mon, 03 Mar 2025 09:14:00 +0000\r\n\r\nbody %d %s\r\n",
		i, strings.ReplaceAll(folder, "/", "."), i, i, strings.Repeat("x", i%500))
	return memMsg{id: fmt.Sprint(100 + i), body: []byte(body), flags: []string{`\Seen`}, date: time.Unix(1700000000+int64(i), 0).UTC()}
}

func newSource(folders map[string]int) *memSource {
	s := &memSource{msgs: map[string][]memMsg{}}
	names := make([]string, 0, len(folders))
	for f := range folders {
		names = append(names, f)
	}
	slices.Sort(names)
	for _, f := range names {
		s.folders = append(s.folders, source.Folder{Name: f, Validity: 7})
		for i := 0; i < folders[f]; i++ {
			s.msgs[f] = append(s.msgs[f], testMsg(f, i))
		}
	}
	return s
}

func openJournal(t *testing.T, dir string) *checkpoint.Journal {
	t.Helper()
	j, err := checkpoint.Open(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func runOnce(t *testing.T, ctx context.Context, dir string, s *memSource, tg *memTarget, o Options) (*Summary, error) {
	t.Helper()
	j := openJournal(t, dir)
	defer j.Close()
	o.backoff = time.Millisecond
	return Run(ctx, s.opener(), tg.opener(), j, o)
}

// checkExactlyOnce asserts every source message is in the target folder of
// the same name exactly once, with the same bytes, flags and date.
func checkExactlyOnce(t *testing.T, s *memSource, tg *memTarget) {
	t.Helper()
	tg.mu.Lock()
	defer tg.mu.Unlock()
	for folder, msgs := range s.msgs {
		stored := tg.folders[folder]
		count := map[[32]byte]int{}
		for _, st := range stored {
			count[sha256.Sum256(st.body)]++
		}
		for _, m := range msgs {
			h := sha256.Sum256(m.body)
			if count[h] == 0 {
				t.Errorf("%s/%s missing", folder, m.id)
				continue
			}
			count[h]--
		}
		for _, n := range count {
			if n != 0 {
				t.Errorf("%s: %d duplicate(s)", folder, n)
			}
		}
		for _, st := range stored {
			for _, m := range msgs {
				if bytes.Equal(m.body, st.body) && (!st.date.Equal(m.date) || !slices.Equal(st.flags, m.flags)) {
					t.Errorf("%s: stored date/flags %v %v, want %v %v", folder, st.date, st.flags, m.date, m.flags)
				}
			}
		}
	}
}

func TestRunCopiesEverythingOnce(t *testing.T) {
	tests := []struct {
		name    string
		workers int
		mod     func(*memSource, *memTarget)
	}{
		{"one worker", 1, nil},
		{"eight workers", 8, nil},
		{"source resets every 7th read", 4, func(s *memSource, _ *memTarget) { s.failFetchEvery = 7 }},
		{"target resets every 5th put", 4, func(_ *memSource, tg *memTarget) { tg.failPutEvery = 5 }},
		{"target loses every 5th reply", 4, func(_ *memSource, tg *memTarget) { tg.failPutEvery = 5; tg.lostReply = true }},
		// A server that refuses connections for a while mid-run is
		// waited for, not a failed message (failure.Retryable(Connect)).
		{"target refuses reconnects for a while", 4, func(_ *memSource, tg *memTarget) { tg.connectErrs.Store(3) }},
		{"pipelined, target refuses reconnects for a while", 4, func(_ *memSource, tg *memTarget) { tg.connectErrs.Store(3); tg.pipeline = true }},
		{"one session only ([IN-USE])", 4, func(s *memSource, _ *memTarget) { s.maxSess = 1 }},
		{"pipelined, target resets every 5th put", 4, func(_ *memSource, tg *memTarget) { tg.failPutEvery, tg.pipeline = 5, true }},
		{"pipelined, lost replies", 4, func(_ *memSource, tg *memTarget) { tg.failPutEvery, tg.lostReply, tg.pipeline = 4, true, true }},
		{"pipelined, source resets", 4, func(s *memSource, tg *memTarget) { s.failFetchEvery, tg.pipeline = 7, true }},
		{"pipelined, identical duplicates, lost replies, find by content", 3, func(s *memSource, tg *memTarget) {
			var dup []memMsg
			for _, m := range s.msgs["INBOX"][:60] {
				d := m
				d.id = "dup" + m.id
				dup = append(dup, d)
			}
			s.msgs["INBOX"] = append(s.msgs["INBOX"][:60], dup...)
			tg.failPutEvery, tg.lostReply, tg.findByContent, tg.pipeline = 3, true, true, true
		}},
		{"identical duplicates, failed puts, find by content", 3, func(s *memSource, tg *memTarget) {
			// Every message of INBOX twice, byte for byte.
			var dup []memMsg
			for _, m := range s.msgs["INBOX"][:60] {
				d := m
				d.id = "dup" + m.id
				dup = append(dup, d)
			}
			s.msgs["INBOX"] = append(s.msgs["INBOX"][:60], dup...)
			tg.failPutEvery, tg.findByContent = 3, true
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(map[string]int{"INBOX": 120, "Archive/2024": 40, "Sent": 30})
			tg := newMemTarget()
			if tc.mod != nil {
				tc.mod(s, tg)
			}
			dir := t.TempDir()
			sum, err := runOnce(t, context.Background(), dir, s, tg, Options{Workers: tc.workers, BatchSize: 10})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Copied != 190 || sum.Failed != 0 {
				t.Fatalf("copied %d failed %d (%v), want 190, 0", sum.Copied, sum.Failed, sum.Failures)
			}
			checkExactlyOnce(t, s, tg)
			// A second run copies nothing.
			s.failFetchEvery, tg.failPutEvery = 0, 0
			sum, err = runOnce(t, context.Background(), dir, s, tg, Options{Workers: tc.workers})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Copied != 0 || sum.AlreadyThere != 190 {
				t.Fatalf("second run: copied %d, already %d; want 0, 190", sum.Copied, sum.AlreadyThere)
			}
			checkExactlyOnce(t, s, tg)
		})
	}
}

func TestRunInterruptedResumes(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 300, "Work": 100})
	tg := newMemTarget()
	dir := t.TempDir()
	for round := 0; round < 6; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		stats := new(Stats)
		go func() {
			for stats.Copied.Load() < 40 {
				time.Sleep(100 * time.Microsecond)
			}
			cancel()
		}()
		_, err := runOnce(t, ctx, dir, s, tg, Options{Workers: 4, BatchSize: 8, Stats: stats})
		cancel()
		if err == nil {
			break
		}
	}
	sum, err := runOnce(t, context.Background(), dir, s, tg, Options{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 0 {
		t.Fatal(sum.Failures)
	}
	checkExactlyOnce(t, s, tg)
	if n := tg.count(); n != 400 {
		t.Fatalf("target holds %d, want 400", n)
	}
}

func TestPendingIntentResolvedByFind(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 10})
	tg := newMemTarget()
	dir := t.TempDir()
	// The first run stores everything but its done records are lost: the
	// journal keeps only the intents (as after kill -9 between Put and the
	// group commit of the done records).
	if _, err := runOnce(t, context.Background(), dir, s, tg, Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	j := openJournal(t, dir)
	var intents []checkpoint.Record
	j.Range(func(k string, e checkpoint.Entry) bool {
		intents = append(intents, checkpoint.Record{Op: "intent", Key: k, Folder: e.Folder, Name: e.Name, Size: e.Size, SHA256: e.SHA256, MsgID: e.MsgID})
		return true
	})
	j.Close()
	dir2 := t.TempDir()
	j2 := openJournal(t, dir2)
	for _, r := range intents {
		if err := j2.Intent(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	j2.Close()
	sum, err := runOnce(t, context.Background(), dir2, s, tg, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Copied != 0 || sum.AlreadyThere != 10 {
		t.Fatalf("copied %d, already %d; want 0, 10", sum.Copied, sum.AlreadyThere)
	}
	checkExactlyOnce(t, s, tg)
}

func TestPerMessageFailuresDoNotStopTheRun(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 50})
	// A message that vanishes between List and Fetch.
	s.msgs["INBOX"] = append(s.msgs["INBOX"], memMsg{id: "gone", body: []byte("x")})
	tg := newMemTarget()
	tg.rejectIf = func(b []byte) string {
		if bytes.Contains(b, []byte("test 13\r")) {
			return "NO [TOOBIG] message too large"
		}
		return ""
	}
	dir := t.TempDir()
	j := openJournal(t, dir)
	ss := s.opener()
	vanishing := func(ctx context.Context) (source.Source, error) {
		src, err := ss(ctx)
		return &vanishSession{Source: src}, err
	}
	sum, err := Run(context.Background(), vanishing, tg.opener(), j, Options{Workers: 3, backoff: time.Millisecond})
	j.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Copied != 49 || sum.Failed != 2 {
		t.Fatalf("copied %d failed %d, want 49, 2: %+v", sum.Copied, sum.Failed, sum.Failures)
	}
	var reasons []string
	for _, f := range sum.Failures {
		reasons = append(reasons, f.Reason)
	}
	all := strings.Join(reasons, "|")
	if !strings.Contains(all, "TOOBIG") || !strings.Contains(all, "vanished") {
		t.Fatalf("reasons %q", all)
	}
}

// vanishSession hides the message "gone" from Fetch.
type vanishSession struct{ source.Source }

// Features: only the Source methods are promoted.
func (v *vanishSession) Features() source.Features {
	f := v.Source.Features()
	f.Delete, f.Identities, f.Skipped, f.Capabilities = false, false, false, false
	return f
}

func (v *vanishSession) Fetch(ctx context.Context, f source.Folder, ids []string, fn func(source.Meta, io.Reader) error) error {
	var keep []string
	gone := false
	for _, id := range ids {
		if id == "gone" {
			gone = true
			continue
		}
		keep = append(keep, id)
	}
	if err := v.Source.Fetch(ctx, f, keep, fn); err != nil {
		return err
	}
	if gone {
		return &source.VanishedError{Folder: f.Name, IDs: []string{"gone"}}
	}
	return nil
}

func TestQuotaStopsTheFolder(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 40})
	tg := newMemTarget()
	tg.quota = 25
	dir := t.TempDir()
	sum, err := runOnce(t, context.Background(), dir, s, tg, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Copied != 25 || sum.Failed != 15 {
		t.Fatalf("copied %d failed %d, want 25, 15", sum.Copied, sum.Failed)
	}
	// Space is freed: the same run finishes the job.
	tg.quota = 0
	sum, err = runOnce(t, context.Background(), dir, s, tg, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Copied != 15 {
		t.Fatalf("second run copied %d, want 15", sum.Copied)
	}
	checkExactlyOnce(t, s, tg)
}

func TestUIDValidityChangeCopiesNothing(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 30, "Work": 20})
	tg := newMemTarget()
	dir := t.TempDir()
	if _, err := runOnce(t, context.Background(), dir, s, tg, Options{}); err != nil {
		t.Fatal(err)
	}
	// The folder is recreated: new UIDVALIDITY, new UIDs, same messages.
	s.folders[1].Validity = 99
	for i := range s.msgs["Work"] {
		s.msgs["Work"][i].id = fmt.Sprint(5000 + i)
	}
	sum, err := runOnce(t, context.Background(), dir, s, tg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Copied != 0 || sum.AlreadyThere != 50 {
		t.Fatalf("copied %d already %d, want 0, 50", sum.Copied, sum.AlreadyThere)
	}
	checkExactlyOnce(t, s, tg)
}

func TestRenamedSourceFolderIsNotCopiedTwice(t *testing.T) {
	s := newSource(map[string]int{"Projects": 12})
	tg := newMemTarget()
	dir := t.TempDir()
	if _, err := runOnce(t, context.Background(), dir, s, tg, Options{}); err != nil {
		t.Fatal(err)
	}
	s.folders[0].Name = "Projects 2024"
	s.msgs["Projects 2024"] = s.msgs["Projects"]
	delete(s.msgs, "Projects")
	sum, err := runOnce(t, context.Background(), dir, s, tg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Copied != 0 {
		t.Fatalf("copied %d after a rename, want 0", sum.Copied)
	}
}

func TestSyncFlags(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 20})
	tg := newMemTarget()
	dir := t.TempDir()
	if _, err := runOnce(t, context.Background(), dir, s, tg, Options{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		s.msgs["INBOX"][i].flags = []string{`\Seen`, `\Flagged`}
	}
	s.msgs["INBOX"] = append(s.msgs["INBOX"], testMsg("INBOX", 20), testMsg("INBOX", 21))
	sum, err := runOnce(t, context.Background(), dir, s, tg, Options{SyncFlags: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Copied != 2 || sum.FlagsSynced != 5 {
		t.Fatalf("copied %d, flags synced %d; want 2, 5", sum.Copied, sum.FlagsSynced)
	}
	checkExactlyOnce(t, s, tg)
	// Once synced, nothing more to do.
	sum, err = runOnce(t, context.Background(), dir, s, tg, Options{SyncFlags: true})
	if err != nil || sum.Copied != 0 || sum.FlagsSynced != 0 {
		t.Fatalf("third run: %v copied %d synced %d", err, sum.Copied, sum.FlagsSynced)
	}
}

func TestBareLFBecomesCRLFForIMAP(t *testing.T) {
	s := &memSource{msgs: map[string][]memMsg{}, folders: []source.Folder{{Name: "INBOX", Validity: 1}}}
	s.msgs["INBOX"] = []memMsg{{id: "1", body: []byte("Subject: lf\n\nline\nline\r\n")}}
	tg := newMemTarget()
	tg.crlf = true
	sum, err := runOnce(t, context.Background(), t.TempDir(), s, tg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(tg.folders["INBOX"][0].body); got != "Subject: lf\r\n\r\nline\r\nline\r\n" || sum.BareLFFixed != 1 {
		t.Fatalf("stored %q, fixed %d", got, sum.BareLFFixed)
	}
}

func TestSpoolLargeMessageGoesToDisk(t *testing.T) {
	sp := spool{dir: t.TempDir(), threshold: 1024}
	defer sp.close()
	big := bytes.Repeat([]byte("0123456789abcdef\r\n"), 10000)
	if err := sp.fill(bytes.NewReader(big), false, false); err != nil {
		t.Fatal(err)
	}
	if sp.file == nil || sp.buf.Len() != 0 {
		t.Fatalf("a %d-byte message stayed in memory", len(big))
	}
	r, _ := sp.reader()
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, big) || sp.sum != sha256.Sum256(big) {
		t.Fatal("spooled bytes differ")
	}
}

func TestDeleteSourceAfterInterruptions(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 200})
	want := slices.Clone(s.msgs["INBOX"])
	tg := newMemTarget()
	dir := t.TempDir()
	for round := 0; round < 4; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		stats := new(Stats)
		go func() {
			for stats.Copied.Load() < 25 {
				time.Sleep(100 * time.Microsecond)
			}
			cancel()
		}()
		runOnce(t, ctx, dir, s, tg, Options{Workers: 3, BatchSize: 8, Stats: stats, DeleteSource: true})
		cancel()
	}
	sum, err := runOnce(t, context.Background(), dir, s, tg, Options{Workers: 3, DeleteSource: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.msgs["INBOX"]); n != 0 {
		t.Fatalf("%d messages left on the source (summary %+v)", n, sum)
	}
	all := &memSource{msgs: map[string][]memMsg{"INBOX": want}}
	checkExactlyOnce(t, all, tg)
}

func TestOneBadFolderDoesNotStopTheRun(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 10, "Broken": 5, "Work": 7})
	s.failList = map[string]bool{"Broken": true}
	tg := newMemTarget()
	sum, err := runOnce(t, context.Background(), t.TempDir(), s, tg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Copied != 17 || sum.Failed != 1 || !strings.Contains(sum.Failures[0].Reason, "cannot open") {
		t.Fatalf("copied %d failed %d %+v", sum.Copied, sum.Failed, sum.Failures)
	}
}

func TestNULBytesAreNotSentToIMAPSilently(t *testing.T) {
	s := &memSource{msgs: map[string][]memMsg{}, folders: []source.Folder{{Name: "INBOX", Validity: 1}}}
	s.msgs["INBOX"] = []memMsg{{id: "1", body: []byte("Subject: nul\r\n\r\na\x00b\r\n")}, {id: "2", body: []byte("Subject: ok\r\n\r\nok\r\n")}}
	tg := newMemTarget()
	tg.crlf = true
	dir := t.TempDir()
	sum, err := runOnce(t, context.Background(), dir, s, tg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Copied != 1 || sum.Failed != 1 || !strings.Contains(sum.Failures[0].Reason, "--strip-nul") {
		t.Fatalf("copied %d failed %d %+v", sum.Copied, sum.Failed, sum.Failures)
	}
	sum, err = runOnce(t, context.Background(), dir, s, tg, Options{StripNUL: true})
	if err != nil || sum.Copied != 1 || sum.NULStripped != 1 {
		t.Fatalf("with --strip-nul: %v %+v", err, sum)
	}
	for _, m := range tg.folders["INBOX"] {
		if bytes.IndexByte(m.body, 0) >= 0 {
			t.Fatal("a NUL byte reached the IMAP target")
		}
	}
}

func TestFixBareLFForMaildir(t *testing.T) {
	s := &memSource{msgs: map[string][]memMsg{}, folders: []source.Folder{{Name: "INBOX", Validity: 1}}}
	s.msgs["INBOX"] = []memMsg{{id: "1", body: []byte("Subject: lf\n\nline\n")}}
	for _, fix := range []bool{false, true} {
		tg := newMemTarget() // a Maildir-like target: keeps bytes as received
		sum, err := runOnce(t, context.Background(), t.TempDir(), s, tg, Options{FixBareLF: fix})
		if err != nil {
			t.Fatal(err)
		}
		want := "Subject: lf\n\nline\n"
		if fix {
			want = "Subject: lf\r\n\r\nline\r\n"
		}
		if got := string(tg.folders["INBOX"][0].body); got != want || (sum.BareLFFixed == 1) != fix {
			t.Fatalf("fix=%v: stored %q, fixed %d", fix, got, sum.BareLFFixed)
		}
	}
}

// --max-rate is a floor on the run time: 21 messages at 100/s cannot take
// less than 200 ms (the first passes at once). Only the lower bound is
// asserted, so a slow machine cannot make it fail.
func TestMaxRateHoldsBack(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 21})
	start := time.Now()
	sum, err := runOnce(t, context.Background(), t.TempDir(), s, newMemTarget(), Options{MaxRate: 100, Workers: 4})
	if err != nil || sum.Copied != 21 {
		t.Fatal(err, sum.Copied)
	}
	if el := time.Since(start); el < 190*time.Millisecond {
		t.Fatalf("21 messages at --max-rate 100 took %v", el)
	}
}

// --max-bandwidth: 150 KB at 100 KB/s with a 64 KiB burst cannot finish in
// under ~0.85 s. Lower bound only.
func TestMaxBandwidthHoldsBack(t *testing.T) {
	s := &memSource{msgs: map[string][]memMsg{}, folders: []source.Folder{{Name: "INBOX", Validity: 1}}}
	for i := 0; i < 30; i++ {
		s.msgs["INBOX"] = append(s.msgs["INBOX"], memMsg{id: fmt.Sprint(i), body: []byte(fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", i, strings.Repeat("b", 5000)))})
	}
	start := time.Now()
	sum, err := runOnce(t, context.Background(), t.TempDir(), s, newMemTarget(), Options{MaxBandwidth: 100_000, Workers: 4})
	if err != nil || sum.Copied != 30 {
		t.Fatal(err, sum.Copied)
	}
	if el := time.Since(start); el < 800*time.Millisecond {
		t.Fatalf("%d bytes at --max-bandwidth 100000 took %v", sum.Bytes, el)
	}
}

func TestDryRunCreatesNothing(t *testing.T) {
	s := newSource(map[string]int{"INBOX": 5, "Archive/2024": 3})
	tg := newMemTarget()
	sum, err := runOnce(t, context.Background(), t.TempDir(), s, tg, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(tg.folders) != 1 || tg.count() != 0 {
		t.Fatalf("a dry run changed the target: %d folders, %d messages", len(tg.folders), tg.count())
	}
	to := 0
	for _, f := range sum.Folders {
		to += f.ToCopy
	}
	if to != 8 || sum.Copied != 0 {
		t.Fatalf("plan says %d to copy, copied %d; want 8, 0", to, sum.Copied)
	}
}
