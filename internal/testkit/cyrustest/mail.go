package cyrustest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/servertest"
)

// Load appends msgs as user, in order (UIDs follow it within each folder),
// with their flags and dates, creating and subscribing the folders. Cyrus
// refuses bare LF and NUL and turns 8-bit header bytes into X (or refuses
// them with Options.Reject8Bit): Load fails on a refusal.
func (s *Server) Load(tb testing.TB, user string, msgs []corpus.Message) {
	tb.Helper()
	if err := s.load(user, msgs); err != nil {
		tb.Fatalf("cyrustest: load %s: %v", user, err)
	}
}

func (s *Server) load(user string, msgs []corpus.Message) error {
	c, err := s.Login(user)
	if err != nil {
		return err
	}
	defer c.Close()
	made := map[string]bool{"INBOX": true}
	for _, m := range msgs {
		name := s.IMAPName(m.Folder)
		if !made[name] {
			// Parents first: Cyrus does not create them implicitly.
			parts := strings.Split(m.Folder, "/")
			for i := range parts {
				p := s.IMAPName(strings.Join(parts[:i+1], "/"))
				if made[p] {
					continue
				}
				if err := c.Create(p, nil).Wait(); err != nil {
					return fmt.Errorf("create %q: %w", p, err)
				}
				if err := c.Subscribe(p).Wait(); err != nil {
					return fmt.Errorf("subscribe %q: %w", p, err)
				}
				made[p] = true
			}
		}
		if err := appendMsg(c, name, m); err != nil {
			return err
		}
	}
	return c.Logout().Wait()
}

func appendMsg(c *imapclient.Client, mailbox string, m corpus.Message) error {
	var flags []imap.Flag
	for _, f := range m.Flags {
		if !strings.EqualFold(f, `\Recent`) {
			flags = append(flags, imap.Flag(f))
		}
	}
	cmd := c.Append(mailbox, int64(len(m.Body)), &imap.AppendOptions{Flags: flags, Time: m.Date})
	if _, err := cmd.Write(m.Body); err != nil {
		return fmt.Errorf("append to %q: %w", mailbox, err)
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("append to %q: %w", mailbox, err)
	}
	if _, err := cmd.Wait(); err != nil {
		return fmt.Errorf("append to %q: %w", mailbox, err)
	}
	return nil
}

// Dump reads every message of every selectable folder of user over IMAP:
// BODY.PEEK[] bytes, FLAGS without \Recent, INTERNALDATE, and the canonical
// folder name ("/"-separated, without the namespace prefix). Folders come
// INBOX first, then sorted; messages in UID order. It is the test oracle of
// Cyrus targets, like dovecottest's Dump.
func (s *Server) Dump(tb testing.TB, user string) []corpus.Message {
	tb.Helper()
	msgs, err := s.dump(user)
	if err != nil {
		tb.Fatalf("cyrustest: dump %s over IMAP: %v", user, err)
	}
	return msgs
}

func (s *Server) dump(user string) ([]corpus.Message, error) {
	c, err := s.Login(user)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return servertest.Dump(c, s.canonical)
}

// Unchanged keeps the messages Cyrus stores byte for byte: no NUL, no bare
// CR or LF, no 8-bit byte in the header.
func Unchanged(msgs []corpus.Message) []corpus.Message {
	var out []corpus.Message
	for _, m := range msgs {
		if StoresUnchanged(m.Body) {
			out = append(out, m)
		}
	}
	return out
}

// StoresUnchanged reports whether Cyrus keeps body as it is.
func StoresUnchanged(body []byte) bool {
	if bytes.IndexByte(body, 0) >= 0 {
		return false
	}
	for i, c := range body {
		if c == '\n' && (i == 0 || body[i-1] != '\r') || c == '\r' && (i+1 == len(body) || body[i+1] != '\n') {
			return false
		}
	}
	head := body
	if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
		head = body[:i]
	}
	for _, c := range head {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
