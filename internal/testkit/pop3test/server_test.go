package pop3test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/source/pop3"
)

// raw is a hand-driven POP3 connection.
type raw struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, s *Server) *raw {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, r: bufio.NewReader(c)}
	r.expect("+OK")
	return r
}

func (r *raw) send(lines ...string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, strings.Join(lines, "\r\n")+"\r\n"); err != nil {
		r.t.Fatal(err)
	}
}

func (r *raw) line() string {
	r.t.Helper()
	l, err := r.r.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	if !strings.HasSuffix(l, "\r\n") {
		r.t.Fatalf("line %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads a line and checks its prefix.
func (r *raw) expect(prefix string) string {
	r.t.Helper()
	l := r.line()
	if !strings.HasPrefix(l, prefix) {
		r.t.Fatalf("got %q, want prefix %q", l, prefix)
	}
	return l
}

// multi reads a multi-line body verbatim (still dot-stuffed).
func (r *raw) multi() string {
	r.t.Helper()
	var b strings.Builder
	for {
		l := r.line()
		if l == "." {
			return b.String()
		}
		b.WriteString(l + "\r\n")
	}
}

func (r *raw) login() {
	r.t.Helper()
	r.send("USER user")
	r.expect("+OK")
	r.send("PASS secret")
	r.expect("+OK")
}

func start(t *testing.T, o Options) *Server {
	t.Helper()
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var msgs = [][]byte{
	[]byte("Subject: a\r\n\r\nfirst\r\n.dot\r\nline3\r\n"),
	[]byte("Subject: b\r\nX: y\r\n\r\nsecond"),
	[]byte("Subject: c\n\n.\nbare lf\n"),
}

func TestCapaAndListings(t *testing.T) {
	s := start(t, Options{Messages: msgs, UIDLs: []string{"u1", "u2", "u3"}})
	r := dialRaw(t, s)
	r.send("CAPA")
	r.expect("+OK")
	capa := r.multi()
	for _, want := range []string{"TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "SASL PLAIN\r\n"} {
		if !strings.Contains(capa, want) {
			t.Errorf("CAPA lacks %q: %q", want, capa)
		}
	}
	if strings.Contains(capa, "STLS") || strings.Contains(capa, "XOAUTH2") {
		t.Errorf("CAPA offers what is not configured: %q", capa)
	}
	r.send("STAT")
	r.expect("-ERR") // not before login
	r.login()
	r.send("STAT")
	if l := r.line(); l != "+OK 3 "+strconv.Itoa(len(msgs[0])+len(msgs[1])+len(msgs[2])) {
		t.Errorf("STAT = %q", l)
	}
	r.send("UIDL")
	r.expect("+OK")
	if got := r.multi(); got != "1 u1\r\n2 u2\r\n3 u3\r\n" {
		t.Errorf("UIDL = %q", got)
	}
	r.send("UIDL 2")
	if l := r.line(); l != "+OK 2 u2" {
		t.Errorf("UIDL 2 = %q", l)
	}
	r.send("LIST 3")
	if l := r.line(); l != "+OK 3 "+strconv.Itoa(len(msgs[2])) {
		t.Errorf("LIST 3 = %q", l)
	}
	r.send("LIST 9")
	r.expect("-ERR")
	r.send("RETR 1")
	r.expect("+OK")
	if got := r.multi(); got != "Subject: a\r\n\r\nfirst\r\n..dot\r\nline3\r\n" {
		t.Errorf("RETR 1 = %q", got)
	}
	r.send("RETR 2") // no final line ending: CRLF added
	r.expect("+OK")
	if got := r.multi(); got != "Subject: b\r\nX: y\r\n\r\nsecond\r\n" {
		t.Errorf("RETR 2 = %q", got)
	}
	r.send("TOP 1 1")
	r.expect("+OK")
	if got := r.multi(); got != "Subject: a\r\n\r\nfirst\r\n" {
		t.Errorf("TOP 1 1 = %q", got)
	}
	r.send("TOP 2 0")
	r.expect("+OK")
	if got := r.multi(); got != "Subject: b\r\nX: y\r\n\r\n" {
		t.Errorf("TOP 2 0 = %q", got)
	}
	r.send("DELE 2")
	r.expect("+OK")
	r.send("DELE 2")
	r.expect("-ERR")
	r.send("RETR 2")
	r.expect("-ERR")
	r.send("LIST")
	r.expect("+OK")
	if got := r.multi(); strings.Contains(got, "2 ") || !strings.Contains(got, "3 ") {
		t.Errorf("LIST after DELE = %q", got)
	}
	r.send("RSET")
	r.expect("+OK")
	r.send("STAT")
	r.expect("+OK 3 ")
	r.send("NOOP")
	r.expect("+OK")
	r.send("FOO")
	r.expect("-ERR")
}

func TestBareLFIsKept(t *testing.T) {
	s := start(t, Options{Messages: msgs})
	r := dialRaw(t, s)
	r.login()
	r.send("RETR 3")
	r.expect("+OK")
	want := "Subject: c\n\n..\nbare lf\n.\r\n"
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(r.r, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != want {
		t.Errorf("RETR 3 wire = %q, want %q", buf, want)
	}
}

func TestPipelinedCommands(t *testing.T) {
	s := start(t, Options{Messages: msgs, UIDLs: []string{"u1", "u2", "u3"}})
	r := dialRaw(t, s)
	r.send("USER user", "PASS secret", "STAT", "UIDL 1", "DELE 1", "QUIT")
	r.expect("+OK")
	r.expect("+OK Logged in")
	r.expect("+OK 3 ")
	r.expect("+OK 1 u1")
	r.expect("+OK")
	r.expect("+OK")
	if _, err := r.r.ReadByte(); err != io.EOF {
		t.Errorf("connection not closed after QUIT: %v", err)
	}
	if d := s.Deleted(); len(d) != 1 || d[0] != "u1" {
		t.Errorf("Deleted = %v", d)
	}
	if rem := s.Remaining(); len(rem) != 2 || !bytes.Equal(rem[0], msgs[1]) {
		t.Errorf("Remaining = %q", rem)
	}
}

func TestDroppedConnectionDeletesNothing(t *testing.T) {
	s := start(t, Options{Messages: msgs})
	r := dialRaw(t, s)
	r.login()
	r.send("DELE 1", "DELE 2")
	r.expect("+OK")
	r.expect("+OK")
	r.c.Close()
	time.Sleep(50 * time.Millisecond)
	if d := s.Deleted(); len(d) != 0 {
		t.Errorf("Deleted = %v", d)
	}
	if len(s.Remaining()) != 3 {
		t.Error("messages removed")
	}
}

func TestAuth(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name  string
		steps []string // alternating: line to send, expected reply prefix
	}{
		{"plain initial response", []string{"AUTH PLAIN " + b64("\x00user\x00secret"), "+OK"}},
		{"plain continuation", []string{"AUTH PLAIN", "+ ", b64("\x00user\x00secret"), "+OK"}},
		{"plain wrong", []string{"AUTH PLAIN " + b64("\x00user\x00nope"), "-ERR [AUTH]"}},
		{"plain cancelled", []string{"AUTH PLAIN", "+ ", "*", "-ERR"}},
		{"unknown mechanism", []string{"AUTH CRAM-MD5", "-ERR"}},
		{"xoauth2", []string{"AUTH XOAUTH2 " + b64("user=user\x01auth=Bearer tok\x01\x01"), "+OK"}},
		{"xoauth2 wrong", []string{"AUTH XOAUTH2 " + b64("user=user\x01auth=Bearer bad\x01\x01"), "+ ", "", "-ERR [AUTH]"}},
		{"oauthbearer", []string{"AUTH OAUTHBEARER " + b64("n,a=user,\x01host=x\x01auth=Bearer tok\x01\x01"), "+OK"}},
		{"oauthbearer wrong", []string{"AUTH OAUTHBEARER " + b64("n,a=user,\x01auth=Bearer bad\x01\x01"), "+ ", "AQ==", "-ERR [AUTH]"}},
		{"pass without user", []string{"PASS secret", "-ERR"}},
		{"wrong password", []string{"USER user", "+OK", "PASS nope", "-ERR [AUTH] Authentication failed."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Options{Messages: msgs, OAuth2Token: "tok"})
			r := dialRaw(t, s)
			for i := 0; i < len(tt.steps); i += 2 {
				r.send(tt.steps[i])
				r.expect(tt.steps[i+1])
			}
		})
	}
}

func TestInUseAndSysTemp(t *testing.T) {
	s := start(t, Options{Messages: msgs, InUseAfter: 1, SysTempOnce: true})
	a := dialRaw(t, s)
	a.login()
	b := dialRaw(t, s)
	b.send("USER user", "PASS secret")
	b.expect("+OK")
	b.expect("-ERR [IN-USE]")
	a.send("RETR 1")
	a.expect("-ERR [SYS/TEMP]")
	a.send("RETR 1")
	a.expect("+OK")
	a.multi()
	a.send("QUIT")
	a.expect("+OK")
	time.Sleep(50 * time.Millisecond)
	b.send("PASS secret")
	b.expect("-ERR") // USER is needed again
	b.login()
}

func TestLatencyAndNoUIDL(t *testing.T) {
	s := start(t, Options{Messages: msgs, NoUIDL: true, NoPipelining: true, Latency: 30 * time.Millisecond})
	r := dialRaw(t, s)
	r.send("CAPA")
	r.expect("+OK")
	if capa := r.multi(); strings.Contains(capa, "UIDL") || strings.Contains(capa, "PIPELINING") {
		t.Errorf("CAPA = %q", capa)
	}
	r.login()
	start := time.Now()
	r.send("UIDL")
	r.expect("-ERR")
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Errorf("answered after %v, latency 30ms", el)
	}
}

func TestStartValidates(t *testing.T) {
	if _, err := Start(Options{Messages: msgs, UIDLs: []string{"a"}}); err == nil {
		t.Error("UIDL count mismatch accepted")
	}
	if _, err := Start(Options{Messages: msgs[:2], UIDLs: []string{"a", "a"}}); err == nil {
		t.Error("duplicate UIDLs accepted")
	}
	if _, err := Start(Options{ImplicitTLS: true}); err == nil {
		t.Error("ImplicitTLS without a TLSConfig accepted")
	}
	s := start(t, Options{Messages: [][]byte{[]byte("x\r\n"), []byte("x\r\n")}})
	r := dialRaw(t, s)
	r.login()
	r.send("UIDL")
	r.expect("+OK")
	lines := strings.Split(strings.TrimSpace(r.multi()), "\r\n")
	if len(lines) != 2 || strings.Fields(lines[0])[1] == strings.Fields(lines[1])[1] {
		t.Errorf("default UIDLs of equal messages are not unique: %q", lines)
	}
}

// TestWithClient runs the project's POP3 source against the server over
// a fixture mailbox, then deletes and checks what QUIT committed.
func TestWithClient(t *testing.T) {
	fixture, err := os.ReadFile("testdata/dotted.eml")
	if err != nil {
		t.Fatal(err)
	}
	box := append([][]byte{fixture}, msgs...)
	s := start(t, Options{Messages: box, User: "sam", Password: "pw"})
	ctx := context.Background()
	cfg := pop3.Config{Addr: s.Addr(), Security: pop3.None, User: "sam", Password: "pw", Timeout: 5 * time.Second}
	src, err := pop3.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := source.Folder{Name: "INBOX"}
	metas, err := src.List(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range metas {
		ids = append(ids, m.ID)
	}
	i := 0
	err = src.Fetch(ctx, f, ids, func(m source.Meta, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		want := box[i]
		if want[len(want)-1] != '\n' {
			want = append(append([]byte(nil), want...), '\r', '\n')
		}
		if !bytes.Equal(b, want) {
			t.Errorf("message %d: got %q, want %q", i+1, b, want)
		}
		i++
		return nil
	})
	if err != nil || i != len(box) {
		t.Fatalf("Fetch: %d messages, %v", i, err)
	}
	if err := src.Delete(ctx, f, ids[:2]); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if d := s.Deleted(); len(d) != 2 || d[0] != ids[0] || d[1] != ids[1] {
		t.Errorf("Deleted = %v, want %v", d, ids[:2])
	}
}
