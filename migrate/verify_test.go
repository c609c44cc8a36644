package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/testkit/pop3test"
	"github.com/mailferry/mailferry/source"
	srcimap "github.com/mailferry/mailferry/source/imap"
	srcmaildir "github.com/mailferry/mailferry/source/maildir"
	"github.com/mailferry/mailferry/source/pop3"
	"github.com/mailferry/mailferry/target"
	tgtmaildir "github.com/mailferry/mailferry/target/maildir"
)

var verifyT0 = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// vfile is one message file of a test Maildir tree.
type vfile struct {
	folder  string // "" = INBOX
	unique  string
	body    string
	letters string // after ":2,"
	mtime   time.Time
}

func vbody(id, text string) string {
	return fmt.Sprintf("Message-ID: <%s@test>\r\nSubject: %s\r\n\r\n%s\r\n", id, id, text)
}

// vf is a message a<id> in INBOX with default date and no flags.
func vf(unique, id string) vfile {
	return vfile{unique: unique, body: vbody(id, "body of "+id), mtime: verifyT0}
}

func (f vfile) with(fn func(*vfile)) vfile { fn(&f); return f }

// writeMaildir builds a Maildir++ tree; kw are the dovecot-keywords of
// INBOX (keyword letter 'a'+i is kw[i]).
func writeMaildir(t *testing.T, files []vfile, kw ...string) string {
	t.Helper()
	root := t.TempDir()
	mk := func(dir string) {
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk(root)
	if len(kw) > 0 {
		var b strings.Builder
		for i, k := range kw {
			fmt.Fprintf(&b, "%d %s\n", i, k)
		}
		if err := os.WriteFile(filepath.Join(root, "dovecot-keywords"), []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		dir := root
		if f.folder != "" {
			dir = filepath.Join(root, "."+f.folder)
			mk(dir)
			os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o600)
		}
		p := filepath.Join(dir, "cur", f.unique+":2,"+f.letters)
		if err := os.WriteFile(p, []byte(f.body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, f.mtime, f.mtime); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func maildirOpener(root string) source.Opener {
	return func(ctx context.Context) (source.Source, error) { return srcmaildir.Open(ctx, root) }
}

// problemsOf returns the problems of a report as "kind source_id target_id"
// lines, with the details that matter per kind.
func problemsOf(r *VerifyReport) []string {
	var out []string
	for _, f := range r.Folders {
		for _, p := range f.Problems {
			s := fmt.Sprintf("%s %s/%s %s>%s %s", p.Kind, p.Folder, p.TargetFolder, p.SourceID, p.TargetID, p.MessageID)
			if d := p.ProblemDetail; d != nil {
				switch p.Kind {
				case ProblemDuplicated:
					s += fmt.Sprintf(" copies=%d src=%v tgt=%v", d.Copies, d.SourceIDs, d.TargetIDs)
				case ProblemFlags:
					s += fmt.Sprintf(" %v/%v", d.SourceFlags, d.TargetFlags)
				case ProblemDate:
					s += fmt.Sprintf(" %s/%s", d.SourceDate.UTC().Format(time.RFC3339), d.TargetDate.UTC().Format(time.RFC3339))
				}
			}
			out = append(out, s)
		}
	}
	return out
}

func TestVerifyNamesProblems(t *testing.T) {
	a, b := vf("ua", "a"), vf("ub", "b")
	// Two different messages with one Message-ID and the same size.
	s1 := vfile{unique: "us1", body: vbody("same", "first  text"), mtime: verifyT0}
	s2 := vfile{unique: "us2", body: vbody("same", "second text"), mtime: verifyT0}
	tests := []struct {
		name     string
		src, tgt []vfile
		srcKW    []string
		tgtKW    []string
		opts     VerifyOptions
		ok       bool
		counts   [5]int // missing, extra, duplicated, flags, dates
		problems []string
	}{
		{name: "identical", src: []vfile{a, b}, tgt: []vfile{a, b}, ok: true},
		{name: "missing", src: []vfile{a, b}, tgt: []vfile{a},
			counts:   [5]int{1, 0, 0, 0, 0},
			problems: []string{"missing INBOX/INBOX ub> <b@test>"}},
		{name: "extra is not a failure", src: []vfile{a}, tgt: []vfile{a, b}, ok: true,
			counts:   [5]int{0, 1, 0, 0, 0},
			problems: []string{"extra INBOX/INBOX >ub <b@test>"}},
		{name: "duplicated", src: []vfile{a, b}, tgt: []vfile{a, b, vf("ub2", "b")},
			counts:   [5]int{0, 0, 1, 0, 0},
			problems: []string{"duplicated INBOX/INBOX ub> <b@test> copies=2 src=[] tgt=[ub ub2]"}},
		{name: "flag mismatch", src: []vfile{a.with(func(f *vfile) { f.letters = "FS" })}, tgt: []vfile{a.with(func(f *vfile) { f.letters = "S" })},
			counts:   [5]int{0, 0, 0, 1, 0},
			problems: []string{`flags INBOX/INBOX ua>ua <a@test> [\Flagged \Seen]/[\Seen]`}},
		{name: "flags ignored", src: []vfile{a.with(func(f *vfile) { f.letters = "FS" })}, tgt: []vfile{a},
			opts: VerifyOptions{IgnoreFlags: true}, ok: true},
		{name: "keywords compared as names, not letters", src: []vfile{a.with(func(f *vfile) { f.letters = "Sa" })}, srcKW: []string{"$Label1"},
			tgt: []vfile{a.with(func(f *vfile) { f.letters = "Sb" })}, tgtKW: []string{"Other", "$label1"}, ok: true},
		{name: "keyword missing in the target", src: []vfile{a.with(func(f *vfile) { f.letters = "Sa" })}, srcKW: []string{"$Label1"},
			tgt:      []vfile{a.with(func(f *vfile) { f.letters = "S" })},
			counts:   [5]int{0, 0, 0, 1, 0},
			problems: []string{`flags INBOX/INBOX ua>ua <a@test> [$Label1 \Seen]/[\Seen]`}},
		{name: "keywords ignored", src: []vfile{a.with(func(f *vfile) { f.letters = "Sa" })}, srcKW: []string{"$Label1"},
			tgt: []vfile{a.with(func(f *vfile) { f.letters = "S" })}, opts: VerifyOptions{IgnoreKeywords: true}, ok: true},
		{name: "date mismatch", src: []vfile{a, b}, tgt: []vfile{a, b.with(func(f *vfile) { f.mtime = verifyT0.Add(time.Hour) })},
			counts:   [5]int{0, 0, 0, 0, 1},
			problems: []string{"date INBOX/INBOX ub>ub <b@test> 2024-05-06T07:08:09Z/2024-05-06T08:08:09Z"}},
		{name: "date within a second", src: []vfile{a.with(func(f *vfile) { f.mtime = verifyT0.Add(900 * time.Millisecond) })}, tgt: []vfile{a}, ok: true},
		{name: "dates ignored", src: []vfile{a}, tgt: []vfile{a.with(func(f *vfile) { f.mtime = verifyT0.Add(time.Hour) })},
			opts: VerifyOptions{IgnoreDates: true}, ok: true},
		{name: "two messages sharing a Message-ID are not duplicates", src: []vfile{s1, s2}, tgt: []vfile{s1, s2}, ok: true},
		{name: "of two messages sharing a Message-ID, the missing one is named", src: []vfile{s1, s2}, tgt: []vfile{s2},
			counts:   [5]int{1, 0, 0, 0, 0},
			problems: []string{"missing INBOX/INBOX us1> <same@test>"}},
		{name: "byte-identical twins are not duplicates", src: []vfile{a, vf("ua2", "a")}, tgt: []vfile{vf("t1", "a"), vf("t2", "a")}, ok: true},
		{name: "twins with a third copy", src: []vfile{a, vf("ua2", "a")}, tgt: []vfile{vf("t1", "a"), vf("t2", "a"), vf("t3", "a")},
			counts:   [5]int{0, 0, 1, 0, 0},
			problems: []string{"duplicated INBOX/INBOX ua> <a@test> copies=3 src=[ua ua2] tgt=[t1 t2 t3]"}},
		{name: "twins: flags paired with the best copy", src: []vfile{a, vf("ua2", "a").with(func(f *vfile) { f.letters = "S" })},
			tgt: []vfile{vf("t1", "a").with(func(f *vfile) { f.letters = "S" }), vf("t2", "a")}, ok: true},
		{name: "a missing target folder", src: []vfile{a, vf("x1", "x").with(func(f *vfile) { f.folder = "Archive" })}, tgt: []vfile{a},
			counts:   [5]int{1, 0, 0, 0, 0},
			problems: []string{"missing Archive/Archive x1> <x@test>"}},
		{name: "no Message-ID: matched by hash", src: []vfile{{unique: "n1", body: "Subject: x\r\n\r\none\r\n", mtime: verifyT0}},
			tgt:      []vfile{{unique: "n2", body: "Subject: x\r\n\r\ntwo\r\n", mtime: verifyT0}},
			counts:   [5]int{1, 1, 0, 0, 0},
			problems: []string{"missing INBOX/INBOX n1> ", "extra INBOX/INBOX >n2 "}},
		{name: "deep: same Message-ID and size, other bytes", src: []vfile{a}, tgt: []vfile{a.with(func(f *vfile) { f.body = strings.Replace(f.body, "body", "BODY", 1) })},
			opts: VerifyOptions{Deep: true}, counts: [5]int{1, 1, 0, 0, 0},
			problems: []string{"missing INBOX/INBOX ua> <a@test>", "extra INBOX/INBOX >ua <a@test>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := writeMaildir(t, tt.src, tt.srcKW...)
			tgt := writeMaildir(t, tt.tgt, tt.tgtKW...)
			rep, err := Verify(context.Background(), maildirOpener(src), maildirOpener(tgt), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := [5]int{rep.Missing, rep.Extra, rep.Duplicated, rep.FlagMismatches, rep.DateMismatches}
			if got != tt.counts {
				t.Errorf("missing, extra, duplicated, flags, dates = %v, want %v", got, tt.counts)
			}
			if rep.OK() != tt.ok {
				t.Errorf("OK() = %v, want %v", rep.OK(), tt.ok)
			}
			if ps := problemsOf(rep); !slices.Equal(ps, tt.problems) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(ps, "\n  "), strings.Join(tt.problems, "\n  "))
			}
		})
	}
}

// startMemIMAP starts go-imap's in-memory server with user u / pw "pw"
// and an INBOX holding msgs.
func startMemIMAP(t *testing.T, msgs []memIMAPMsg) string {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("u", "pw")
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps: imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}, InsecureAuth: true, Logger: quietLog{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := imapclient.DialInsecure(ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("u", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		var flags []imap.Flag
		for _, f := range m.flags {
			flags = append(flags, imap.Flag(f))
		}
		cmd := c.Append("INBOX", int64(len(m.body)), &imap.AppendOptions{Flags: flags, Time: m.date})
		cmd.Write([]byte(m.body))
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	return ln.Addr().String()
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}

type memIMAPMsg struct {
	body  string
	flags []string
	date  time.Time
}

func imapOpener(addr string) source.Opener {
	return srcimap.Opener(imapconn.Config{Addr: addr, Security: imapconn.None, User: "u", Password: "pw", Timeout: 5 * time.Second})
}

// A POP3 source has no flags and no internal date: flags are not compared,
// and the date is the one migrate derives (newest Received:, else Date:).
func TestVerifyPOP3DatesFromHeaders(t *testing.T) {
	recv := "Received: from a by b; Tue, 07 May 2024 10:00:00 +0000\r\nReceived: from c by a; Tue, 07 May 2024 09:59:00 +0000\r\n"
	withRecv := recv + "Message-ID: <r@test>\r\nDate: Mon, 06 May 2024 08:00:00 +0000\r\n\r\nreceived\r\n"
	withDate := "Message-ID: <d@test>\r\nDate: Mon, 06 May 2024 08:00:00 +0200\r\n\r\ndated\r\n"
	noDate := "Message-ID: <n@test>\r\n\r\nundated\r\n"
	recvAt := time.Date(2024, 5, 7, 10, 0, 0, 0, time.UTC)
	dateAt := time.Date(2024, 5, 6, 6, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		tgt      []memIMAPMsg
		problems []string
	}{
		{name: "as migrate stores them; target flags do not matter", tgt: []memIMAPMsg{
			{withRecv, []string{`\Seen`}, recvAt}, {withDate, []string{`\Flagged`}, dateAt}, {noDate, nil, verifyT0}}},
		{name: "dated by Date: instead of the newest Received:", tgt: []memIMAPMsg{
			{withRecv, nil, time.Date(2024, 5, 6, 8, 0, 0, 0, time.UTC)}, {withDate, nil, dateAt}, {noDate, nil, verifyT0}},
			problems: []string{"date INBOX/INBOX 1>1 <r@test> 2024-05-07T10:00:00Z/2024-05-06T08:00:00Z"}},
		{name: "wrong date from Date:", tgt: []memIMAPMsg{
			{withRecv, nil, recvAt}, {withDate, nil, dateAt.Add(2 * time.Hour)}, {noDate, nil, verifyT0}},
			problems: []string{"date INBOX/INBOX 2>2 <d@test> 2024-05-06T06:00:00Z/2024-05-06T08:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pop, err := pop3test.Start(pop3test.Options{Messages: [][]byte{[]byte(withRecv), []byte(withDate), []byte(noDate)}, UIDLs: []string{"1", "2", "3"}})
			if err != nil {
				t.Fatal(err)
			}
			defer pop.Close()
			src := func(ctx context.Context) (source.Source, error) {
				return pop3.Open(ctx, pop3.Config{Addr: pop.Addr(), Security: pop3.None, User: "user", Password: "secret", Timeout: 5 * time.Second})
			}
			rep, err := Verify(context.Background(), src, imapOpener(startMemIMAP(t, tt.tgt)), VerifyOptions{CRLF: true})
			if err != nil {
				t.Fatal(err)
			}
			if ps := problemsOf(rep); !slices.Equal(ps, tt.problems) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(ps, "\n  "), strings.Join(tt.problems, "\n  "))
			}
			if rep.FlagsChecked || !rep.DatesChecked {
				t.Errorf("flags_checked %v, dates_checked %v; want false, true (POP3 has no flags)", rep.FlagsChecked, rep.DatesChecked)
			}
			if rep.OK() != (len(tt.problems) == 0) {
				t.Errorf("OK() = %v with %d problems", rep.OK(), len(tt.problems))
			}
		})
	}
}

// What migrate stores verifies clean, flags and dates included; and after
// the target folder is emptied, verify reads the target, not the journal:
// everything is missing.
func TestVerifyAfterMigrateAndEmptiedTarget(t *testing.T) {
	ctx := context.Background()
	var msgs []memIMAPMsg
	for i := range 12 {
		flags := [][]string{nil, {`\Seen`}, {`\Seen`, `\Answered`, "$Label1"}, {`\Flagged`, `\Deleted`, `\Draft`}}[i%4]
		msgs = append(msgs, memIMAPMsg{body: vbody(fmt.Sprint("m", i), strings.Repeat("x", i)), flags: flags, date: verifyT0.Add(time.Duration(i) * time.Hour)})
	}
	msgs = append(msgs, msgs[0]) // a byte-identical twin
	src := imapOpener(startMemIMAP(t, msgs))
	dst := t.TempDir()
	tgt := func(ctx context.Context) (target.Target, error) {
		return tgtmaildir.Open(ctx, dst, tgtmaildir.Options{})
	}
	dir := t.TempDir()
	j := openJournal(t, dir)
	sum, err := Run(ctx, src, tgt, j, Options{Workers: 2})
	j.Close()
	if err != nil || sum.Copied != len(msgs) {
		t.Fatalf("migrate: copied %v, err %v", sum, err)
	}
	rep, err := Verify(ctx, src, maildirOpener(dst), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || !rep.FlagsChecked || !rep.DatesChecked || rep.Extra != 0 || len(rep.Folders) != 1 || rep.Folders[0].TargetCount != len(msgs) {
		t.Fatalf("after migrate: %+v, problems %v", rep, problemsOf(rep))
	}
	cur, _ := filepath.Glob(filepath.Join(dst, "cur", "*"))
	for _, p := range cur {
		os.Remove(p)
	}
	rep, err = Verify(ctx, src, maildirOpener(dst), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Missing != len(msgs) {
		t.Fatalf("after emptying the target: missing %d, want %d", rep.Missing, len(msgs))
	}
}

// WriteJSON streams problems one per line; the result must still be the
// report, whole.
func TestVerifyReportWriteJSON(t *testing.T) {
	d := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	reports := []*VerifyReport{
		{Folders: []FolderCheck{}},
		{Folders: []FolderCheck{{Source: "INBOX", Target: "INBOX", SourceCount: 3, TargetCount: 3}}, FlagsChecked: true},
		{Folders: []FolderCheck{
			{Source: "A", Target: "B", Missing: 1, Duplicated: 1, Problems: []Problem{
				{Kind: ProblemMissing, Folder: "A", TargetFolder: "B", SourceID: "7", MessageID: "<m@x>", Size: 10},
				{Kind: ProblemDuplicated, Folder: "A", TargetFolder: "B", SourceID: "8", Size: 11, ProblemDetail: &ProblemDetail{Copies: 2, TargetIDs: []string{"1", "2"}}},
				{Kind: ProblemFlags, Folder: "A", TargetFolder: "B", SourceID: "9", TargetID: "3", ProblemDetail: &ProblemDetail{SourceFlags: []string{`\Seen`}, TargetFlags: []string{}}},
				{Kind: ProblemDate, Folder: "A", TargetFolder: "B", SourceID: "10", TargetID: "4", ProblemDetail: &ProblemDetail{SourceDate: d, TargetDate: d.Add(time.Hour)}},
			}},
			{Source: "C", Target: "C"},
		}, Missing: 1, Duplicated: 1, DatesChecked: true},
	}
	for i, r := range reports {
		var b strings.Builder
		if err := r.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		var back VerifyReport
		if err := json.Unmarshal([]byte(b.String()), &back); err != nil {
			t.Fatalf("report %d: %v\n%s", i, err, b.String())
		}
		want, _ := json.Marshal(r)
		got, _ := json.Marshal(&back)
		if string(got) != string(want) {
			t.Errorf("report %d round trip:\n got %s\nwant %s", i, got, want)
		}
		if i == 2 {
			if !strings.Contains(b.String(), "\n        {\"kind\":\"missing\",\"folder\":\"A\",\"target_folder\":\"B\",\"source_id\":\"7\",\"message_id\":\"<m@x>\",\"size\":10},\n") {
				t.Errorf("not one problem per line, unescaped:\n%s", b.String())
			}
		}
	}
}
