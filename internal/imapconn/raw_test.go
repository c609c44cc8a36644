package imapconn_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"alice", `"alice"`, true},
		{`a"b\c`, `"a\"b\\c"`, true},
		{"", `""`, true},
		{"new\nline", "", false},
		{"cr\r", "", false},
		{"nul\x00", "", false},
		{"pässword", "", false},
		{strings.Repeat("x", 1025), "", false},
	} {
		got, ok := imapconn.Quote(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Quote(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestEncodeMailbox(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"INBOX", "INBOX"},
		{"inbox", "INBOX"},
		{"Sent Items", "Sent Items"},
		{"R&D", "R&-D"},
		{"Déjà vu", "D&AOk-j&AOA- vu"},
		{"日本語", "&ZeVnLIqe-"},
		{"a/b", "a/b"},
		{"😀", "&2D3eAA-"},
	} {
		if got := imapconn.EncodeMailbox(tc.in); got != tc.want {
			t.Errorf("EncodeMailbox(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStatusErr(t *testing.T) {
	st := &imapconn.Status{Type: "NO", Code: "OVERQUOTA", Text: "full"}
	var ie *imap.Error
	if err := st.Err(); !errors.As(err, &ie) || ie.Code != imap.ResponseCodeOverQuota || ie.Type != imap.StatusResponseTypeNo {
		t.Fatalf("Err() = %v", st.Err())
	}
	if (&imapconn.Status{Type: "OK"}).Err() != nil {
		t.Fatal("OK is an error")
	}
}

// TestDialRawMemServer logs in to go-imap's server (AUTHENTICATE PLAIN
// and LOGIN) and is refused with a wrong password.
func TestDialRawMemServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps imap.CapSet
	}{
		{"plain", imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapLiteralPlus: {}}},
		{"plain+sasl-ir", imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapSASLIR: {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := imaptest.Start(t, imaptest.Options{Caps: tc.caps})
			ctx := context.Background()
			s, err := imapconn.DialRaw(ctx, srv.Config())
			if err != nil {
				t.Fatal(err)
			}
			if !s.Has("imap4rev1") {
				t.Error("capabilities not read")
			}
			tag := s.Tag()
			s.W().WriteString(tag + " SELECT INBOX\r\n")
			st, err := s.Wait(tag, nil)
			if err != nil || st.Type != "OK" {
				t.Fatalf("SELECT: %+v, %v", st, err)
			}
			s.Close(true)

			cfg := srv.Config()
			cfg.Password = "wrong"
			_, err = imapconn.DialRaw(ctx, cfg)
			if failure.KindOf(err) != failure.Auth || strings.Contains(err.Error(), "wrong") {
				t.Fatalf("wrong password: %v (kind %v)", err, failure.KindOf(err))
			}
		})
	}
}

// scripted runs a one-connection server that answers each line it reads
// with reply(line); replies are written as they are.
func scripted(t *testing.T, greeting string, reply func(line string, r *bufio.Reader) string) imapconn.Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte(greeting))
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			out := reply(strings.TrimRight(line, "\r\n"), r)
			if out == "CLOSE" {
				return
			}
			c.Write([]byte(out))
		}
	}()
	return imapconn.Config{Addr: ln.Addr().String(), Security: imapconn.None, User: "u", Password: "p", Timeout: 2 * time.Second}
}

