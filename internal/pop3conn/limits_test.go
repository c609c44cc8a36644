package pop3conn

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/failure"
)

// TestDotReaderLimit: a response longer than its limit fails with a
// *TooLongError once the limit is passed; one within it reads whole.
func TestDotReaderLimit(t *testing.T) {
	tests := []struct {
		name, wire string
		limit      int64
		want       string // body, when no error is expected
		tooLong    bool
	}{
		{"fits exactly", "abc\r\n.\r\n", 5, "abc\r\n", false},
		{"stuffed dot counts", "..b\r\n.\r\n", 4, "", true},
		{"one over", "abcd\r\n.\r\n", 5, "", true},
		{"no limit", strings.Repeat("x\r\n", 1000) + ".\r\n", 0, strings.Repeat("x\r\n", 1000), false},
		{"never ends", strings.Repeat("no end in sight\r\n", 10000), 4096, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dr := newDotReader(bufio.NewReaderSize(strings.NewReader(tc.wire), 16))
			dr.limit, dr.announced = tc.limit, 1
			b, err := io.ReadAll(dr)
			var tl *TooLongError
			if tc.tooLong {
				if !errors.As(err, &tl) || tl.Limit != tc.limit {
					t.Fatalf("err = %v, want a TooLongError with limit %d", err, tc.limit)
				}
				if int64(len(b)) > tc.limit {
					t.Fatalf("%d bytes delivered past the limit %d", len(b), tc.limit)
				}
				return
			}
			if err != nil || string(b) != tc.want {
				t.Fatalf("got %q, %v; want %q", b, err, tc.want)
			}
		})
	}
}

// TestRetrPastListedSize: a RETR answer far longer than LIST announced
// fails that message (failure.Message) with an error naming the server and
// the announced size, and the session is closed; one within the slack is
// delivered whole.
func TestRetrPastListedSize(t *testing.T) {
	body := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz\r\n", 30000) // 1.14 MB
	tests := []struct {
		name, listed string
		ok           bool
	}{
		{"within twice the size plus 1 MiB", "1 600000", true},
		{"LIST said 1000 octets", "1 1000", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := dialScript(t, cfgFor(""), concat(loginUserPass, []string{
				"C: LIST", "S: +OK", "S: " + tc.listed, "S: .",
				"C: RETR 1", "S: +OK", "R: " + body, "S: .",
			})...)
			ctx := context.Background()
			if _, err := c.List(ctx); err != nil {
				t.Fatal(err)
			}
			var n int64
			err := c.RetrMany(ctx, []int{1}, func(_ int, r io.Reader) error {
				var err error
				n, err = io.Copy(io.Discard, r)
				return err
			})
			if tc.ok {
				if err != nil || n != int64(len(body)) {
					t.Fatalf("read %d of %d bytes: %v", n, len(body), err)
				}
				return
			}
			var tl *TooLongError
			if !errors.As(err, &tl) || tl.Announced != 1000 || tl.Limit != 2*1000+1<<20 {
				t.Fatalf("err = %v, want a TooLongError for 1000 announced octets", err)
			}
			if failure.KindOf(err) != failure.Message {
				t.Errorf("kind %v, want message", failure.KindOf(err))
			}
			if msg := err.Error(); !strings.Contains(msg, c.cfg.Addr) || !strings.Contains(msg, "RETR 1") || !strings.Contains(msg, "LIST announced 1000") {
				t.Errorf("error does not say who and what: %v", err)
			}
			if n > tl.Limit {
				t.Errorf("%d bytes delivered past the limit %d", n, tl.Limit)
			}
			if _, _, err := c.Stat(ctx); err == nil {
				t.Errorf("the session is still used after a runaway body")
			}
		})
	}
}
