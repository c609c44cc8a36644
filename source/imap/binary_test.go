package imap

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/source"
)

// nulMsg is a message of nulServer: body is served under BODY[], binary
// under BINARY[] (nil: BINARY[] refused with NO).
type nulMsg struct {
	body, binary []byte
	// lie, when not 0, is the size announced for binary, whose octets
	// follow; then the server waits for the client to hang up.
	lie int
}

// nulServer serves msgs in INBOX like Dovecot serves NULs (the test gives
// the bytes). It announces BINARY when bin, and counts the BINARY FETCH
// commands. A BINARY[] it cannot give fails the whole command with NO.
type nulServer struct {
	msgs  []nulMsg
	bin   bool
	binFx atomic.Int32
}

func (s *nulServer) start(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return ln.Addr().String()
}

// seqs parses a sequence set ("1:3,5", "1:*") against n messages.
func seqs(set string, n int) []int {
	var out []int
	for _, r := range strings.Split(set, ",") {
		lo, hi, ok := strings.Cut(r, ":")
		if !ok {
			hi = lo
		}
		a, _ := strconv.Atoi(lo)
		b, err := strconv.Atoi(hi)
		if err != nil {
			b = n
		}
		for i := a; i <= b && i <= n; i++ {
			out = append(out, i)
		}
	}
	return out
}

func (s *nulServer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	defer w.Flush()
	caps := "IMAP4rev1"
	if s.bin {
		caps += " BINARY"
	}
	fmt.Fprintf(w, "* OK [CAPABILITY %s] nul\r\n", caps)
	w.Flush()
	n := len(s.msgs)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		tag, cmd := f[0], strings.ToUpper(f[1])
		up := strings.ToUpper(line)
		switch cmd {
		case "CAPABILITY":
			fmt.Fprintf(w, "* CAPABILITY %s\r\n%s OK\r\n", caps, tag)
		case "LOGIN":
			fmt.Fprintf(w, "%s OK [CAPABILITY %s] logged in\r\n", tag, caps)
		case "LIST":
			fmt.Fprintf(w, "* LIST () \"/\" INBOX\r\n%s OK\r\n", tag)
		case "STATUS":
			fmt.Fprintf(w, "* STATUS INBOX (UIDVALIDITY 7)\r\n%s OK\r\n", tag)
		case "SELECT", "EXAMINE":
			fmt.Fprintf(w, "* %d EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n%s OK [READ-ONLY] done\r\n", n, tag)
		case "SEARCH":
			// Only UIDs are searched: UID i is message i.
			fmt.Fprintf(w, "* SEARCH")
			for _, i := range seqs(strings.TrimSuffix(f[len(f)-1], "\r\n"), n) {
				fmt.Fprintf(w, " %d", i)
			}
			fmt.Fprintf(w, "\r\n%s OK\r\n", tag)
		case "UID", "FETCH":
			set := f[2]
			if cmd == "UID" {
				set = f[3]
			}
			if strings.Contains(up, "BINARY") {
				s.binFx.Add(1)
			}
			for _, i := range seqs(set, n) {
				m := s.msgs[i-1]
				switch {
				case strings.Contains(up, "BINARY"):
					if m.binary == nil {
						fmt.Fprintf(w, "%s NO [UNKNOWN-CTE] cannot decode\r\n", tag)
						goto next
					}
					if m.lie != 0 {
						fmt.Fprintf(w, "* %d FETCH (UID %d BINARY[] ~{%d}\r\n%s", i, i, m.lie, m.binary)
						w.Flush()
						io.Copy(io.Discard, r)
						return
					}
					fmt.Fprintf(w, "* %d FETCH (UID %d BINARY[] ~{%d}\r\n%s)\r\n", i, i, len(m.binary), m.binary)
				case strings.Contains(up, "BODY"):
					fmt.Fprintf(w, "* %d FETCH (UID %d FLAGS () INTERNALDATE \"01-Jan-2020 00:00:00 +0000\" RFC822.SIZE %d BODY[] {%d}\r\n%s)\r\n", i, i, len(m.body), len(m.body), m.body)
				default:
					fmt.Fprintf(w, "* %d FETCH (UID %d FLAGS () INTERNALDATE \"01-Jan-2020 00:00:00 +0000\" RFC822.SIZE %d)\r\n", i, i, len(m.body))
				}
			}
			fmt.Fprintf(w, "%s OK\r\n", tag)
		case "LOGOUT":
			fmt.Fprintf(w, "* BYE\r\n%s OK\r\n", tag)
			return
		default:
			fmt.Fprintf(w, "%s OK\r\n", tag)
		}
	next:
		w.Flush()
	}
}

