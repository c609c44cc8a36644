package maildirpp

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseFileName(t *testing.T) {
	tests := []struct {
		base, unique string
		size         int64
		flags        string
	}{
		{"1700000000.M1P2.host,S=1234:2,FS", "1700000000.M1P2.host", 1234, "FS"},
		{"1700000000.M1P2.host,S=1234,W=1260:2,Sab", "1700000000.M1P2.host", 1234, "Sab"},
		{"1700000000.M1P2.host", "1700000000.M1P2.host", -1, ""},
		{"1700000000.M1P2.host:2,", "1700000000.M1P2.host", -1, ""},
		{"u,S=x:2,S", "u", -1, "S"},
		{"u:1,foo", "u", -1, ""},
	}
	for _, tt := range tests {
		u, s, f := ParseFileName(tt.base)
		if u != tt.unique || s != tt.size || f != tt.flags {
			t.Errorf("ParseFileName(%q) = %q, %d, %q; want %q, %d, %q", tt.base, u, s, f, tt.unique, tt.size, tt.flags)
		}
	}
	if got := FileName("u", 12, "RS"); got != "u,S=12:2,RS" {
		t.Errorf("FileName = %q", got)
	}
}

func TestFlagsLetters(t *testing.T) {
	k := &Keywords{}
	k.Names[0] = "$Junk"
	k.Names[3] = "Work"
	tests := []struct {
		flags   []string
		letters string
		back    []string
	}{
		{nil, "", nil},
		{[]string{`\Seen`}, "S", []string{`\Seen`}},
		{[]string{`\Seen`, `\Answered`, `\Flagged`, `\Draft`, `\Deleted`}, "DFRST", []string{`\Draft`, `\Flagged`, `\Answered`, `\Seen`, `\Deleted`}},
		{[]string{`work`, `\seen`, `$Junk`, `\Recent`, `Unknown`, `\Seen`}, "Sad", []string{`\Seen`, `$Junk`, `Work`}},
	}
	for _, tt := range tests {
		got := FlagsToLetters(tt.flags, k)
		if got != tt.letters {
			t.Errorf("FlagsToLetters(%q) = %q, want %q", tt.flags, got, tt.letters)
		}
		if back := LettersToFlags(got, k); !reflect.DeepEqual(back, tt.back) {
			t.Errorf("LettersToFlags(%q) = %q, want %q", got, back, tt.back)
		}
	}
	if got := LettersToFlags("PSz", k); !reflect.DeepEqual(got, []string{`$Forwarded`, `\Seen`}) {
		t.Errorf("LettersToFlags(PSz) = %q", got)
	}
}

func TestKeywordsFile(t *testing.T) {
	root := t.TempDir()
	k, err := ReadKeywords(root)
	if err != nil || k.Names != [MaxKeywords]string{} {
		t.Fatalf("missing file: %v %v", k, err)
	}
	os.WriteFile(filepath.Join(root, KeywordsFile), []byte("0 $Junk\n3 Work\nbad line\n99 Over\n1 \n"), 0o600)
	k, err = ReadKeywords(root)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := k.Letter("work"); !ok || c != 'd' {
		t.Errorf("Letter(work) = %c %v", c, ok)
	}
	if changed, ok := k.Add("New"); !changed || !ok {
		t.Errorf("Add(New) = %v %v", changed, ok)
	}
	if c, _ := k.Letter("New"); c != 'b' {
		t.Errorf("New got letter %c, want b (first free)", c)
	}
	if changed, ok := k.Add("$junk"); changed || !ok {
		t.Errorf("Add existing = %v %v", changed, ok)
	}
	if err := WriteKeywords(root, k); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, KeywordsFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat: %v %v", fi, err)
	}
	data, _ := os.ReadFile(filepath.Join(root, KeywordsFile))
	if string(data) != "0 $Junk\n1 New\n3 Work\n" {
		t.Errorf("file = %q", data)
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 {
		t.Errorf("leftover files: %v", ents)
	}
	full := &Keywords{}
	for i := range full.Names {
		full.Names[i] = string(rune('A' + i))
	}
	if _, ok := full.Add("more"); ok {
		t.Error("Add on a full table succeeded")
	}
}

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{"a.b": true, "": false, ".x": false, "a/b": false, "a:b": false, "a,b": false, "a b": false} {
		if ValidUnique(s) != want {
			t.Errorf("ValidUnique(%q) != %v", s, want)
		}
	}
	for s, want := range map[string]bool{"$Junk": true, "": false, `\Seen`: false, "a b": false, "a(": false} {
		if ValidKeyword(s) != want {
			t.Errorf("ValidKeyword(%q) != %v", s, want)
		}
	}
}