func TestRawScripted(t *testing.T) {
	ctx := context.Background()
	t.Run("literal in untagged data is skipped", func(t *testing.T) {
		cfg := scripted(t, "* OK [CAPABILITY IMAP4rev1 LITERAL+] hi\r\n", func(line string, _ *bufio.Reader) string {
			tag, _, _ := strings.Cut(line, " ")
			if strings.Contains(line, "LOGIN") {
				return tag + " OK [CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND] in\r\n"
			}
			return "* 1 FETCH (BODY[] {12}\r\nR9 OK fake\r\n)\r\n" + tag + " OK done\r\n"
		})
		s, err := imapconn.DialRaw(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Has("MULTIAPPEND") {
			t.Error("capabilities of the login answer not taken")
		}
		tag := s.Tag()
		s.W().WriteString(tag + " NOOP\r\n")
		var untagged []string
		st, err := s.Wait(tag, func(l string) { untagged = append(untagged, l) })
		if err != nil || st.Type != "OK" || len(untagged) != 1 || !strings.HasSuffix(untagged[0], ")") {
			t.Fatalf("Wait = %+v, %v; untagged %q", st, err, untagged)
		}
	})
	t.Run("greeting BYE", func(t *testing.T) {
		cfg := scripted(t, "* BYE too many connections\r\n", func(string, *bufio.Reader) string { return "CLOSE" })
		_, err := imapconn.DialRaw(ctx, cfg)
		if failure.KindOf(err) != failure.Temporary {
			t.Fatalf("BYE greeting: %v (kind %v)", err, failure.KindOf(err))
		}
	})
	t.Run("not IMAP", func(t *testing.T) {
		cfg := scripted(t, "+OK POP3 ready\r\n", func(string, *bufio.Reader) string { return "CLOSE" })
		_, err := imapconn.DialRaw(ctx, cfg)
		if failure.KindOf(err) != failure.Fatal {
			t.Fatalf("POP3 greeting: %v (kind %v)", err, failure.KindOf(err))
		}
	})
	t.Run("answer to another tag", func(t *testing.T) {
		cfg := scripted(t, "* OK [CAPABILITY IMAP4rev1] hi\r\n", func(line string, _ *bufio.Reader) string {
			tag, _, _ := strings.Cut(line, " ")
			if strings.Contains(line, "LOGIN") {
				return tag + " OK in\r\n"
			}
			if strings.Contains(line, "CAPABILITY") {
				return "* CAPABILITY IMAP4rev1\r\n" + tag + " OK\r\n"
			}
			return "X99 OK what\r\n"
		})
		s, err := imapconn.DialRaw(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		tag := s.Tag()
		s.W().WriteString(tag + " NOOP\r\n")
		if _, err := s.Wait(tag, nil); failure.KindOf(err) != failure.Fatal || s.Broken() == nil {
			t.Fatalf("mismatched tag: %v", err)
		}
	})
	t.Run("silent server times out", func(t *testing.T) {
		cfg := scripted(t, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n", func(line string, _ *bufio.Reader) string {
			tag, _, _ := strings.Cut(line, " ")
			if strings.Contains(line, "AUTHENTICATE") {
				return "+ \r\n"
			}
			if line == "AHUAcA==" { // "\x00u\x00p"
				return "R1 OK [CAPABILITY IMAP4rev1] in\r\n"
			}
			_ = tag
			return "" // never answers
		})
		cfg.Timeout = 300 * time.Millisecond
		s, err := imapconn.DialRaw(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		tag := s.Tag()
		s.W().WriteString(tag + " NOOP\r\n")
		start := time.Now()
		_, err = s.Wait(tag, nil)
		if failure.KindOf(err) != failure.Temporary || time.Since(start) > 5*time.Second {
			t.Fatalf("silent server: %v after %v", err, time.Since(start))
		}
	})
}

// TestWriteLiteralHead: the bytes on the wire of an APPEND whose literal is
// a literal8 (~{n+}, RFC 3516 with RFC 7888's "+") and of a normal one.
func TestWriteLiteralHead(t *testing.T) {
	body := "Subject: x\r\n\r\na\x00b\r\n"
	got := make(chan string, 4)
	cfg := scripted(t, "* OK [CAPABILITY IMAP4rev1 LITERAL+ BINARY] hi\r\n", func(line string, r *bufio.Reader) string {
		tag, rest, _ := strings.Cut(line, " ")
		if strings.HasPrefix(rest, "LOGIN") {
			return tag + " OK [CAPABILITY IMAP4rev1 LITERAL+ BINARY] in\r\n"
		}
		if !strings.HasPrefix(rest, "APPEND") {
			return tag + " BAD what\r\n"
		}
		i := strings.LastIndexByte(line, '{')
		n, err := strconv.Atoi(strings.TrimSuffix(line[i+1:len(line)-1], "+"))
		if err != nil {
			got <- "bad line " + line
			return "CLOSE"
		}
		lit := make([]byte, n+2)
		if _, err := io.ReadFull(r, lit); err != nil {
			return "CLOSE"
		}
		got <- rest + "|" + string(lit)
		return tag + " OK done\r\n"
	})
	s, err := imapconn.DialRaw(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(true)
	for _, binary := range []bool{true, false} {
		tag := s.Tag()
		s.W().WriteString(tag + " APPEND INBOX () ")
		s.WriteLiteralHead(int64(len(body)), binary)
		s.W().WriteString(body + "\r\n")
		st, err := s.Wait(tag, nil)
		if err != nil || st.Type != "OK" {
			t.Fatalf("APPEND: %+v %v", st, err)
		}
		want := "APPEND INBOX () {19+}|" + body + "\r\n"
		if binary {
			want = "APPEND INBOX () ~{19+}|" + body + "\r\n"
		}
		if g := <-got; g != want {
			t.Errorf("binary %v: server read %q, want %q", binary, g, want)
		}
	}
}
