package imap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/source"
)

// hostileServer serves folders INBOX, Bad and Good: STATUS "Bad" is never
// answered (so the STATUS pipelined after it dies with the connection),
// EXAMINE "Bad" is refused with NO, and FETCH sends a body far larger
// than its RFC822.SIZE.
func hostileServer(t *testing.T) string {
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
			go serveHostile(c)
		}
	}()
	return ln.Addr().String()
}

func serveHostile(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	defer w.Flush()
	fmt.Fprintf(w, "* OK [CAPABILITY IMAP4rev1] hostile\r\n")
	w.Flush()
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
		arg := ""
		if len(f) > 2 {
			arg = strings.Trim(f[2], `"`)
		}
		switch cmd {
		case "LOGIN":
			fmt.Fprintf(w, "%s OK logged in\r\n", tag)
		case "LIST":
			if strings.Contains(line, `""`) && !strings.Contains(line, "*") {
				fmt.Fprintf(w, "* LIST (\\Noselect) \"/\" \"\"\r\n%s OK\r\n", tag)
			} else {
				fmt.Fprintf(w, "* LIST () \"/\" INBOX\r\n* LIST () \"/\" Bad\r\n* LIST () \"/\" Good\r\n%s OK\r\n", tag)
			}
		case "STATUS":
			if arg == "Bad" {
				w.Flush()
				io.Copy(io.Discard, r) // hang
				return
			}
			fmt.Fprintf(w, "* STATUS %s (UIDVALIDITY 9)\r\n%s OK\r\n", arg, tag)
		case "SELECT", "EXAMINE":
			if arg == "Bad" {
				fmt.Fprintf(w, "%s NO [NONEXISTENT] no such folder\r\n", tag)
				break
			}
			fmt.Fprintf(w, "* 1 EXISTS\r\n* OK [UIDVALIDITY 9] x\r\n%s OK [READ-ONLY] done\r\n", tag)
		case "SEARCH":
			fmt.Fprintf(w, "* SEARCH 1\r\n%s OK\r\n", tag)
		case "UID", "FETCH":
			if strings.Contains(strings.ToUpper(line), "BODY") {
				fmt.Fprintf(w, "* 1 FETCH (UID 1 FLAGS () INTERNALDATE \"01-Jan-2020 00:00:00 +0000\" RFC822.SIZE 10 BODY[] {5000000}\r\n")
				w.WriteString(strings.Repeat("x", 1<<16))
				w.Flush()
				io.Copy(io.Discard, r)
				return
			}
			fmt.Fprintf(w, "* 1 FETCH (UID 1 FLAGS () INTERNALDATE \"01-Jan-2020 00:00:00 +0000\" RFC822.SIZE 10)\r\n%s OK\r\n", tag)
		case "LOGOUT":
			fmt.Fprintf(w, "* BYE\r\n%s OK\r\n", tag)
			return
		default:
			fmt.Fprintf(w, "%s OK\r\n", tag)
		}
		w.Flush()
	}
}

// TestFolderStatusFails: a folder whose STATUS hangs does not fail the
// listing; the folders whose validity is unknown get it from List (as a
// *ValidityChangedError, in any session of the same Opener), and a folder
// the server refuses to open fails alone, not as failure.Fatal.
func TestFolderStatusFails(t *testing.T) {
	addr := hostileServer(t)
	ctx := context.Background()
	open := Opener(imapconn.Config{Addr: addr, Security: imapconn.None, User: "u", Password: "p", Timeout: 300 * time.Millisecond})
	s0, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s0.Close()
	start := time.Now()
	fs, err := s0.Folders(ctx)
	if err != nil {
		t.Fatalf("Folders: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Folders took %v", d)
	}
	got := map[string]uint32{}
	for _, f := range fs {
		got[f.Name] = f.Validity
	}
	if len(got) != 3 || got["INBOX"] != 9 || got["Bad"] != 0 || got["Good"] != 0 {
		t.Fatalf("folders %v, want INBOX 9, Bad and Good 0", got)
	}
	// A fresh session (as after a failure) still knows Good's validity is
	// unknown.
	s1, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	for _, s := range []source.Source{s0, s1} {
		_, err = s.List(ctx, source.Folder{Name: "Good"})
		var vc *ValidityChangedError
		if !errors.As(err, &vc) || vc.New != 9 {
			t.Fatalf("List(Good) = %v, want the validity 9", err)
		}
		if m, err := s.List(ctx, source.Folder{Name: "Good", Validity: 9}); err != nil || len(m) != 1 {
			t.Fatalf("List(Good, 9) = %v, %v", m, err)
		}
		_, err = s.List(ctx, source.Folder{Name: "Bad"})
		if err == nil || !strings.Contains(err.Error(), "Bad") {
			t.Fatalf("List(Bad) = %v, want an error naming the folder", err)
		}
		if k := failure.KindOf(err); k == failure.Fatal || k == failure.Auth || k == failure.TLS {
			t.Errorf("List(Bad) is %v: it would stop the run", k)
		}
	}
	// A plain Open (no shared state) lists with validity 0 as before.
	s2 := openSrc(t, imapconn.Config{Addr: addr, Security: imapconn.None, User: "u", Password: "p", Timeout: 300 * time.Millisecond})
	if m, err := s2.List(ctx, source.Folder{Name: "Good"}); err != nil || len(m) != 1 {
		t.Fatalf("List(Good, 0) on a new Open = %v, %v", m, err)
	}
}

// TestBodyFarLargerThanSize: a body literal far larger than the message's
// RFC822.SIZE is refused before it is read, as a failure of that message
// naming the server.
func TestBodyFarLargerThanSize(t *testing.T) {
	addr := hostileServer(t)
	s := openSrc(t, imapconn.Config{Addr: addr, Security: imapconn.None, User: "u", Password: "p", Timeout: 2 * time.Second})
	start := time.Now()
	called := false
	err := s.Fetch(context.Background(), source.Folder{Name: "Good", Validity: 9}, []string{"1"}, func(source.Meta, io.Reader) error {
		called = true
		return nil
	})
	if err == nil || called {
		t.Fatalf("Fetch = %v (fn called %v), want a refusal", err, called)
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "body of 5000000 octets") || failure.KindOf(err) != failure.Message {
		t.Fatalf("err = %v (kind %v)", err, failure.KindOf(err))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}
