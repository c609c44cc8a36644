package pop3conn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/testkit/pop3test"
)

// dotStuff is the encoder the dot reader inverts: the test server's.
func dotStuff(msg []byte) []byte {
	var b bytes.Buffer
	pop3test.DotStuff(&b, msg)
	return b.Bytes()
}

// expected is what a message looks like after the round trip: POP3
// cannot carry a message without a final line ending, so one is added.
func expected(msg []byte) []byte {
	if len(msg) > 0 && msg[len(msg)-1] != '\n' {
		return append(append([]byte(nil), msg...), '\r', '\n')
	}
	return msg
}

func readDot(wire string, bufSize int) (body string, rest string, err error) {
	br := bufio.NewReaderSize(strings.NewReader(wire), bufSize)
	b, err := io.ReadAll(newDotReader(br))
	r, _ := io.ReadAll(br)
	return string(b), string(r), err
}

func TestDotReader(t *testing.T) {
	tests := []struct {
		name, wire, body string
		err              error
	}{
		{"empty", ".\r\n", "", nil},
		{"plain", "a\r\nb\r\n.\r\n", "a\r\nb\r\n", nil},
		{"stuffed", "..a\r\n...\r\n.\r\n", ".a\r\n..\r\n", nil},
		{"double dot line", "..\r\n.\r\n", ".\r\n", nil},
		{"bare lf kept", "a\nb\n\r\n.\r\n", "a\nb\n\r\n", nil},
		{"bare lf then dot", "a\n..b\n.\r\n", "a\n.b\n", nil},
		{"lf terminator", "a\n.\n", "a\n", nil},
		{"cr inside", "a\rb\r\n.\r\n", "a\rb\r\n", nil},
		{"dot cr not terminator", ".\rx\r\n.\r\n", "\rx\r\n", nil},
		{"long line", strings.Repeat("y", 50000) + "\r\n.\r\n", strings.Repeat("y", 50000) + "\r\n", nil},
		{"truncated", "a\r\nb", "a\r\nb", errTruncated},
		{"truncated at dot", "a\r\n.", "a\r\n", errTruncated},
		{"truncated at dot cr", "a\r\n.\r", "a\r\n", errTruncated},
		{"no terminator", "a\r\n", "a\r\n", errTruncated},
	}
	for _, tt := range tests {
		for _, size := range []int{16, 4096} {
			body, rest, err := readDot(tt.wire+"+OK next", size)
			if tt.err != nil {
				body, _, err = readDot(tt.wire, size)
				rest = "+OK next"
			}
			if !errors.Is(err, tt.err) && err != tt.err {
				t.Errorf("%s/%d: err = %v, want %v", tt.name, size, err, tt.err)
			}
			if body != tt.body {
				t.Errorf("%s/%d: body = %q, want %q", tt.name, size, clip([]byte(body)), clip([]byte(tt.body)))
			}
			if rest != "+OK next" {
				t.Errorf("%s/%d: reader consumed past the terminator: rest %q", tt.name, size, rest)
			}
		}
	}
}

func FuzzDotReader(f *testing.F) {
	for _, s := range []string{"", ".", "..", "a\r\n.\r\n", "\n.\n", ".\r", "x\ny", "\r\n.\r\n.."} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		wire := string(dotStuff(msg)) + "TRAILER"
		for _, size := range []int{16, 4096} {
			body, rest, err := readDot(wire, size)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if body != string(expected(msg)) {
				t.Fatalf("round trip of %q gave %q", msg, body)
			}
			if rest != "TRAILER" {
				t.Fatalf("rest = %q", rest)
			}
		}
	})
}

func BenchmarkDotReader(b *testing.B) {
	var msg bytes.Buffer
	for msg.Len() < 1<<20 {
		msg.WriteString("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod\r\n")
		msg.WriteString(".a line that needs stuffing\r\n")
	}
	wire := dotStuff(msg.Bytes())
	b.SetBytes(int64(msg.Len()))
	b.ResetTimer()
	r := bytes.NewReader(wire)
	br := bufio.NewReaderSize(r, 32<<10)
	for i := 0; i < b.N; i++ {
		r.Reset(wire)
		br.Reset(r)
		n, err := io.Copy(io.Discard, newDotReader(br))
		if err != nil || n != int64(msg.Len()) {
			b.Fatalf("n=%d err=%v", n, err)
		}
	}
}
