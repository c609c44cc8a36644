package mbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/source"
)

// corpus returns messages that every format can carry unchanged, plus the
// ones only some can: lines starting ">From " survive mboxrd, mboxcl2 (no
// quoting) but not mboxo or mboxcl, which unquote every ">From ".
func corpus(f Format, crlf bool) [][]byte {
	msgs := []string{
		"From: a@example.com\nTo: b@example.com\nSubject: plain\nMessage-ID: <1@x>\nDate: Mon, 1 Jan 2024 10:00:00 +0100\n\nHello.\n",
		"Subject: From lines\nMessage-ID: <2@x>\n\nFrom here on, a body line.\nFrom bob Mon Jan  1 00:00:00 2024\nFrom - Mon Jan 01 00:00:00 2024\nFrom\n",
		"Subject: no final newline\nMessage-ID: <3@x>\n\nlast line without newline",
		"Subject: 8bit\nMessage-ID: <4@x>\n\n\xe9t\xe9 \x00 NUL \xff\x00\n",
		"Subject: header only, no blank line\nMessage-ID: <5@x>\n",
		"Subject: trailing blank lines\nMessage-ID: <6@x>\n\nbody\n\n\n",
		"Subject: empty body\nMessage-ID: <7@x>\n\n",
		"Subject: long line\nMessage-ID: <8@x>\n\n" + strings.Repeat("x", 700<<10) + "\nFrom the end\n",
		"Subject: CR at the end\nMessage-ID: <9@x>\n\nbody\r",
		"Subject: From at the very start of the body\n\nFrom me Tue Feb  2 02:02:02 2021",
	}
	if f == MboxRD || f == MboxCL2 {
		msgs = append(msgs, "Subject: quoted\nMessage-ID: <10@x>\n\n>From quoted\n>>From twice\n>>>From: not a from line\n>From\n")
	}
	var out [][]byte
	for _, m := range msgs {
		if crlf {
			m = strings.ReplaceAll(m, "\n", "\r\n")
		}
		b := []byte(m)
		if f.usesLength() {
			b = WithContentLength(f, b)
		}
		out = append(out, b)
	}
	return out
}

func writeMbox(t testing.TB, path string, f Format, crlf bool, msgs [][]byte, from func(i int) string) {
	t.Helper()
	var b bytes.Buffer
	for i, m := range msgs {
		if err := Encode(&b, f, from(i), m, crlf); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func fetchAll(t testing.TB, s *Source) map[string][][]byte {
	t.Helper()
	ctx := context.Background()
	fs, err := s.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][][]byte{}
	for _, f := range fs {
		metas, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(metas))
		for i, m := range metas {
			ids[i] = m.ID
		}
		i := 0
		err = s.Fetch(ctx, f, ids, func(m source.Meta, r io.Reader) error {
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			if int64(len(b)) != metas[i].Size {
				t.Errorf("%s %s: listed size %d, fetched %d", f.Name, m.ID, metas[i].Size, len(b))
			}
			if !m.Received.Equal(metas[i].Received) {
				t.Errorf("%s %s: listed date %v, fetched %v", f.Name, m.ID, metas[i].Received, m.Received)
			}
			i++
			out[f.Name] = append(out[f.Name], b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestRoundTrip: every variant, LF and CRLF, auto-detected and forced,
// gives back every message byte for byte.
func TestRoundTrip(t *testing.T) {
	for _, f := range []Format{MboxO, MboxRD, MboxCL, MboxCL2} {
		for _, crlf := range []bool{false, true} {
			for _, force := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/crlf=%v/forced=%v", f, crlf, force), func(t *testing.T) {
					dir := t.TempDir()
					path := filepath.Join(dir, "Archive.mbox")
					msgs := corpus(f, crlf)
					writeMbox(t, path, f, crlf, msgs, func(i int) string { return FromLine("bob@example.com", 1700000000+int64(i)*3600) })
					o := Options{}
					if force {
						o.Format = f
					}
					s, err := Open(context.Background(), path, o)
					if err != nil {
						t.Fatal(err)
					}
					defer s.Close()
					got := fetchAll(t, s)["Archive"]
					if len(got) != len(msgs) {
						t.Fatalf("got %d messages, want %d", len(got), len(msgs))
					}
					for i := range msgs {
						if !bytes.Equal(got[i], msgs[i]) {
							t.Errorf("message %d differs:\n got %.200q\nwant %.200q", i, got[i], msgs[i])
						}
					}
					want := f
					if f == MboxO {
						want = MboxRD // the same reading without ">>From " lines
					}
					if !force && s.files[0].format != want {
						t.Errorf("detected %s, want %s", s.files[0].format, want)
					}
					if s.files[0].crlf != crlf {
						t.Errorf("detected crlf=%v", s.files[0].crlf)
					}
				})
			}
		}
	}
}

// TestQuotingPerVariant: the same file bytes read under each variant undo
// exactly that variant's quoting.
func TestQuotingPerVariant(t *testing.T) {
	body := "Subject: q\n\n>From one\n>>From two\nFrom three\n"
	file := "From a Mon Jan  1 00:00:00 2024\n" + body + "\n"
	want := map[Format]string{
		MboxO:   "Subject: q\n\nFrom one\n>>From two\nFrom three\n",
		MboxRD:  "Subject: q\n\nFrom one\n>From two\nFrom three\n",
		MboxCL2: body,
	}
	for f, w := range want {
		path := filepath.Join(t.TempDir(), "q")
		os.WriteFile(path, []byte(file), 0o644)
		s, err := Open(context.Background(), path, Options{Format: f})
		if err != nil {
			t.Fatal(err)
		}
		got := fetchAll(t, s)["q"]
		s.Close()
		if len(got) != 1 || string(got[0]) != w {
			t.Errorf("%s: got %q, want %q", f, got, w)
		}
	}
}

func TestFromLine(t *testing.T) {
	tests := []struct {
		line string
		ok   bool
		want string
	}{
		{"From MAILER-DAEMON Mon Jan  1 00:00:00 2024", true, "2024-01-01T00:00:00Z"},
		{"From - Mon Jan 01 10:11:12 2024", true, "2024-01-01T10:11:12Z"},
		{"From 1789012345678901234@xxx Wed Mar 04 12:34:56 +0000 2020", true, "2020-03-04T12:34:56Z"},
		{"From bob@x Wed Mar  4 12:34:56 2020 +0200", true, "2020-03-04T10:34:56Z"},
		{"From bob@x Wed Mar  4 12:34 2020", true, "2020-03-04T12:34:00Z"},
		{"From  Wed Mar  4 12:34:56 2020", true, "2020-03-04T12:34:56Z"},
		{"From bob@x Wed Mar  4 12:34:56 2020 remote from y", true, "2020-03-04T12:34:56Z"},
		{"From here on, we talk.", false, ""},
		{"From: bob", false, ""},
		{"From bob", false, ""},
	}
	for _, tc := range tests {
		d, ok := parseFromLine([]byte(tc.line))
		if ok != tc.ok || ok && d.UTC().Format(time.RFC3339) != tc.want {
			t.Errorf("%q: got %v %v, want %v %s", tc.line, d.UTC().Format(time.RFC3339), ok, tc.ok, tc.want)
		}
	}
}
