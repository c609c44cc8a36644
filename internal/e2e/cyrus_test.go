package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/cyrustest"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

// TestDovecotToCyrus migrates a corpus that Cyrus stores unchanged from
// Dovecot to Cyrus in both of Cyrus' namespace setups and compares bytes,
// folders, flags and dates.
func TestDovecotToCyrus(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{})
	msgs := cyrustest.Unchanged(fullCorpus(150, 21))
	dv.Load(t, "src", msgs)
	for _, opt := range []cyrustest.Options{
		{Users: []string{"dst"}},
		{Users: []string{"dst"}, AltNamespace: true, UnixHierarchySep: true},
	} {
		t.Run(fmt.Sprintf("altnamespace=%v", opt.AltNamespace), func(t *testing.T) {
			cy := cyrustest.Start(t, opt)
			r := mf(t, secretEnv, "migrate", "imap://src@"+dv.IMAP, "imap://dst@"+cy.IMAP+"?tls=none",
				"--ca-file", dv.CAFile, "--state", t.TempDir(), "--no-progress")
			if r.code != 0 {
				t.Fatal(r)
			}
			checkReport(t, "Dovecot → Cyrus", corpus.Compare(msgs, cy.Dump(t, "dst"), corpus.CompareOptions{Flags: true, Dates: true}))
		})
	}
}

// TestCyrusLostAppendAnswer is issue 10 item 3: Cyrus commits an APPEND but
// its tagged OK never reaches mailferry (the connection dies instead), and
// the message had 8-bit header bytes, which Cyrus stored as X. The run must
// recognise the stored copies rather than append them again: exactly one
// copy of each source message, exit 0. The lost answer is that of an APPEND
// of one message, then that of a MULTIAPPEND of seven.
func TestCyrusLostAppendAnswer(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{})
	src := lostAnswerCorpus()
	dv.Load(t, "src", src)
	tests := []struct{ name, user, victim string }{
		{"APPEND of one message", "dst", "<lost-answer-21@mailferry.test>"},
		{"MULTIAPPEND of seven", "u1", "<lost-answer-5@mailferry.test>"},
	}
	cy := cyrustest.Start(t, cyrustest.Options{Users: []string{"dst", "u1"}})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startSwallow(t, cy.IMAP, tc.victim)
			r := mf(t, secretEnv, "migrate", "imap://src@"+dv.IMAP, "imap://"+tc.user+"@"+p.addr()+"?tls=none",
				"--ca-file", dv.CAFile, "--state", t.TempDir(), "--no-progress", "--timeout", "5s", "--retries", "4")
			if p.victim() == "" {
				t.Fatalf("no APPEND carried %s; nothing was swallowed:\n%s", tc.victim, r)
			}
			got := cy.Dump(t, tc.user)
			count := map[string]int{}
			for _, m := range got {
				count[m.MessageID]++
			}
			var problems []string
			for _, m := range src {
				if n := count[m.MessageID]; n != 1 {
					problems = append(problems, fmt.Sprintf("%s: %d copies", m.MessageID, n))
				}
				delete(count, m.MessageID)
			}
			for id, n := range count {
				problems = append(problems, fmt.Sprintf("%q: %d copies of a message not in the source", id, n))
			}
			t.Logf("target holds %d messages for %d in the source; the swallowed APPEND carried %s; exit %d", len(got), len(src), p.victim(), r.code)
			if len(problems) > 0 {
				t.Errorf("target is not one copy of each source message (%d stored for %d):\n%s", len(got), len(src), strings.Join(problems, "\n"))
			}
			if r.code != 0 {
				t.Errorf("exit %d, want 0:\n%s", r.code, tail(r.String(), 40))
			}
		})
	}
}

