package message

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestScannerFixtures(t *testing.T) {
	fallback := utc("2000-01-01T00:00:00Z")
	tests := []struct {
		file     string
		msgID    string
		date     string // RFC 3339 UTC, "" = none
		received string
		internal string
		bareLF   int
	}{
		{"postfix-chain.eml", "<20251125202810.9E8D7C6B5A@mail.example.org>", "2025-11-25T20:28:10Z", "2025-11-25T20:28:14Z", "2025-11-25T20:28:14Z", 0},
		{"bare-lf-1997.eml", "<199703031514.KAA01234@mailhost.old.example>", "1997-03-03T15:14:50Z", "1997-03-03T15:15:00Z", "1997-03-03T15:15:00Z", 10},
		{"folded-8bit.eml", "", "2025-02-28T23:59:59Z", "2025-03-01T08:00:00Z", "2025-03-01T08:00:00Z", 2},
		{"no-body.eml", "", "", "", "2000-01-01T00:00:00Z", 0},
		{"empty-header.eml", "", "", "", "2000-01-01T00:00:00Z", 0},
	}
	for _, tt := range tests {
		data, err := os.ReadFile(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		// Feed the bytes in every chunk size from 1 to 7 and all at once.
		for _, chunk := range []int{1, 2, 3, 7, len(data)} {
			var s Scanner
			for p := data; len(p) > 0; {
				n := min(chunk, len(p))
				if w, err := s.Write(p[:n]); w != n || err != nil {
					t.Fatalf("Write = %d, %v", w, err)
				}
				p = p[n:]
			}
			name := tt.file + "/" + string(rune('0'+chunk%10))
			if got := s.MessageID(); got != tt.msgID {
				t.Errorf("%s: MessageID = %q, want %q", name, got, tt.msgID)
			}
			check := func(what string, got time.Time, ok bool, want string) {
				t.Helper()
				if want == "" {
					if ok {
						t.Errorf("%s: %s = %v, want none", name, what, got)
					}
					return
				}
				if !ok || !got.Equal(utc(want)) {
					t.Errorf("%s: %s = %v (%v), want %s", name, what, got, ok, want)
				}
			}
			d, ok := s.Date()
			check("Date", d, ok, tt.date)
			r, ok := s.NewestReceived()
			check("NewestReceived", r, ok, tt.received)
			check("InternalDate", s.InternalDate(fallback), true, tt.internal)
			if s.BareLF() != tt.bareLF {
				t.Errorf("%s: BareLF = %d, want %d", name, s.BareLF(), tt.bareLF)
			}
		}
	}
}

func TestScannerBoundsHeader(t *testing.T) {
	var s Scanner
	big := "X-Big: " + strings.Repeat("a", MaxHeader) + "\r\n"
	io.WriteString(&s, big)
	io.WriteString(&s, "Message-ID: <late@x>\r\n\r\nbody\n")
	if len(s.hdr) > MaxHeader {
		t.Errorf("kept %d header bytes", len(s.hdr))
	}
	if s.MessageID() != "" {
		t.Errorf("read a header beyond the bound: %q", s.MessageID())
	}
	if s.BareLF() != 1 {
		t.Errorf("BareLF = %d, want 1 (counted past the header bound)", s.BareLF())
	}
	// The header ends at the blank line: later bytes are not kept.
	var s2 Scanner
	io.WriteString(&s2, "Subject: x\n\n")
	io.WriteString(&s2, strings.Repeat("body\n", 1000))
	if len(s2.hdr) != len("Subject: x\n") {
		t.Errorf("kept %d bytes after the header", len(s2.hdr))
	}
}

func TestCRLFWriter(t *testing.T) {
	tests := []struct{ in, out string }{
		{"", ""},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"lone\rcr\r\n", "lone\rcr\r\n"},
		{"\n\n", "\r\n\r\n"},
		{"\r\r\n\n", "\r\r\n\r\n"},
		{"end\r", "end\r"},
	}
	for _, tt := range tests {
		for chunk := 1; chunk <= len(tt.in)+1; chunk++ {
			var out bytes.Buffer
			w := NewCRLFWriter(&out)
			for p := []byte(tt.in); len(p) > 0; {
				n := min(chunk, len(p))
				if m, err := w.Write(p[:n]); m != n || err != nil {
					t.Fatalf("Write = %d, %v", m, err)
				}
				p = p[n:]
			}
			if out.String() != tt.out {
				t.Errorf("%q chunk %d: got %q, want %q", tt.in, chunk, out.String(), tt.out)
			}
			if want := (len(tt.out) - len(tt.in)); w.Converted() != want {
				t.Errorf("%q chunk %d: Converted = %d, want %d", tt.in, chunk, w.Converted(), want)
			}
		}
	}
}

// refCRLF is the simple reference: convert every LF whose previous byte in
// the whole stream is not CR.
func refCRLF(in []byte) ([]byte, int) {
	var out []byte
	n := 0
	for i, c := range in {
		if c == '\n' && (i == 0 || in[i-1] != '\r') {
			out = append(out, '\r')
			n++
		}
		out = append(out, c)
	}
	return out, n
}

func FuzzCRLFWriter(f *testing.F) {
	f.Add([]byte("a\nb\r\nc\rd\n"), uint8(1))
	f.Add([]byte("\r\n\n\r\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		c := int(chunk)%16 + 1
		var out bytes.Buffer
		w := NewCRLFWriter(&out)
		var s Scanner
		for p := in; len(p) > 0; {
			n := min(c, len(p))
			w.Write(p[:n])
			s.Write(p[:n])
			p = p[n:]
		}
		want, n := refCRLF(in)
		if !bytes.Equal(out.Bytes(), want) || w.Converted() != n || s.BareLF() != n {
			t.Fatalf("chunk %d: got %q (%d, scanner %d), want %q (%d)", c, out.Bytes(), w.Converted(), s.BareLF(), want, n)
		}
	})
}

func BenchmarkScannerCRLF(b *testing.B) {
	msg, err := os.ReadFile(filepath.Join("testdata", "bare-lf-1997.eml"))
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("Some body text of a typical line length, seventy-odd characters.\n"), 16000)
	msg = append(msg, body...) // ~1 MB, all bare LF
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var s Scanner
		w := NewCRLFWriter(io.Discard)
		if _, err := io.CopyBuffer(io.MultiWriter(&s, w), bytes.NewReader(msg), make([]byte, 32<<10)); err != nil {
			b.Fatal(err)
		}
		_ = s.MessageID()
	}
}
