package migrate

import (
	"regexp"
	"slices"
	"testing"

	"github.com/mailferry/mailferry/source"
)

func TestPlanFolders(t *testing.T) {
	tgt := []source.Folder{{Name: "INBOX"}, {Name: "Sent", SpecialUse: `\Sent`}, {Name: "Papierkorb", SpecialUse: `\Trash`}, {Name: "Spam"}}
	tests := []struct {
		name  string
		rules FolderRules
		src   source.Folder
		want  string // target name, or "skip"
	}{
		{"inbox", FolderRules{}, source.Folder{Name: "INBOX"}, "INBOX"},
		{"pop3 to folder", FolderRules{ToFolder: "Old POP3"}, source.Folder{Name: "INBOX"}, "Old POP3"},
		{"sent items by name", FolderRules{}, source.Folder{Name: "Sent Items"}, "Sent"},
		{"sent messages by name", FolderRules{}, source.Folder{Name: "Sent Messages"}, "Sent"},
		{"trash by special use", FolderRules{}, source.Folder{Name: "Deleted", SpecialUse: `\Trash`}, "Papierkorb"},
		{"deleted items by name", FolderRules{}, source.Folder{Name: "Deleted Items"}, "Papierkorb"},
		{"junk e-mail to well-known target name", FolderRules{}, source.Folder{Name: "Junk E-mail"}, "Spam"},
		{"drafts kept when target has none", FolderRules{}, source.Folder{Name: "Drafts"}, "Drafts"},
		{"nested kept", FolderRules{}, source.Folder{Name: "Archive/2024/Q1"}, "Archive/2024/Q1"},
		{"arabic kept", FolderRules{}, source.Folder{Name: "أرشيف/٢٠٢٤"}, "أرشيف/٢٠٢٤"},
		{"map parent", FolderRules{Map: map[string]string{"Archive": "Old/Archive"}}, source.Folder{Name: "Archive/2024"}, "Old/Archive/2024"},
		{"map exact", FolderRules{Map: map[string]string{"Work": "Job"}}, source.Folder{Name: "Work"}, "Job"},
		{"gmail all mail skipped", FolderRules{}, source.Folder{Name: "[Gmail]/All Mail", SpecialUse: `\All`}, "skip"},
		{"gmail important skipped by name", FolderRules{}, source.Folder{Name: "[Gmail]/Important"}, "skip"},
		{"gmail all mail kept on request", FolderRules{KeepAllMail: true}, source.Folder{Name: "[Gmail]/All Mail", SpecialUse: `\All`}, "[Gmail]/All Mail"},
		{"exclude", FolderRules{Exclude: []*regexp.Regexp{regexp.MustCompile("^Spam")}}, source.Folder{Name: "Spam"}, "skip"},
		{"include miss", FolderRules{Include: []*regexp.Regexp{regexp.MustCompile("^INBOX$")}}, source.Folder{Name: "Work"}, "skip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := planFolders(tc.rules, []source.Folder{tc.src}, tgt)[0]
			got := p.target
			if p.skip != "" {
				got = "skip"
			}
			if got != tc.want {
				t.Fatalf("%q → %q (skip %q), want %q", tc.src.Name, p.target, p.skip, tc.want)
			}
		})
	}
}

func TestParseMap(t *testing.T) {
	if _, err := ParseMap([]string{"a"}); err == nil {
		t.Fatal("want an error for a missing =")
	}
	m, err := ParseMap([]string{"Old=New", "A/B=C"})
	if err != nil || m["Old"] != "New" || m["A/B"] != "C" {
		t.Fatal(m, err)
	}
}

func TestKeyRoundTrip(t *testing.T) {
	k := Key("Archive/2024", 42, "1234")
	f, v, id, ok := splitKey(k)
	if !ok || f != "Archive/2024" || v != 42 || id != "1234" {
		t.Fatal(f, v, id, ok)
	}
}

