package mbox

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func openFile(t *testing.T, content string, o Options) *Source {
	t.Helper()
	path := filepath.Join(t.TempDir(), "INBOX")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sorted(f []string) string {
	f = slices.Clone(f)
	sort.Strings(f)
	return strings.Join(f, " ")
}

// TestFlagsAndDates: Thunderbird's and mutt's status headers become flags,
// an expunged Thunderbird message is skipped, and the internal date is the
// "From " line's, else the newest Received, else Date.
func TestFlagsAndDates(t *testing.T) {
	file := "From - Mon Jan  1 10:00:00 2024\n" +
		"X-Mozilla-Status: 0001\nX-Mozilla-Status2: 00000000\nSubject: read\n\nbody\n\n" +
		"From - Tue Jan  2 10:00:00 2024\n" +
		"X-Mozilla-Status: 0009\nSubject: expunged, not compacted\n\nbody\n\n" +
		"From - Wed Jan  3 10:00:00 2024\n" +
		"X-Mozilla-Status: 1006\nX-Mozilla-Status2: 04000000\nX-Mozilla-Keys: $label1 work                      \nSubject: replied flagged forwarded\n\nbody\n\n" +
		"From mutt@example.com Thu Jan  4 10:00:00 2024\n" +
		"Status: RO\nX-Status: AFT\nSubject: mutt\n\nbody\n\n" +
		"From mutt@example.com Fri Jan  5 10:00:00 2024 +0200\n" +
		"Status: O\nSubject: unread, with a zone\n\nbody\n"
	s := openFile(t, file, Options{})
	ctx := context.Background()
	fs, err := s.Folders(ctx)
	if err != nil || len(fs) != 1 || fs[0].Name != "INBOX" {
		t.Fatalf("folders %v %v", fs, err)
	}
	metas, err := s.List(ctx, fs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		flags string
		date  string
	}{
		{`\Seen`, "2024-01-01T10:00:00Z"},
		{`$Forwarded $label1 $label2 \Answered \Flagged work`, "2024-01-03T10:00:00Z"},
		{`\Answered \Draft \Flagged \Seen`, "2024-01-04T10:00:00Z"},
		{``, "2024-01-05T08:00:00Z"},
	}
	if len(metas) != len(want) {
		t.Fatalf("got %d messages, want %d (the expunged one skipped)", len(metas), len(want))
	}
	for i, w := range want {
		if got := sorted(metas[i].Flags); got != w.flags {
			t.Errorf("message %d: flags %q, want %q", i, got, w.flags)
		}
		if got := metas[i].Received.UTC().Format(time.RFC3339); got != w.date {
			t.Errorf("message %d: date %s, want %s", i, got, w.date)
		}
	}
	if s.files[0].idx.expunged != 1 {
		t.Errorf("expunged count %d, want 1", s.files[0].idx.expunged)
	}

	// Without a date on the "From " line: the newest Received, else Date.
	for _, tc := range []struct{ file, want string }{
		{"From bob\nReceived: from a by b; Mon, 1 Jan 2024 10:00:00 +0000\nReceived: from c by a; Tue, 2 Jan 2024 09:00:00 +0100\nDate: Fri, 5 Jan 2024 00:00:00 +0000\n\nx\n", "2024-01-02T08:00:00Z"},
		{"From bob\nDate: Fri, 5 Jan 2024 00:00:00 +0000\n\nx\n", "2024-01-05T00:00:00Z"},
	} {
		s := openFile(t, tc.file, Options{})
		fs, err := s.Folders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		metas, err := s.List(ctx, fs[0])
		if err != nil || len(metas) != 1 {
			t.Fatalf("%v %v", metas, err)
		}
		if got := metas[0].Received.UTC().Format(time.RFC3339); got != tc.want {
			t.Errorf("date %s, want %s", got, tc.want)
		}
	}
}

// TestTakeout: X-Gmail-Labels become folders and flags; one message with
// five labels is in every labelled folder with "each" and in one with
// "first"; an unlabelled message goes to Archive.
func TestTakeout(t *testing.T) {
	originals := map[string]bool{"Subject: no labels\n\nx": true} // the last line end is the writer's
	msg := func(n int, labels string) string {
		var b strings.Builder
		m := "X-GM-THRID: 1\nX-Gmail-Labels: " + labels + "\nMessage-ID: <" + string(rune('a'+n)) + "@x>\nSubject: m\n\nFrom me\n"
		originals[m] = true
		Encode(&b, MboxRD, FromLine("17890123456789@xxx", 1700000000+int64(n)), []byte(m), false)
		return b.String()
	}
	file := msg(0, "Inbox,Starred,Work/Projects,Sent,\"Family, close\",Opened,Important,Category Updates") +
		msg(1, "Unread,Spam") +
		msg(2, "Opened,Archived") +
		msg(3, "Trash,Opened,=?UTF-8?Q?Caf=C3=A9?=") +
		msg(4, "Drafts") +
		"From nolabel@x Sat Jan  6 00:00:00 2024\nSubject: no labels\n\nx\n"
	for _, tc := range []struct {
		mode string
		want map[string][]string // folder -> flags of its messages
		uses map[string]string
	}{
		{"each", map[string][]string{
			"INBOX":         {`\Flagged \Seen`},
			"Sent":          {`\Flagged \Seen`},
			"Work/Projects": {`\Flagged \Seen`},
			"Family, close": {`\Flagged \Seen`},
			"Junk":          {``},
			"Archive":       {`\Seen`, `\Seen`},
			"Trash":         {`\Seen`},
			"Café":          {`\Seen`},
			"Drafts":        {`\Draft \Seen`},
		}, map[string]string{"Sent": `\Sent`, "Junk": `\Junk`, "Archive": `\Archive`, "Trash": `\Trash`, "Drafts": `\Drafts`}},
		{"first", map[string][]string{
			"INBOX":   {`\Flagged \Seen`},
			"Junk":    {``},
			"Archive": {`\Seen`, `\Seen`},
			"Café":    {`\Seen`},
			"Drafts":  {`\Draft \Seen`},
		}, nil},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "All mail Including Spam and Trash.mbox")
			os.WriteFile(path, []byte(file), 0o644)
			s, err := Open(context.Background(), path, Options{GmailLabels: tc.mode})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			fs, err := s.Folders(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if fs[0].Name != "INBOX" {
				t.Errorf("INBOX not first: %v", fs)
			}
			got := map[string][]string{}
			for _, f := range fs {
				if u, ok := tc.uses[f.Name]; ok && f.SpecialUse != u {
					t.Errorf("%s: special use %q, want %q", f.Name, f.SpecialUse, u)
				}
				metas, err := s.List(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range metas {
					got[f.Name] = append(got[f.Name], sorted(m.Flags))
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("folders %v, want %v", got, tc.want)
			}
			for f, w := range tc.want {
				if !slices.Equal(got[f], w) {
					t.Errorf("%s: %q, want %q", f, got[f], w)
				}
			}
			// The bytes are the message's, labels header included, in
			// every folder it is in.
			all := fetchAll(t, s)
			for f, msgs := range all {
				for _, b := range msgs {
					if !originals[string(b)] {
						t.Errorf("%s: message %q is not one of the file's", f, b)
					}
				}
			}
			if b := all["INBOX"]; len(b) != 1 || !strings.HasPrefix(string(b[0]), "X-GM-THRID: 1\nX-Gmail-Labels: Inbox,Starred,Work/Projects,Sent,") || !strings.HasSuffix(string(b[0]), "\n\nFrom me\n") {
				t.Errorf("INBOX message %q", b)
			}
			if tc.mode == "each" && (string(all["Sent"][0]) != string(all["INBOX"][0]) || string(all["Family, close"][0]) != string(all["INBOX"][0])) {
				t.Error("the five-label message differs between its folders")
			}
		})
	}
	// Label mode even when the first message has no labels (a chat, say).
	path0 := filepath.Join(t.TempDir(), "takeout.mbox")
	os.WriteFile(path0, []byte("From nolabel@x Sat Jan  6 00:00:00 2024\nSubject: no labels\n\nx\n\n"+file), 0o644)
	s0, err := Open(context.Background(), path0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s0.Close()
	if all := fetchAll(t, s0); len(all["Archive"]) != 3 || len(all["INBOX"]) != 1 {
		t.Errorf("unlabelled first message: Archive %d, INBOX %d", len(all["Archive"]), len(all["INBOX"]))
	}
	// "none": one folder named after the file.
	path := filepath.Join(t.TempDir(), "Takeout.mbox")
	os.WriteFile(path, []byte(file), 0o644)
	s, err := Open(context.Background(), path, Options{GmailLabels: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if all := fetchAll(t, s); len(all) != 1 || len(all["Takeout"]) != 6 {
		t.Errorf("none: %d folders, %d messages in Takeout", len(all), len(all["Takeout"]))
	}
}

// TestTree: a Thunderbird profile's Local Folders.
func TestTree(t *testing.T) {
	root := t.TempDir()
	one := func(subject string) string {
		return "From - Mon Jan  1 10:00:00 2024\nX-Mozilla-Status: 0001\nSubject: " + subject + "\n\nbody\n\n"
	}
	files := map[string]string{
		"Inbox":                            one("inbox"),
		"Inbox.msf":                        "// <!-- <mdb:mork:z v=\"1.4\"/> -->",
		"Sent":                             one("sent") + one("sent 2"),
		"Trash":                            "",
		"Projects":                         one("projects"),
		"Projects.sbd/Alpha":               one("alpha"),
		"Projects.sbd/Alpha.msf":           "x",
		"Projects.sbd/Alpha.sbd/Deep":      one("deep"),
		"Projects.sbd/Beta.mbox":           one("beta"),
		"Apple.mbox/mbox":                  one("apple"),
		"Apple.mbox/table_of_contents":     "binary",
		"notes.txt":                        "not mail",
		"msgFilterRules.dat":               "version=\"9\"",
		".hidden/x":                        one("hidden"),
		"Projects.sbd/Alpha.sbd/Deep.html": "<html>",
	}
	for name, c := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(context.Background(), root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all := fetchAll(t, s)
	want := map[string]int{"INBOX": 1, "Sent": 2, "Trash": 0, "Projects": 1, "Projects/Alpha": 1, "Projects/Alpha/Deep": 1, "Projects/Beta": 1, "Apple": 1}
	fs, _ := s.Folders(context.Background())
	if len(fs) != len(want) || fs[0].Name != "INBOX" {
		t.Errorf("folders %v", fs)
	}
	for f, n := range want {
		if len(all[f]) != n {
			t.Errorf("%s: %d messages, want %d", f, len(all[f]), n)
		}
	}
	open := 0
	for _, f := range s.files {
		if f.f != nil {
			open++
		}
	}
	if open > 1 {
		t.Errorf("%d files open at once, want at most 1", open)
	}
	if sk := s.Skipped(); len(sk) != 1 || sk[0].Name != "notes.txt" {
		t.Errorf("skipped %v, want notes.txt", sk)
	}
}
