package imapconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
)

var small = Limits{MaxLine: 100, MaxLiteral: 50, MaxBody: 1000}

// TestScanner: what the server sends, cut in chunks of every size, is
// refused exactly when a limit is broken; long lines inside literals never
// count as protocol lines.
func TestScanner(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct {
		name, wire string
		refuse     string // substring of the refusal, "" to accept
	}{
		{"plain lines", "* OK hello\r\n* CAPABILITY IMAP4rev1\r\nA1 OK done\r\n", ""},
		{"endless line", "* OK " + long, "response line longer than 100 bytes"},
		{"many short lines", strings.Repeat("* 1 EXISTS\r\n", 100), ""},
		{"small literal in LIST", "* LIST () \"/\" {5}\r\nINBOX\r\n", ""},
		{"huge literal in LIST", "* LIST () \"/\" {4000000000}\r\nINBOX", `literal of 4000000000 octets (4.0 GB) in a "* LIST" response`},
		{"literal just over", "* LIST () \"/\" {51}\r\n", "literal of 51 octets"},
		{"literals summed per response", "* LIST () {30}\r\n" + long[:30] + " {30}\r\n" + long[:30] + "\r\n", "literal of 30 octets"},
		{"literals of separate responses", "* LIST () {30}\r\n" + long[:30] + "\r\n* LIST () {30}\r\n" + long[:30] + "\r\n", ""},
		{"absurd digits", "* LIST () {99999999999999999999999}\r\n", "literal of"},
		{"body literal with long lines", "* 1 FETCH (UID 5 BODY[] {400}\r\n" + long + long + ")\r\n", ""},
		{"body literal with origin", "* 1 FETCH (BODY[TEXT]<0> {400}\r\n" + long + long + ")\r\n", ""},
		{"rfc822 body", "* 12 fetch (RFC822 {400}\r\n" + long + long + ")\r\n", ""},
		{"literal8 body", "* 1 FETCH (BINARY[1] ~{400}\r\n" + long + long + ")\r\n", ""},
		{"body too large", "* 1 FETCH (UID 5 BODY[] {1001}\r\n", "message body of 1001 octets"},
		{"body-like literal outside FETCH", "* OK [ALERT] {400}\r\n" + long, "literal of 400 octets"},
		{"line after a body counts afresh", "* 1 FETCH (BODY[] {10}\r\n0123456789)\r\n* OK " + long, "longer than 100"},
		{"braces in text", "* OK {not a literal}\r\n* OK {12a}\r\n", ""},
		{"non-sync literal", "* LIST () \"/\" {60+}\r\n", "literal of 60 octets"},
	}
	for _, tc := range tests {
		for _, chunk := range []int{1, 3, 7, 64, 4096} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, chunk), func(t *testing.T) {
				s := scanner{lim: small.withDefaults()}
				var what string
				for b := []byte(tc.wire); len(b) > 0 && what == ""; {
					n := min(chunk, len(b))
					what = s.scan(b[:n])
					b = b[n:]
				}
				if tc.refuse == "" && what != "" {
					t.Fatalf("refused: %s", what)
				}
				if tc.refuse != "" && !strings.Contains(what, tc.refuse) {
					t.Fatalf("got %q, want a refusal with %q", what, tc.refuse)
				}
			})
		}
	}
}

// TestLimitConn: a refusal ends the connection with a sticky error that
// names the server, and Classify marks it Fatal even after go-imap has
// turned it into text.
func TestLimitConn(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	go func() {
		io.WriteString(b, "* OK hi\r\n* LIST () \"/\" {4000000000}\r\nINBOX")
		b.Close()
	}()
	c := newLimitConn(a, a, "mail.example:143", Limits{}, []byte("* OK replayed\r\n"))
	got, err := io.ReadAll(c)
	if !strings.HasPrefix(string(got), "* OK replayed\r\n") {
		t.Errorf("the replayed greeting is missing: %q", got)
	}
	var le *LimitError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "imap mail.example:143 announced a literal of 4000000000 octets") {
		t.Fatalf("err = %v", err)
	}
	if _, err2 := c.Read(make([]byte, 10)); err2 != err {
		t.Errorf("the error is not sticky: %v", err2)
	}
	text := fmt.Errorf("in response-data: in LIST: %v", err) // what go-imap does
	if k := failure.KindOf(Classify(text)); k != failure.Fatal {
		t.Errorf("Classify: kind %v, want fatal", k)
	}
}

// TestDialRefusesHostileGreeting: an endless greeting line ends Dial
// quickly with a Fatal error naming the server, for every security mode
// the line can reach (plain; STARTTLS reads the greeting itself).
func TestDialRefusesHostileGreeting(t *testing.T) {
	for _, sec := range []Security{None, STARTTLS} {
		t.Run(sec.String(), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(c, "* OK ")
				chunk := []byte(strings.Repeat("a", 64<<10))
				for {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}()
			start := time.Now()
			_, err = Dial(context.Background(), Config{Addr: ln.Addr().String(), Security: sec, User: "u", Password: "p",
				Timeout: 5 * time.Second, Limits: Limits{MaxLine: 1 << 20}})
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), ln.Addr().String()+" sent a response line longer than 1 MiB") || failure.KindOf(err) != failure.Fatal {
				t.Fatalf("err = %v (kind %v)", err, failure.KindOf(err))
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// BenchmarkScanner: the cost of following the framing of a FETCH stream
// (64 KiB bodies; their octets are skipped in bulk).
func BenchmarkScanner(b *testing.B) {
	body := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef012345678901234\n", 1024)
	var w strings.Builder
	for i := 1; i <= 16; i++ {
		fmt.Fprintf(&w, "* %d FETCH (UID %d FLAGS (\\Seen) INTERNALDATE \"01-Jan-2020 00:00:00 +0000\" RFC822.SIZE %d BODY[] {%d}\r\n%s)\r\n", i, i, len(body), len(body), body)
	}
	wire := []byte(w.String())
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		s := scanner{lim: DefaultLimits}
		for p := wire; len(p) > 0; {
			n := min(32<<10, len(p))
			if what := s.scan(p[:n]); what != "" {
				b.Fatal(what)
			}
			p = p[n:]
		}
	}
}