// TestPlanFoldersChildren: a folder's children follow where the folder goes,
// whether it moved by special use or by --map (issue 11 item 3).
func TestPlanFoldersChildren(t *testing.T) {
	tgt := []source.Folder{{Name: "INBOX"}, {Name: "Archives", SpecialUse: `\Archive`}, {Name: "Spam", SpecialUse: `\Junk`}, {Name: "Archive/2024"}}
	archive := source.Folder{Name: "Archive", SpecialUse: `\Archive`}
	tests := []struct {
		name  string
		rules FolderRules
		src   []source.Folder
		want  map[string]string // source → target
	}{
		{"children of a special-use move", FolderRules{},
			[]source.Folder{archive, {Name: "Archive/2024"}, {Name: "Archive/2023"}, {Name: "Archive/2023/Q4 Reports"}},
			map[string]string{"Archive": "Archives", "Archive/2024": "Archives/2024", "Archive/2023": "Archives/2023", "Archive/2023/Q4 Reports": "Archives/2023/Q4 Reports"}},
		{"moved by its well-known name", FolderRules{},
			[]source.Folder{{Name: "Archive"}, {Name: "Archive/2024"}},
			map[string]string{"Archive": "Archives", "Archive/2024": "Archives/2024"}},
		{"grandchild without the middle folder listed", FolderRules{},
			[]source.Folder{archive, {Name: "Archive/2023/Q4 Reports"}},
			map[string]string{"Archive/2023/Q4 Reports": "Archives/2023/Q4 Reports"}},
		{"an unlisted parent moves nothing", FolderRules{},
			[]source.Folder{{Name: "Archive/2024"}},
			map[string]string{"Archive/2024": "Archive/2024"}},
		{"a prefix is not a parent", FolderRules{},
			[]source.Folder{archive, {Name: "Archived"}, {Name: "Archived/x"}},
			map[string]string{"Archived": "Archived", "Archived/x": "Archived/x"}},
		{"a child's own special use wins", FolderRules{},
			[]source.Folder{archive, {Name: "Archive/Junk", SpecialUse: `\Junk`}, {Name: "Archive/Junk/old"}},
			map[string]string{"Archive/Junk": "Spam", "Archive/Junk/old": "Spam/old"}},
		{"closest moved ancestor", FolderRules{},
			[]source.Folder{{Name: "Archive/Junk/2020/x"}, archive, {Name: "Archive/Junk", SpecialUse: `\Junk`}},
			map[string]string{"Archive/Junk/2020/x": "Spam/2020/x"}},
		{"--map of the parent wins over its special use", FolderRules{Map: map[string]string{"Archive": "Old"}},
			[]source.Folder{archive, {Name: "Archive/2024"}},
			map[string]string{"Archive": "Old", "Archive/2024": "Old/2024"}},
		{"--map of a child wins over the parent's move", FolderRules{Map: map[string]string{"Archive/2024": "Y2024"}},
			[]source.Folder{archive, {Name: "Archive/2024"}, {Name: "Archive/2024/Jan"}, {Name: "Archive/2023"}},
			map[string]string{"Archive": "Archives", "Archive/2024": "Y2024", "Archive/2024/Jan": "Y2024/Jan", "Archive/2023": "Archives/2023"}},
		{"--map wins over the folder's own special use", FolderRules{Map: map[string]string{"Old": "New"}},
			[]source.Folder{{Name: "Old/Junk", SpecialUse: `\Junk`}},
			map[string]string{"Old/Junk": "New/Junk"}},
		{"children of a skipped parent follow it", FolderRules{Exclude: []*regexp.Regexp{regexp.MustCompile("^Archive$")}},
			[]source.Folder{archive, {Name: "Archive/2024"}},
			map[string]string{"Archive": "skip", "Archive/2024": "Archives/2024"}},
		{"inbox children keep their names", FolderRules{ToFolder: "Old mail"},
			[]source.Folder{{Name: "INBOX"}, {Name: "INBOX/Sub"}},
			map[string]string{"INBOX": "Old mail", "INBOX/Sub": "INBOX/Sub"}},
		{"not moved when the target already has the name", FolderRules{},
			[]source.Folder{{Name: "Archives", SpecialUse: `\Archive`}, {Name: "Archives/2024"}},
			map[string]string{"Archives": "Archives", "Archives/2024": "Archives/2024"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for _, p := range planFolders(tc.rules, tc.src, tgt) {
				got[p.src.Name] = p.target
				if p.skip != "" {
					got[p.src.Name] = "skip"
				}
			}
			for src, want := range tc.want {
				if got[src] != want {
					t.Errorf("%q → %q, want %q", src, got[src], want)
				}
			}
		})
	}
}

func TestUnmatchedRules(t *testing.T) {
	folders := []source.Folder{{Name: "INBOX"}, {Name: "Archive/2024"}, {Name: "Sent"}}
	r := FolderRules{
		Include: []*regexp.Regexp{regexp.MustCompile("^Arch"), regexp.MustCompile("^Nothing$")},
		Exclude: []*regexp.Regexp{regexp.MustCompile("^Trash$")},
		Map:     map[string]string{"Archive": "Old", "Nope": "Foo"},
	}
	got := unmatchedRules(r, folders)
	want := []string{`--exclude "^Trash$" matches no source folder`, `--include "^Nothing$" matches no source folder`, `--map "Nope" matches no source folder`}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}
