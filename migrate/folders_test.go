package migrate

import (
	"regexp"
	"testing"

	"mailferry/source"
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
