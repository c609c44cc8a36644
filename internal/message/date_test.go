package message

import (
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339, "" = not a date
	}{
		{"Tue, 25 Nov 2025 21:28:12 +0100", "2025-11-25T20:28:12Z"},
		{"25 Nov 2025 21:28:12 +0100", "2025-11-25T20:28:12Z"},
		{"Tue 25 Nov 2025 21:28:12 +0100", "2025-11-25T20:28:12Z"},
		{"  Tue,   25   Nov  2025   21:28:12   -0000  ", "2025-11-25T21:28:12Z"},
		{"Tue, 25 Nov 2025 21:28 +0100", "2025-11-25T20:28:00Z"},
		{"Tue, 25 Nov 2025 21:28:12 +0100 (CET)", "2025-11-25T20:28:12Z"},
		{"(comment) Tue, 25 Nov (odd (nested) place) 2025 21:28:12 GMT", "2025-11-25T21:28:12Z"},
		{"Mon, 3 Mar 97 10:15:00 EST", "1997-03-03T15:15:00Z"},
		{"3 Mar 03 10:15:00 PDT", "2003-03-03T17:15:00Z"},
		{"3 Mar 103 10:15:00 UT", "2003-03-03T10:15:00Z"},
		{"1 Jan 2000 00:00:00 Z", "2000-01-01T00:00:00Z"},
		{"1 Jan 2000 00:00:00 A", "2000-01-01T00:00:00Z"},
		{"1 Jan 2000 00:00:00 CET", "2000-01-01T00:00:00Z"},
		{"1 Jan 2000 00:00:00", "2000-01-01T00:00:00Z"},
		{"1 Jan 2000 05:30:00 +05:30", "2000-01-01T00:00:00Z"},
		{"Thu, 01 January 2004 9:05:06 cst", "2004-01-01T15:05:06Z"},
		{"Fri, 28 Feb 2025 23:59:60 +0000", "2025-02-28T23:59:59Z"},
		{"25-Nov-2025 21:28:12 +0100", "2025-11-25T20:28:12Z"},
		{"Tue Nov 25 21:28:12 2025", "2025-11-25T21:28:12Z"},
		{"Tue Nov 25 21:28:12 2025 -0500", "2025-11-26T02:28:12Z"},
		{"Wed, 31 Sept 2025 10:00:00 +0000", ""},
		{"30 Feb 2025 10:00:00 +0000", ""},
		{"", ""},
		{"garbage here", ""},
		{"25 Nov 2025 24:00:00 +0000", ""},
		{"25 Nov 2025 10:00:00 +0099", ""},
		{"25 Foo 2025 10:00:00 +0000", ""},
		{"25 Nov 999 10:00:00 +0000", "2899-11-25T10:00:00Z"},
		{"25 Nov 0999 10:00:00 +0000", ""},
	}
	for _, tt := range tests {
		got, ok := ParseDate(tt.in)
		if tt.want == "" {
			if ok {
				t.Errorf("ParseDate(%q) = %v, want failure", tt.in, got)
			}
			continue
		}
		want, _ := time.Parse(time.RFC3339, tt.want)
		if !ok || !got.Equal(want) {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", tt.in, got, ok, want)
		}
	}
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"Tue, 25 Nov 2025 21:28:12 +0100 (CET)", "3 Mar 97 10:15 EST", "Tue Nov 25 21:28:12 2025", "25-Nov-2025 1:02:03 Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseDate(s)
		if !ok {
			return
		}
		if d.Year() < 1000 || d.Year() > 9999 {
			t.Fatalf("year out of range: %v", d)
		}
		// The canonical form parses back to the same instant.
		c := d.Format(time.RFC1123Z)
		d2, ok := ParseDate(c)
		if !ok || !d2.Equal(d) {
			t.Fatalf("%q -> %v -> %q -> %v %v", s, d, c, d2, ok)
		}
	})
}
