package imap

import (
	"bytes"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/testkit/conformance"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	"github.com/mailferry/mailferry/source"
)

type seedLiteral struct {
	*bytes.Reader
	n int64
}

func (l seedLiteral) Size() int64 { return l.n }

// TestConformance runs the source suite against go-imap's in-memory server.
func TestConformance(t *testing.T) {
	conformance.RunSource(t, func(t testing.TB, msgs []conformance.Seed) source.Opener {
		srv := imaptest.Start(t, imaptest.Options{})
		for _, m := range msgs {
			var flags []imap.Flag
			for _, f := range m.Flags {
				flags = append(flags, imap.Flag(f))
			}
			lit := seedLiteral{bytes.NewReader(m.Body), int64(len(m.Body))}
			if _, err := srv.User.Append("INBOX", lit, &imap.AppendOptions{Flags: flags, Time: conformance.Date}); err != nil {
				t.Fatal(err)
			}
		}
		return Opener(srv.Config())
	})
}
