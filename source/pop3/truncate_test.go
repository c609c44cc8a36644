package pop3

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/source"
)

// TestTruncatedBody: a connection that ends inside a RETR answer, in order
// (FIN) or by a reset, before the terminating "." line, fails Fetch with a
// temporary error; the part that arrived is never delivered as a message.
func TestTruncatedBody(t *testing.T) {
	const one = "Subject: one\r\n\r\nfirst\r\n"
	const two = "Subject: two\r\n\r\nline one\r\n.. stuffed\r\nline three\r\n"
	listing := []string{
		"C: LIST", "S: +OK", fmt.Sprintf("S: 1 %d", len(one)), fmt.Sprintf("S: 2 %d", len(two)-1), "S: .",
		"C: UIDL", "S: +OK", "S: 1 a", "S: 2 b", "S: .",
	}
	cuts := []struct{ name, sent string }{
		{"before the body", ""},
		{"mid-line", "Subject: two\r\n\r\nline o"},
		{"at a line end", "Subject: two\r\n\r\nline one\r\n"},
		{"in a stuffed dot", "Subject: two\r\n\r\nline one\r\n."},
		{"at the end of the body", two},
		{"in the terminator", two + "."},
		{"before the terminator's LF", two + ".\r"},
	}
	for _, pipelined := range []bool{false, true} {
		for _, cut := range cuts {
			for _, end := range []string{"FIN", "RST"} {
				for _, lenient := range []bool{false, true} {
					name := fmt.Sprintf("%s/%s/pipelined=%v/lenient=%v", cut.name, end, pipelined, lenient)
					t.Run(name, func(t *testing.T) {
						login := loginUserPass
						retr := []string{"C: RETR 1", "S: +OK", "R: " + one, "S: .", "C: RETR 2"}
						if pipelined {
							login = withPipelining(loginUserPass)
							retr = []string{"C: RETR 1", "C: RETR 2", "S: +OK", "R: " + one, "S: ."}
						}
						steps := concat(login, listing, retr, []string{"S: +OK"})
						if cut.sent != "" {
							steps = append(steps, "R: "+cut.sent)
						}
						steps = append(steps, end)
						addr, done := scriptServer(t, steps...)
						src, err := Open(context.Background(), cfgFor(addr))
						if err != nil {
							t.Fatal(err)
						}
						defer src.Close()
						whole := map[string]bool{}
						err = src.Fetch(context.Background(), source.Folder{Name: "INBOX"}, []string{"a", "b"}, func(m source.Meta, r io.Reader) error {
							b, err := io.ReadAll(r)
							if err == nil {
								want := one
								if m.ID == "b" {
									want = strings.ReplaceAll(two, "..", ".")
								}
								if string(b) != want {
									t.Errorf("message %s delivered without error as %q", m.ID, b)
								}
								whole[m.ID] = true
							} else if lenient {
								return nil
							}
							return err
						})
						if err == nil {
							t.Fatal("Fetch through a cut connection: no error")
						}
						if k := failure.KindOf(err); k != failure.Temporary {
							t.Errorf("error %q is %v, want temporary", err, k)
						}
						// A reset may discard what the client has not read yet.
						if whole["b"] || (end == "FIN" && !whole["a"]) {
							t.Errorf("delivered whole: %v, want only a", whole)
						}
						src.Close()
						waitScript(t, done)
					})
				}
			}
		}
	}
}
