package batch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

func TestParse(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "accounts.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, bad, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{
		{Line: 3, Source: "pop3s://alice@pop.old.example", Target: "imaps://alice@imap.new.example",
			SourcePassword: Secret{"env", "ALICE_OLD"}, TargetPassword: Secret{"file", "/run/secrets/alice"}, Flags: []string{"--to-folder", "Old mail"}},
		{Line: 4, Source: "imaps://bob@imap.old.example", Target: "imaps://bob@imap.new.example",
			SourcePassword: Secret{"cmd", "pass show bob"}, TargetPassword: Secret{"env", "BOB_NEW"}},
		{Line: 6, Source: "imaps://carol@imap.old.example", Target: "maildir:/backup/carol",
			SourcePassword: Secret{"env", "CAROL"}, Flags: []string{"--exclude", "^Trash$", "--workers", "2"}},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows:\n got %+v\nwant %+v", rows, want)
	}
	wantBad := map[int]string{7: "never the password itself", 8: "source and target are both required", 9: "unterminated"}
	if len(bad) != len(wantBad) {
		t.Fatalf("bad rows: %v, want lines %v", bad, wantBad)
	}
	for _, b := range bad {
		if w, ok := wantBad[b.Line]; !ok || !strings.Contains(b.Error(), w) {
			t.Errorf("bad row %v: want line %d to say %q", b, b.Line, w)
		}
		if strings.Contains(b.Error(), "hunter2") {
			t.Errorf("bad row error shows the password: %v", b)
		}
	}
}

func TestParseFileErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"source,password\n", `unknown column "password"`},
		{"source,source\n", "twice"},
		{"source,flags\n", `"target" is missing`},
	} {
		if _, _, err := Parse(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestSplitFlags(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"  --to-folder   X ", []string{"--to-folder", "X"}, false},
		{`--to-folder "Old mail"`, []string{"--to-folder", "Old mail"}, false},
		{`--map 'a b=c "d"'`, []string{"--map", `a b=c "d"`}, false},
		{`--x "a\"b\\c" d\ e`, []string{"--x", `a"b\c`, "d e"}, false},
		{`--x=""`, []string{"--x="}, false},
		{`'unterminated`, nil, true},
		{`"unterminated`, nil, true},
		{`trailing\`, nil, true},
	} {
		got, err := SplitFlags(tc.in)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitFlags(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestSecretResolve(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	os.WriteFile(file, []byte("from-file\r\nsecond line\n"), 0o600)
	t.Setenv("MAILFERRY_BATCH_TEST_PW", "from-env")
	ctx := context.Background()
	for _, tc := range []struct {
		spec, want, err string
	}{
		{"env:MAILFERRY_BATCH_TEST_PW", "from-env", ""},
		{"env:MAILFERRY_BATCH_TEST_UNSET", "", "is not set"},
		{"file:" + file, "from-file", ""},
		{"file:" + filepath.Join(dir, "missing"), "", "read the password file"},
		{"cmd:printf 'from-cmd\\nmore\\n'", "from-cmd", ""},
		{"cmd:printf 'lea%s' ked; exit 3", "", "failed"},
		{"cmd:true", "", "empty password"},
	} {
		s, err := ParseSecret(tc.spec)
		if err != nil {
			t.Fatalf("ParseSecret(%q): %v", tc.spec, err)
		}
		got, err := s.Resolve(ctx)
		if got != tc.want || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %q, %v; want %q, %q", tc.spec, got, err, tc.want, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), "leaked") {
			t.Errorf("%s: the error shows the command's output: %v", tc.spec, err)
		}
	}
	for _, bad := range []string{"hunter2", "vault:x", "env:", "file: "} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseSecret error shows the value: %v", err)
		}
	}
}

func TestShardsCoverEveryRowOnce(t *testing.T) {
	var rows []Row
	for i := range 1000 {
		rows = append(rows, Row{Line: i + 2, Source: fmt.Sprintf("pop3s://user%d@pop.example", i), Target: fmt.Sprintf("imaps://user%d@imap.example", i)})
	}
	const n = 3
	seen := map[int]int{}
	sizes := make([]int, n)
	for i := 1; i <= n; i++ {
		s, err := ParseShard(fmt.Sprintf("%d/%d", i, n))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if s.Has(r.Source, r.Target) {
				seen[r.Line]++
				sizes[i-1]++
			}
		}
	}
	for _, r := range rows {
		if seen[r.Line] != 1 {
			t.Fatalf("row %d is in %d shards, want 1", r.Line, seen[r.Line])
		}
	}
	for i, sz := range sizes {
		if sz < 250 || sz > 420 {
			t.Errorf("shard %d/%d has %d of 1000 rows: unbalanced", i+1, n, sz)
		}
	}
	// Stable: the line number plays no part; reordering rows moves nothing.
	s2, _ := ParseShard("2/3")
	r := rows[17]
	before := s2.Has(r.Source, r.Target)
	r.Line = 99999
	if s2.Has(r.Source, r.Target) != before {
		t.Error("shard membership depends on the line")
	}
	// A bad row without endpoints goes to shard 1 only.
	e := &RowError{Line: 5}
	cnt := 0
	for i := 1; i <= n; i++ {
		if (Shard{i, n}).HasError(e) {
			cnt++
		}
	}
	if cnt != 1 {
		t.Errorf("a bad row without endpoints is in %d shards", cnt)
	}
	for _, bad := range []string{"0/3", "4/3", "1/0", "a/b", "3"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) accepted", bad)
		}
	}
}

func TestRunnerLimitsConcurrency(t *testing.T) {
	var rows []Row
	for i := range 12 {
		rows = append(rows, Row{Line: i + 2, Source: fmt.Sprint(i)})
	}
	var cur, peak atomic.Int64
	var mu sync.Mutex
	r := &Runner{Accounts: 3, Run: func(ctx context.Context, row Row, st *migrate.Stats) Result {
		n := cur.Add(1)
		mu.Lock()
		peak.Store(max(peak.Load(), n))
		mu.Unlock()
		st.TotalMsgs.Store(10)
		st.DoneMsgs.Store(10)
		st.DoneBytes.Store(100)
		st.TotalBytes.Store(100)
		time.Sleep(10 * time.Millisecond)
		cur.Add(-1)
		status := StatusOK
		if row.Line == 5 {
			status = StatusFailed
		}
		return Result{Line: row.Line, Status: status}
	}}
	res := r.RunAll(context.Background(), rows)
	if peak.Load() != 3 {
		t.Errorf("peak concurrency %d, want 3", peak.Load())
	}
	for i, x := range res {
		if x.Line != rows[i].Line {
			t.Fatalf("results out of order: %d at %d", x.Line, i)
		}
	}
	p := r.Progress()
	if p.Done != 12 || p.Failed != 1 || p.Running != 0 || p.Msgs != 120 || p.Bytes != 1200 {
		t.Errorf("progress %+v", p)
	}
	rep := &Report{Accounts: res}
	rep.Sum()
	if rep.Totals.OK != 11 || rep.Totals.Failed != 1 || rep.ExitCode() != 1 {
		t.Errorf("totals %+v exit %d", rep.Totals, rep.ExitCode())
	}
}

func TestRunnerInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rows := []Row{{Line: 2}, {Line: 3}, {Line: 4}}
	r := &Runner{Accounts: 1, Run: func(ctx context.Context, row Row, st *migrate.Stats) Result {
		cancel()
		return Result{Line: row.Line, Status: StatusInterrupted}
	}}
	res := r.RunAll(ctx, rows)
	rep := &Report{Accounts: res}
	rep.Sum()
	if rep.Totals.Interrupted != 3 || rep.ExitCode() != 130 {
		t.Errorf("totals %+v exit %d, want 3 interrupted, 130", rep.Totals, rep.ExitCode())
	}
}

func TestETA(t *testing.T) {
	p := Progress{Accounts: 4, Done: 1, Running: 1, Bytes: 100, TotalBytes: 200}
	// 2 accounts started with 200 bytes: 4 accounts ≈ 400 bytes; 300 left at 100 B/s.
	if eta, ok := p.ETA(time.Second); !ok || eta != 3*time.Second {
		t.Errorf("ETA %v %v, want 3s", eta, ok)
	}
	if _, ok := (Progress{Accounts: 4}).ETA(time.Second); ok {
		t.Error("ETA without data")
	}
}

// TestTableNoTrailingSpaces: an account without a reason does not end its
// line in padding.
func TestTableNoTrailingSpaces(t *testing.T) {
	r := &Report{Accounts: []Result{
		{Line: 2, Source: "pop3s://a@h", Target: "maildir:/x", Status: StatusOK},
		{Line: 3, Source: "pop3s://b@h", Target: "maildir:/y", Status: StatusFailed, Reason: "1 message(s) failed"},
	}}
	r.Sum()
	var b strings.Builder
	r.Table(&b)
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing space: %q", l)
		}
	}
	if !strings.Contains(b.String(), "1 message(s) failed") {
		t.Errorf("table:\n%s", b.String())
	}
}
