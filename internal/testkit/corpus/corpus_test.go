package corpus

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestGenerateDeterministic(t *testing.T) {
	a := Generate(Options{Messages: 500, Seed: 7})
	b := Generate(Options{Messages: 500, Seed: 7})
	c := Generate(Options{Messages: 500, Seed: 8})
	if len(a) != 500 || len(b) != 500 {
		t.Fatalf("got %d and %d messages, want 500", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i].Body, b[i].Body) || a[i].Folder != b[i].Folder || !a[i].Date.Equal(b[i].Date) || !slices.Equal(a[i].Flags, b[i].Flags) {
			t.Fatalf("message %d differs between two runs with the same seed", i)
		}
	}
	if rep := Compare(a, c, CompareOptions{}); rep.Missing == 0 {
		t.Fatalf("seeds 7 and 8 give the same corpus: %v", rep)
	}
}

// TestGenerateVariety checks that the oddities the tests rely on are there.
func TestGenerateVariety(t *testing.T) {
	msgs := Generate(Options{Messages: 1000, Seed: 1})
	var noID, large, tiny, b64, rfc2047, raw8, folded, kw int
	folders := map[string]int{}
	ids := map[string]map[string]bool{}
	exact := map[string]int{}
	minDate, maxDate := time.Now(), time.Time{}
	for _, m := range msgs {
		folders[m.Folder]++
		if bytes.Contains(bytes.ReplaceAll(m.Body, []byte("\r\n"), nil), []byte("\n")) || bytes.Contains(bytes.ReplaceAll(m.Body, []byte("\r\n"), nil), []byte("\r")) {
			t.Fatalf("bare CR or LF in %s", m.MessageID)
		}
		if !bytes.HasSuffix(m.Body, []byte("\r\n")) {
			t.Fatalf("message %s does not end with CRLF", m.MessageID)
		}
		if got := MessageIDOf(m.Body); got != m.MessageID {
			t.Fatalf("MessageIDOf = %q, Message.MessageID = %q", got, m.MessageID)
		}
		for _, ln := range strings.Split(string(m.Body), "\r\n") {
			if len(ln) > 998 {
				t.Fatalf("line of %d octets in %s", len(ln), m.MessageID)
			}
		}
		if !utf8.Valid(m.Body) {
			t.Fatalf("invalid UTF-8 in %s", m.MessageID)
		}
		if m.MessageID == "" {
			noID++
		} else {
			if ids[m.MessageID] == nil {
				ids[m.MessageID] = map[string]bool{}
			}
			ids[m.MessageID][Fingerprint(m.Body)] = true
		}
		exact[m.Folder+Fingerprint(m.Body)]++
		switch {
		case len(m.Body) > 90<<10:
			large++
		case len(m.Body) < 700:
			tiny++
		}
		if len(m.Body) < 300 || len(m.Body) > 210<<10 {
			t.Errorf("size %d out of range", len(m.Body))
		}
		s := string(m.Body)
		if strings.Contains(s, "base64") {
			b64++
		}
		if strings.Contains(s, "=?utf-8?b?") {
			rfc2047++
		}
		head, _, _ := strings.Cut(s, "\r\n\r\n")
		if !isASCII(head) {
			raw8++
		}
		if strings.Contains(head, "\r\n ") {
			folded++
		}
		for _, f := range m.Flags {
			if !strings.HasPrefix(f, `\`) {
				kw++
			}
			if f == `\Deleted` {
				t.Errorf("\\Deleted in the corpus")
			}
		}
		if m.Date.Before(minDate) {
			minDate = m.Date
		}
		if m.Date.After(maxDate) {
			maxDate = m.Date
		}
		if m.Date.Nanosecond() != 0 {
			t.Fatalf("date %v is not at second precision", m.Date)
		}
	}
	sameID := 0
	for _, fps := range ids {
		if len(fps) > 1 {
			sameID++
		}
	}
	dups := 0
	for _, n := range exact {
		dups += n - 1
	}
	checks := []struct {
		what string
		n    int
	}{
		{"folders", len(folders) - 10}, {"messages without Message-ID", noID}, {"large messages", large}, {"tiny messages", tiny},
		{"base64 attachments", b64}, {"RFC 2047 headers", rfc2047}, {"raw UTF-8 headers", raw8}, {"folded headers", folded},
		{"keywords", kw}, {"shared Message-IDs", sameID}, {"exact duplicates in a folder", dups},
		{"years of dates", maxDate.Year() - minDate.Year() - 3},
	}
	for _, c := range checks {
		t.Logf("%s: %d", c.what, c.n)
		if c.n < 1 {
			t.Errorf("not enough %s (%d)", c.what, c.n)
		}
	}
	if folders["Archive/2023/Q4 Reports"] == 0 || folders["العملاء/الرياض"] == 0 {
		t.Errorf("nested folders missing: %v", folders)
	}
	// Even a tiny corpus has the oddities at fixed positions.
	small := Generate(Options{Messages: 10, Seed: 3})
	if small[1].MessageID != "" {
		t.Errorf("message 1 of a small corpus has a Message-ID")
	}
}

func TestGenerateOptions(t *testing.T) {
	in := Generate(Options{Messages: 50, Seed: 2, OnlyInbox: true})
	for _, m := range in {
		if m.Folder != "INBOX" {
			t.Fatalf("OnlyInbox gave folder %q", m.Folder)
		}
	}
	custom := Generate(Options{Messages: 50, Seed: 2, Folders: []string{"A", "B/C"}})
	for _, m := range custom {
		if m.Folder != "A" && m.Folder != "B/C" {
			t.Fatalf("Folders gave folder %q", m.Folder)
		}
	}
	big := Generate(Options{Messages: 20, Seed: 2, Big: 2, BigMB: 1})
	n := 0
	for _, m := range big {
		if len(m.Body) > 1<<20 {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("Big: 2 gave %d big messages", n)
	}
	if got := len(Generate(Options{})); got != 100 {
		t.Fatalf("default corpus has %d messages, want 100", got)
	}
}

func msg(folder, body string, date int64, flags ...string) Message {
	return Message{Folder: folder, Body: []byte(body), Date: time.Unix(date, 0), Flags: flags, MessageID: MessageIDOf([]byte(body))}
}

func TestCompare(t *testing.T) {
	a := "Message-ID: <a@x>\r\n\r\nA\r\n"
	a2 := "Message-ID: <a@x>\r\n\r\nA changed\r\n"
	b := "Message-ID: <b@x>\r\n\r\nB\r\n"
	c := "Subject: no id\r\n\r\nC\r\n"
	want := []Message{msg("INBOX", a, 10, `\Seen`), msg("INBOX", b, 20), msg("X/Y", c, 30, "$Forwarded"), msg("X/Y", c, 30)}
	tests := []struct {
		name string
		got  []Message
		opt  CompareOptions
		want Report
	}{
		{"perfect", []Message{msg("X/Y", c, 30), msg("INBOX", b, 20), msg("X/Y", c, 30, "$Forwarded"), msg("INBOX", a, 10, `\SEEN`, `\Recent`)},
			CompareOptions{Flags: true, Dates: true}, Report{}},
		{"missing duplicate copy", []Message{msg("INBOX", a, 10, `\Seen`), msg("INBOX", b, 20), msg("X/Y", c, 30)},
			CompareOptions{}, Report{Found: 3, Missing: 1}},
		{"duplicate", append(slices.Clone(want), msg("INBOX", b, 20)), CompareOptions{}, Report{Found: 5, Duplicates: 1}},
		{"wrong folder", []Message{msg("INBOX", a, 10, `\Seen`), msg("Other", b, 20), msg("X/Y", c, 30, "$Forwarded"), msg("X/Y", c, 30)},
			CompareOptions{}, Report{WrongFolder: 1}},
		{"modified", []Message{msg("INBOX", a2, 10, `\Seen`), msg("INBOX", b, 20), msg("X/Y", c, 30, "$Forwarded"), msg("X/Y", c, 30)},
			CompareOptions{}, Report{Modified: 1}},
		{"flags", []Message{msg("INBOX", a, 10), msg("INBOX", b, 20), msg("X/Y", c, 30, "$Forwarded"), msg("X/Y", c, 30, "$Forwarded")},
			CompareOptions{Flags: true}, Report{FlagMismatch: 2}},
		{"flags ignored", []Message{msg("INBOX", a, 10), msg("INBOX", b, 20), msg("X/Y", c, 30), msg("X/Y", c, 30)},
			CompareOptions{}, Report{}},
		{"dates", []Message{msg("INBOX", a, 11, `\Seen`), msg("INBOX", b, 20), msg("X/Y", c, 30, "$Forwarded"), msg("X/Y", c, 30)},
			CompareOptions{Dates: true}, Report{DateMismatch: 1}},
		{"LF needs NormalizeCRLF", []Message{msg("INBOX", strings.ReplaceAll(a, "\r\n", "\n"), 10), msg("INBOX", b, 20), msg("X/Y", c, 30), msg("X/Y", c, 30)},
			CompareOptions{}, Report{Modified: 1}},
		{"LF normalised", []Message{msg("INBOX", strings.ReplaceAll(a, "\r\n", "\n"), 10), msg("INBOX", b, 20), msg("X/Y", c, 30), msg("X/Y", c, 30)},
			CompareOptions{NormalizeCRLF: true}, Report{}},
		{"unknown extra", append(slices.Clone(want), msg("INBOX", "Subject: new\r\n\r\nN\r\n", 1)), CompareOptions{}, Report{Found: 5, Extra: 1}},
		{"empty", nil, CompareOptions{}, Report{Found: 0, Missing: 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare(want, tc.got, tc.opt)
			w := tc.want
			w.Expected = 4
			if w.Found == 0 && tc.got != nil {
				w.Found = len(tc.got)
			}
			d := got.Details
			got.Details = nil
			if fmt.Sprint(got) != fmt.Sprint(w) {
				t.Fatalf("Compare = %v\nwant      %v\ndetails: %q", got, w, d)
			}
			if got.OK() != (fmt.Sprint(w) == fmt.Sprint(Report{Expected: 4, Found: 4})) {
				t.Fatalf("OK() = %v for %v", got.OK(), got)
			}
			if !got.OK() && len(d) == 0 {
				t.Fatal("a problem without details")
			}
		})
	}
}

func TestMessageIDOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Message-ID: <a@b>\r\n\r\nbody\r\n", "<a@b>"},
		{"Subject: x\nmessage-id:\n <folded@b>\n\nMessage-ID: <body@b>\n", "<folded@b>"},
		{"Subject: x\r\n\r\nMessage-ID: <in-body@b>\r\n", ""},
		{"", ""},
	}
	for _, tc := range tests {
		if got := MessageIDOf([]byte(tc.in)); got != tc.want {
			t.Errorf("MessageIDOf(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
