package maildirpp

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	tests := []struct {
		name, dir string
	}{
		{"INBOX", ""},
		{"Sent", ".Sent"},
		{"A/B", ".A.B"},
		{"أرشيف", ".&BiMGMQY0BkoGQQ-"},
		{"العملاء", ".&BicGRAY5BkUGRAYnBiE-"},
		{"Archive/أرشيف/2024", ".Archive.&BiMGMQY0BkoGQQ-.2024"},
		{"Sent Items", ".Sent Items"},
		{"R&D", ".R&-D"},
		{"v1.2", `.v1\2e2`},
		{`back\slash`, `.back\5cslash`},
		{`a\2e`, `.a\5c2e`},
		{"a.b/c", `.a\2eb.c`},
		{"...", `.\2e\2e\2e`},
		{"x.", `.x\2e`},
		{"ال.عملاء", `.&BicGRA-\2e&BjkGRQZEBicGIQ-`},
		{"~home", ".~home"},
		{"Entwürfe", ".Entw&APw-rfe"},
		{"日本語", ".&ZeVnLIqe-"},
		{"INBOX/Sub", ".INBOX.Sub"},
		{"a/b/c/d/e/f/g/h", ".a.b.c.d.e.f.g.h"},
		{"😀", ".&2D3eAA-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, err := EncodeFolder(tt.name)
			if err != nil {
				t.Fatalf("EncodeFolder(%q): %v", tt.name, err)
			}
			if dir != tt.dir {
				t.Errorf("EncodeFolder(%q) = %q, want %q", tt.name, dir, tt.dir)
			}
			if strings.Contains(dir, "/") || strings.Contains(dir, "..") {
				t.Errorf("dir %q contains / or ..", dir)
			}
			back, err := DecodeFolder(dir)
			if err != nil {
				t.Fatalf("DecodeFolder(%q): %v", dir, err)
			}
			if back != tt.name {
				t.Errorf("DecodeFolder(%q) = %q, want %q", dir, back, tt.name)
			}
		})
	}
}

func TestSafeFolder(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name    string
		want    string // "" = only check properties
		changed bool
	}{
		{"Sent", "Sent", false},
		{"../../etc", "__/__/etc", true},
		{"a/../../b", "a/__/__/b", true},
		{"./x", "_/x", true},
		{"a\x00b", "a_b", true},
		{"tab\there", "tab_here", true},
		{"del\x7f", "del_", true},
		{"bad\xffutf8", "bad_utf8", true},
		{"/lead//trail/", "lead/trail", true},
		{"", "_", true},
		{"/", "_", true},
		{"inbox", "INBOX", true},
		{"Inbox/Sub", "INBOX/Sub", true},
		{long, "", true},
		{strings.Repeat("أرشيف/", 60) + "x", "", true},
		{strings.Repeat("a/", 200) + "b", "", true},
	}
	for _, tt := range tests {
		name := tt.name
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			safe, changed := SafeFolder(tt.name)
			if changed != tt.changed {
				t.Errorf("changed = %v, want %v", changed, tt.changed)
			}
			if tt.want != "" && safe != tt.want {
				t.Errorf("SafeFolder(%q) = %q, want %q", tt.name, safe, tt.want)
			}
			// The safe name is stable, encodable, short enough and decodes back.
			if again, ch := SafeFolder(safe); ch || again != safe {
				t.Errorf("SafeFolder not idempotent: %q -> %q", safe, again)
			}
			dir, err := EncodeFolder(safe)
			if err != nil {
				t.Fatalf("EncodeFolder(safe %q): %v", safe, err)
			}
			if len(dir) > MaxDirName {
				t.Errorf("dir is %d bytes", len(dir))
			}
			if strings.Contains(dir, "/") || dir == "." || dir == ".." || strings.Contains(dir, "..") {
				t.Errorf("dir %q can escape", dir)
			}
			back, err := DecodeFolder(dir)
			if err != nil || back != safe {
				t.Errorf("DecodeFolder(%q) = %q, %v; want %q", dir, back, err, safe)
			}
			if changed {
				if _, err := EncodeFolder(tt.name); err == nil {
					t.Errorf("EncodeFolder(%q) accepted an unsafe name", tt.name)
				}
			}
		})
	}
	// Distinct long names stay distinct.
	a, _ := SafeFolder(long + "a")
	b, _ := SafeFolder(long + "b")
	if a == b {
		t.Errorf("two long names map to the same safe name %q", a)
	}
}

func TestDecodeFolderRejects(t *testing.T) {
	for _, dir := range []string{"..", "Sent", ".a..b", ".a.", ".&AC8-", ".&AAA-", ".&ZeVnLIqe", ".&A-", ".a/b", `.\2e\2e`, `.\2f`, "./x"} {
		if name, err := DecodeFolder(dir); err == nil {
			t.Errorf("DecodeFolder(%q) = %q, want an error", dir, name)
		}
	}
	// Non-canonical but valid modified UTF-7 is accepted.
	for dir, want := range map[string]string{".&AGEAYg-": "ab", ".a&AC4-b": "a.b", `.a\b`: `a\b`, `.a\2`: `a\2`, `.\41`: "A", `.a\zz`: `a\zz`} {
		if name, err := DecodeFolder(dir); err != nil || name != want {
			t.Errorf("DecodeFolder(%q) = %q, %v; want %q", dir, name, err, want)
		}
	}
}

func TestList(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"", ".Sent", ".&BicGRAY5BkUGRAYnBiE-", ".&BicGRAY5BkUGRAYnBiE-.2024", `.a\2eb`, ".bad&", ".INBOX"} {
		for _, s := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(root, d, s), 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	os.Mkdir(filepath.Join(root, ".nocur"), 0o700)
	os.WriteFile(filepath.Join(root, KeywordsFile), nil, 0o600)
	got, skipped, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{"INBOX", ""}, {"Sent", ".Sent"}, {"a.b", `.a\2eb`}, {"العملاء", ".&BicGRAY5BkUGRAYnBiE-"}, {"العملاء/2024", ".&BicGRAY5BkUGRAYnBiE-.2024"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	if !reflect.DeepEqual(skipped, []string{".INBOX", ".bad&"}) {
		t.Errorf("skipped = %q", skipped)
	}
}