// lostAnswerCorpus is 23 messages with distinct Message-IDs in INBOX (15),
// Archive (7) and Lone (1: number 21); the odd ones have raw UTF-8 in
// Subject and From.
func lostAnswerCorpus() []corpus.Message {
	base := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	var out []corpus.Message
	for i := range 23 {
		folder := "INBOX"
		switch {
		case i == 21:
			folder = "Lone"
		case i%3 == 2:
			folder = "Archive"
		}
		subject, from := fmt.Sprintf("Report %d", i), "Alice Smith <alice@example.com>"
		if i%2 == 1 {
			subject, from = fmt.Sprintf("تقرير رقم %d — café", i), "محمد العتيبي <m@example.com>"
		}
		id := fmt.Sprintf("<lost-answer-%d@mailferry.test>", i)
		body := fmt.Sprintf("From: %s\r\nTo: bob@example.org\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMessage %d.\r\n%s",
			from, subject, base.Add(time.Duration(i)*time.Hour).Format(time.RFC1123Z), id, i, strings.Repeat("Some text of the body, line by line.\r\n", 5+i*7))
		var flags []string
		if i%4 == 0 {
			flags = []string{`\Seen`}
		}
		out = append(out, corpus.Message{Folder: folder, Body: []byte(body), Flags: flags, Date: base.Add(time.Duration(i) * time.Hour), MessageID: id})
	}
	return out
}

// swallow is an IMAP proxy that lets the server commit the first APPEND that
// carries the victim Message-ID (with MULTIAPPEND, other messages too) but
// drops its tagged OK and resets the client's connection; everything else
// passes unchanged.
type swallow struct {
	ln     net.Listener
	target string
	want   string

	mu    sync.Mutex
	lost  string // Message-IDs of the swallowed APPEND
	conns []net.Conn
}

func startSwallow(t *testing.T, target, victim string) *swallow {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &swallow{ln: ln, target: target, want: victim}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *swallow) addr() string { return p.ln.Addr().String() }

func (p *swallow) victim() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lost
}

func (p *swallow) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *swallow) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		l := &swallowLink{p: p, client: client, server: server, appends: map[string][]string{}}
		go l.clientToServer()
		go l.serverToClient()
	}
}

type swallowLink struct {
	p              *swallow
	client, server net.Conn
	mu             sync.Mutex
	appends        map[string][]string // tag of an APPEND -> its Message-IDs
}

// literalEnd matches a line ending in a literal announcement: {N}, {N+}, ~{N}.
var literalEnd = regexp.MustCompile(`~?\{(\d+)\+?\}\r\n$`)

// clientToServer forwards commands and notes the Message-IDs of each
// APPEND.
func (l *swallowLink) clientToServer() {
	defer l.server.Close()
	r := bufio.NewReader(l.client)
	for {
		var cmd bytes.Buffer
		tag, isAppend := "", false
		var ids []string
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				if _, werr := l.server.Write(line); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
			if cmd.Len() == 0 {
				f := strings.Fields(string(line))
				if len(f) >= 2 {
					tag, isAppend = f[0], strings.EqualFold(f[1], "APPEND")
				}
			}
			cmd.Write(line)
			m := literalEnd.FindSubmatch(line)
			if m == nil {
				break
			}
			n, _ := strconv.Atoi(string(m[1]))
			lit := make([]byte, n)
			if _, err := io.ReadFull(r, lit); err != nil {
				l.server.Write(lit)
				return
			}
			if _, err := l.server.Write(lit); err != nil {
				return
			}
			if isAppend {
				ids = append(ids, corpus.MessageIDOf(lit))
			}
		}
		if isAppend {
			l.mu.Lock()
			l.appends[tag] = ids
			l.mu.Unlock()
		}
	}
}

// serverToClient forwards responses, except the chosen APPEND's tagged OK:
// then both connections are reset.
func (l *swallowLink) serverToClient() {
	defer l.client.Close()
	r := bufio.NewReader(l.server)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			l.client.Write(line)
			return
		}
		if f := strings.Fields(string(line)); len(f) >= 2 && strings.EqualFold(f[1], "OK") {
			l.mu.Lock()
			ids := l.appends[f[0]]
			l.mu.Unlock()
			if l.p.pick(ids) {
				if tc, ok := l.client.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				l.client.Close()
				l.server.Close()
				return
			}
		}
		if _, err := l.client.Write(line); err != nil {
			return
		}
		if m := literalEnd.FindSubmatch(line); m != nil {
			n, _ := strconv.ParseInt(string(m[1]), 10, 64)
			if _, err := io.CopyN(l.client, r, n); err != nil {
				return
			}
		}
	}
}

// pick reports whether ids (an APPEND just answered OK) are the first
// that hold the victim.
func (p *swallow) pick(ids []string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost != "" || !slices.Contains(ids, p.want) {
		return false
	}
	p.lost = strings.Join(ids, " ")
	return true
}
