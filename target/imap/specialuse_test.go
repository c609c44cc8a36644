package imap

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/mailbox"
)

// useServer is a scripted IMAP server that keeps folders with their special
// use and records each CREATE, as Cyrus does: CREATE name (USE (\X)) when
// another folder has \X is NO [USEATTR].
type useServer struct {
	addr string
	caps string
	mu   sync.Mutex
	use  map[string]string // folder → special use ("" none)
	log  []string          // CREATE arguments
}

func startUseServer(t *testing.T, createSpecialUse bool, folders map[string]string) *useServer {
	t.Helper()
	s := &useServer{caps: "IMAP4rev1 SPECIAL-USE", use: map[string]string{"INBOX": ""}}
	if createSpecialUse {
		s.caps += " CREATE-SPECIAL-USE"
	}
	for f, u := range folders {
		s.use[f] = u
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *useServer) creates() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

func (s *useServer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	defer w.Flush()
	fmt.Fprintf(w, "* OK [CAPABILITY %s] scripted\r\n", s.caps)
	w.Flush()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		tag, rest, _ := strings.Cut(line, " ")
		cmd, args, _ := strings.Cut(rest, " ")
		s.mu.Lock()
		switch strings.ToUpper(cmd) {
		case "CAPABILITY":
			fmt.Fprintf(w, "* CAPABILITY %s\r\n%s OK\r\n", s.caps, tag)
		case "LOGIN":
			fmt.Fprintf(w, "%s OK [CAPABILITY %s] in\r\n", tag, s.caps)
		case "LIST":
			if strings.HasSuffix(args, `""`) {
				fmt.Fprintf(w, "* LIST (\\Noselect) \"/\" \"\"\r\n")
			} else {
				for f, u := range s.use {
					fmt.Fprintf(w, "* LIST (%s) \"/\" %q\r\n", u, f)
				}
			}
			fmt.Fprintf(w, "%s OK\r\n", tag)
		case "CREATE":
			s.log = append(s.log, args)
			name, opts, _ := strings.Cut(args, " ")
			if strings.HasPrefix(args, `"`) {
				end := strings.Index(args[1:], `"`) + 1
				name, opts = args[1:end], strings.TrimSpace(args[end+1:])
			}
			use := strings.TrimSuffix(strings.TrimPrefix(opts, "(USE ("), "))")
			taken := false
			for _, u := range s.use {
				taken = taken || (use != "" && u == use)
			}
			switch _, exists := s.use[name]; {
			case exists:
				fmt.Fprintf(w, "%s NO [ALREADYEXISTS] exists\r\n", tag)
			case taken:
				fmt.Fprintf(w, "%s NO [USEATTR] SPECIAL-USE flag conflict\r\n", tag)
			default:
				s.use[name] = use
				fmt.Fprintf(w, "%s OK\r\n", tag)
			}
		case "LOGOUT":
			fmt.Fprintf(w, "* BYE\r\n%s OK\r\n", tag)
			s.mu.Unlock()
			return
		default:
			fmt.Fprintf(w, "%s OK\r\n", tag)
		}
		s.mu.Unlock()
		w.Flush()
	}
}

// TestEnsureSpecialUse: a folder Ensured for a special use the target has
// no folder for is created with CREATE ... (USE (\X)) where the server
// offers CREATE-SPECIAL-USE, and plainly otherwise (issue 11 item 2).
func TestEnsureSpecialUse(t *testing.T) {
	existing := map[string]string{"Archives": `\Archive`}
	tests := []struct {
		name      string
		createSU  bool
		folder    mailbox.Folder
		want      []string // CREATE arguments, in order
		wantUsed  string   // the special use the server ends with on folder.Name
		canCreate bool
	}{
		{"sent", true, mailbox.Folder{Name: "Sent", SpecialUse: `\Sent`}, []string{`"Sent" (USE (\Sent))`}, `\Sent`, true},
		{"nested junk: parents plain", true, mailbox.Folder{Name: "Old/Junk", SpecialUse: `\Junk`}, []string{`"Old"`, `"Old/Junk" (USE (\Junk))`}, `\Junk`, true},
		{"no special use", true, mailbox.Folder{Name: "Work"}, []string{`"Work"`}, "", true},
		{"use the target has already", true, mailbox.Folder{Name: "Archive", SpecialUse: `\Archive`}, []string{`"Archive"`}, "", true},
		{"a view is not given", true, mailbox.Folder{Name: "All Mail", SpecialUse: `\All`}, []string{`"All Mail"`}, "", true},
		{"no CREATE-SPECIAL-USE", false, mailbox.Folder{Name: "Drafts", SpecialUse: `\Drafts`}, []string{`"Drafts"`}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startUseServer(t, tc.createSU, existing)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tg, err := Open(ctx, imapconn.Config{Addr: srv.addr, Security: imapconn.None, User: "u", Password: "p", Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			if ok, err := tg.CreatesSpecialUse(ctx); err != nil || ok != tc.canCreate {
				t.Errorf("CreatesSpecialUse = %v, %v; want %v", ok, err, tc.canCreate)
			}
			if _, err := tg.Ensure(ctx, tc.folder); err != nil {
				t.Fatal(err)
			}
			if got := srv.creates(); !slices.Equal(got, tc.want) {
				t.Errorf("CREATE %q, want %q", got, tc.want)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if u, ok := srv.use[tc.folder.Name]; !ok || u != tc.wantUsed {
				t.Errorf("folder %q: exists %v, special use %q; want %q", tc.folder.Name, ok, u, tc.wantUsed)
			}
		})
	}
}

// TestEnsureSpecialUseRefused: a server that refuses the use (another
// folder has it, which the listing did not show) still gets the folder.
func TestEnsureSpecialUseRefused(t *testing.T) {
	srv := startUseServer(t, true, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tg, err := Open(ctx, imapconn.Config{Addr: srv.addr, Security: imapconn.None, User: "u", Password: "p", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if _, err := tg.Ensure(ctx, mailbox.Folder{Name: "Junk", SpecialUse: `\Junk`}); err != nil {
		t.Fatal(err)
	}
	// Another client gives \Trash away behind our back.
	srv.mu.Lock()
	srv.use["Bin"] = `\Trash`
	srv.mu.Unlock()
	if _, err := tg.Ensure(ctx, mailbox.Folder{Name: "Trash", SpecialUse: `\Trash`}); err != nil {
		t.Fatal(err)
	}
	// A second \Junk folder is not asked for the use the first one got.
	if _, err := tg.Ensure(ctx, mailbox.Folder{Name: "Spam", SpecialUse: `\Junk`}); err != nil {
		t.Fatal(err)
	}
	want := []string{`"Junk" (USE (\Junk))`, `"Trash" (USE (\Trash))`, `"Trash"`, `"Spam"`}
	if got := srv.creates(); !slices.Equal(got, want) {
		t.Errorf("CREATE %q, want %q", got, want)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if _, ok := srv.use["Trash"]; !ok {
		t.Error("Trash was not created")
	}
}