// TestNULRestored: on a server with BINARY, a body holding 0x80 is fetched
// again with BINARY.PEEK[] (one command for the chunk, then one per
// message left unanswered by a NO), whose bytes are used only when they
// differ by NUL for 0x80; bodies without 0x80 are fetched once; without
// BINARY the BODY[] bytes are delivered as they are.
func TestNULRestored(t *testing.T) {
	hdr := "From: a@x\r\nSubject: s\r\n\r\n"
	stored := []byte(hdr + "before\x00after \x00\x00\r\n")
	served := bytes.ReplaceAll(stored, []byte{0}, []byte{0x80})
	utf8 := []byte(hdr + "\xc4\x80 \xc4\x80\r\n") // "Ā Ā": genuine 0x80
	bigStored := []byte(hdr + strings.Repeat("a NUL \x00 in a long line\r\n", 60000))
	bigServed := bytes.ReplaceAll(bigStored, []byte{0}, []byte{0x80})
	// A decoded part: BINARY[] longer, and one as long but with another
	// octet changed.
	encoded := []byte(hdr + "\x80 Content-Transfer-Encoding: base64\r\n\r\nYWJj\r\n")
	decoded := []byte(hdr + "\x00 Content-Transfer-Encoding: binary\r\n\r\nabc\r\n")
	sameLen := bytes.Replace(encoded, []byte("YWJj"), []byte("abc\x00"), 1)
	sameLen[len(hdr)] = 0
	plain := []byte(hdr + "nothing odd\r\n")
	msgs := []nulMsg{
		{served, stored, 0},
		{utf8, utf8, 0},
		{plain, plain, 0},
		{encoded, decoded, 0},
		{encoded, sameLen, 0},
		{served, nil, 0}, // BINARY[] refused
		{bigServed, bigStored, 0},
		{plain, plain, 0},
	}
	for _, tc := range []struct {
		name  string
		bin   bool
		want  [][]byte
		binFx int32
	}{
		{"with BINARY", true, [][]byte{stored, utf8, plain, encoded, encoded, served, bigStored, plain}, 3},
		{"without BINARY", false, [][]byte{served, utf8, plain, encoded, encoded, served, bigServed, plain}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &nulServer{msgs: msgs, bin: tc.bin}
			s := openSrc(t, imapconn.Config{Addr: srv.start(t), Security: imapconn.None, User: "u", Password: "p", Timeout: 5 * time.Second})
			f := folder(t, s, "INBOX")
			var ids []string
			for i := range msgs {
				ids = append(ids, strconv.Itoa(i+1))
			}
			got := map[string][]byte{}
			err := s.Fetch(context.Background(), f, ids, func(m source.Meta, r io.Reader) error {
				b, err := io.ReadAll(r)
				if m.Size != int64(len(b)) {
					t.Errorf("message %s: meta size %d, body %d octets", m.ID, m.Size, len(b))
				}
				got[m.ID] = b
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.want {
				if b := got[ids[i]]; !bytes.Equal(b, want) {
					t.Errorf("message %d: got %d octets %.80q, want %d %.80q", i+1, len(b), b, len(want), want)
				}
			}
			if n := srv.binFx.Load(); n != tc.binFx {
				t.Errorf("%d BINARY FETCH commands, want %d", n, tc.binFx)
			}
		})
	}
}

// TestNULHugeBinary: a BINARY[] announced far larger than its BODY[] is
// refused before it is read, as a message failure, and the connection
// dropped.
func TestNULHugeBinary(t *testing.T) {
	body := []byte("Subject: s\r\n\r\n\x80\r\n")
	srv := &nulServer{msgs: []nulMsg{{body: body, binary: body, lie: 1 << 30}}, bin: true}
	s := openSrc(t, imapconn.Config{Addr: srv.start(t), Security: imapconn.None, User: "u", Password: "p", Timeout: 5 * time.Second})
	f := folder(t, s, "INBOX")
	start := time.Now()
	delivered := false
	err := s.Fetch(context.Background(), f, []string{"1"}, func(source.Meta, io.Reader) error {
		delivered = true
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "refusing it") || failure.KindOf(err) != failure.Message || delivered {
		t.Fatalf("Fetch = %v (kind %v, delivered %v), want a refused BINARY[]", err, failure.KindOf(err), delivered)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}
