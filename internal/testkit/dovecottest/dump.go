package dovecottest

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/servertest"
)

// Dump reads every message of every selectable folder of user over IMAP
// (plain IMAP on loopback, LOGIN): BODY.PEEK[] bytes, FLAGS without
// \Recent, INTERNALDATE, and the canonical folder name ("/"-separated,
// without the namespace prefix). Folders come INBOX first, then sorted;
// messages in UID order. It is the test oracle of IMAP targets.
func (s *Server) Dump(tb testing.TB, user string) []corpus.Message {
	tb.Helper()
	msgs, err := s.dump(user)
	if err != nil {
		tb.Fatalf("dovecottest: dump %s over IMAP: %v", user, err)
	}
	return msgs
}

func (s *Server) dump(user string) ([]corpus.Message, error) {
	conn, err := net.DialTimeout("tcp", s.IMAP, 10*time.Second)
	if err != nil {
		return nil, err
	}
	// A bound on the whole dump: the connection dies after it.
	conn.SetDeadline(time.Now().Add(3 * time.Minute))
	c := imapclient.New(conn, nil)
	defer c.Close()
	if err := c.WaitGreeting(); err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if err := c.Login(user, Password).Wait(); err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	return servertest.Dump(c, s.canonical)
}

// canonical turns a server mailbox name into the canonical form.
func (s *Server) canonical(name string, delim rune) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	if s.opt.Prefix != "" && strings.HasPrefix(name, s.opt.Prefix) {
		name = name[len(s.opt.Prefix):]
	}
	if delim != 0 && delim != '/' {
		name = strings.ReplaceAll(name, string(delim), "/")
	}
	return name
}

// DumpMaildir reads a Maildir++ tree from disk, independently of mailferry's
// own Maildir code: INBOX at the root, ".A.B" folder directories with
// modified UTF-7 names, files in cur/ and new/, flags after ":2," (keyword
// letters through each folder's dovecot-keywords), Date = file mtime.
// Folders come INBOX first then sorted; files in name order. A missing root
// gives no messages.
func DumpMaildir(tb testing.TB, root string) []corpus.Message {
	tb.Helper()
	msgs, err := dumpMaildir(root)
	if err != nil {
		tb.Fatalf("dovecottest: read Maildir %s: %v", root, err)
	}
	return msgs
}

func dumpMaildir(root string) ([]corpus.Message, error) {
	var out []corpus.Message
	err := WalkMaildir(root, func(f MaildirFile) error {
		body, err := os.ReadFile(f.Path)
		if err != nil {
			return err
		}
		out = append(out, corpus.Message{Folder: f.Folder, Body: body, Flags: f.Flags, Date: f.Date, MessageID: corpus.MessageIDOf(body)})
		return nil
	})
	return out, err
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// readKeywords reads a dovecot-keywords file ("0 $Forwarded" lines).
func readKeywords(p string) (map[byte]string, error) {
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	kw := map[byte]string{}
	for _, ln := range strings.Split(string(b), "\n") {
		var i int
		var name string
		if n, _ := fmt.Sscanf(ln, "%d %s", &i, &name); n == 2 && i >= 0 && i < 26 {
			kw[byte('a'+i)] = name
		}
	}
	return kw, nil
}

// parseFlags reads the flags after ":2," of a Maildir file name.
func parseFlags(name string, kw map[byte]string) ([]string, error) {
	_, info, ok := strings.Cut(name, ":2,")
	if !ok {
		return nil, nil
	}
	var flags []string
	for i := 0; i < len(info); i++ {
		c := info[i]
		switch {
		case c >= 'A' && c <= 'Z':
			for f, l := range systemLetters {
				if l == c {
					flags = append(flags, map[string]string{`\draft`: `\Draft`, `\flagged`: `\Flagged`, `\answered`: `\Answered`, `\seen`: `\Seen`, `\deleted`: `\Deleted`}[f])
				}
			}
		case c >= 'a' && c <= 'z':
			k, ok := kw[c]
			if !ok {
				return nil, fmt.Errorf("keyword letter %q is not in dovecot-keywords", c)
			}
			flags = append(flags, k)
		case c == ',':
			// Dovecot never writes it, but it is harmless.
		default:
			return nil, fmt.Errorf("unexpected flag character %q", c)
		}
	}
	return corpus.CanonicalFlags(flags), nil
}

// unescapeList undoes the escape of Dovecot's listescape plugin, which the
// team's Maildir target uses for characters a Maildir++ name cannot hold
// ('.' as \2e, '\' as \5c): \XX for a printable ASCII character.
func unescapeList(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil && v >= 0x20 && v < 0x7f {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
