package imap

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/source"
)

// nsServer is a scripted IMAP server with the given NAMESPACE answer and
// LIST entries (attributes, delimiter, name), as Cyrus lists a user's
// folders with shared and other users' folders among them.
func nsServer(t *testing.T, namespace string, list [][3]string) string {
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
			go serveNS(c, namespace, list)
		}
	}()
	return ln.Addr().String()
}

func serveNS(c net.Conn, namespace string, list [][3]string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	defer w.Flush()
	const caps = "IMAP4rev1 NAMESPACE SPECIAL-USE"
	fmt.Fprintf(w, "* OK [CAPABILITY %s] scripted\r\n", caps)
	w.Flush()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		tag, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		cmd, args, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(cmd) {
		case "CAPABILITY":
			fmt.Fprintf(w, "* CAPABILITY %s\r\n%s OK\r\n", caps, tag)
		case "LOGIN":
			fmt.Fprintf(w, "%s OK [CAPABILITY %s] in\r\n", tag, caps)
		case "NAMESPACE":
			fmt.Fprintf(w, "* NAMESPACE %s\r\n%s OK\r\n", namespace, tag)
		case "LIST":
			for _, e := range list {
				fmt.Fprintf(w, "* LIST (%s) %q %q\r\n", e[0], e[1], e[2])
			}
			fmt.Fprintf(w, "%s OK\r\n", tag)
		case "STATUS":
			name, _, _ := strings.Cut(args, " (")
			fmt.Fprintf(w, "* STATUS %s (UIDVALIDITY 7)\r\n%s OK\r\n", name, tag)
		case "LOGOUT":
			fmt.Fprintf(w, "* BYE\r\n%s OK\r\n", tag)
			return
		default:
			fmt.Fprintf(w, "%s OK\r\n", tag)
		}
		w.Flush()
	}
}

// TestSkipped: Folders offers the user's own selectable folders and lists
// the others with why (issue 11 item 6), in both of Cyrus' namespace setups.
func TestSkipped(t *testing.T) {
	tests := []struct {
		name, namespace string
		list            [][3]string
		folders         []string
		skipped         []string // "name: reason prefix"
	}{
		{"INBOX. prefix, shared \"\"", `(("INBOX." ".")) (("user." ".")) (("" "."))`,
			[][3]string{
				{`\HasChildren`, ".", "INBOX"}, {`\Sent`, ".", "INBOX.Sent"},
				{`\Noselect \HasChildren`, ".", "INBOX.Box"}, {``, ".", "INBOX.Box.Child"},
				{``, ".", "user.other.proj"}, {`\HasChildren`, ".", "shared"}, {``, ".", "shared.team"},
			},
			[]string{"INBOX", "Sent", "Box/Child"},
			[]string{`Box: cannot be opened (\Noselect)`, `user/other/proj: another user's folder (namespace "user.")`,
				`shared: shared folder (namespace "")`, `shared/team: shared folder (namespace "")`}},
		{"alternate namespace", `(("" "/")) (("Other Users/" "/")) (("Shared Folders/" "/"))`,
			[][3]string{
				{``, "/", "INBOX"}, {`\Archive`, "/", "Archive"}, {``, "/", "Archive/2024"},
				{``, "/", "Other Users/other/proj"}, {`\Noselect`, "/", "Shared Folders"}, {``, "/", "Shared Folders/shared/team"},
			},
			[]string{"INBOX", "Archive", "Archive/2024"},
			[]string{`Other Users/other/proj: another user's folder (namespace "Other Users/")`,
				`Shared Folders: shared folder (namespace "Shared Folders/")`,
				`Shared Folders/shared/team: shared folder (namespace "Shared Folders/")`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := nsServer(t, tc.namespace, tc.list)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := Open(ctx, imapconn.Config{Addr: addr, Security: imapconn.None, User: "u", Password: "p", Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			fs, err := s.Folders(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range fs {
				names = append(names, f.Name)
				if f.Validity != 7 {
					t.Errorf("%q: validity %d", f.Name, f.Validity)
				}
			}
			if !slices.Equal(names, tc.folders) {
				t.Errorf("folders %q, want %q", names, tc.folders)
			}
			var sk source.SkipLister = s
			got := sk.Skipped()
			if len(got) != len(tc.skipped) {
				t.Fatalf("skipped %q, want %q", got, tc.skipped)
			}
			for i, want := range tc.skipped {
				name, reason, _ := strings.Cut(want, ": ")
				if got[i].Name != name || !strings.HasPrefix(got[i].Reason, reason) {
					t.Errorf("skipped[%d] = %q: %q, want %q: %q…", i, got[i].Name, got[i].Reason, name, reason)
				}
			}
		})
	}
}
