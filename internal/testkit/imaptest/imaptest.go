// Package imaptest starts go-imap's in-memory IMAP server on 127.0.0.1 for
// the tests of the IMAP source and target.
package imaptest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailferry/mailferry/internal/imapconn"
)

// User and Password of the test account.
const (
	User     = "alice"
	Password = "s3cret"
)

// Options tune the test server.
type Options struct {
	// Caps to advertise; nil: IMAP4rev1 + UIDPLUS + NAMESPACE + SPECIAL-USE? (see Start).
	Caps imap.CapSet
	// Append, when set, is called before each APPEND; a non-nil error
	// refuses it (after the literal is read).
	Append func(mailbox string, opts *imap.AppendOptions) error
}

// Server is a running test server.
type Server struct {
	Addr string
	User *imapmemserver.User
	mu   sync.Mutex
	opts Options
	// Appends counts APPEND commands received.
	Appends int
	// Selects and Searches count SELECT and SEARCH commands received.
	Selects, Searches atomic.Int64
}

// SetAppendHook replaces the APPEND hook.
func (s *Server) SetAppendHook(f func(mailbox string, opts *imap.AppendOptions) error) {
	s.mu.Lock()
	s.opts.Append = f
	s.mu.Unlock()
}

// Config returns a plain-text imapconn.Config for the test account.
func (s *Server) Config() imapconn.Config {
	return imapconn.Config{Addr: s.Addr, Security: imapconn.None, User: User, Password: Password, Timeout: 5 * time.Second}
}

// Start starts a server stopped at the end of the test.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(User, Password)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	caps := opts.Caps
	if caps == nil {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapNamespace: {}}
	}
	s := &Server{User: u, opts: opts}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			inner := mem.NewSession().(imapserver.SessionIMAP4rev2)
			return &session{SessionIMAP4rev2: inner, s: s}, nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       nopLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...interface{}) {}

type session struct {
	imapserver.SessionIMAP4rev2
	s *Server
}

func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	s.s.mu.Lock()
	s.s.Appends++
	hook := s.s.opts.Append
	s.s.mu.Unlock()
	if hook != nil {
		if err := hook(mailbox, options); err != nil {
			io.Copy(io.Discard, r)
			return nil, err
		}
	}
	return s.SessionIMAP4rev2.Append(mailbox, r, options)
}

func (s *session) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.s.Selects.Add(1)
	return s.SessionIMAP4rev2.Select(mailbox, options)
}

func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	s.s.Searches.Add(1)
	return s.SessionIMAP4rev2.Search(kind, criteria, options)
}
