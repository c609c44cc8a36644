// Package pop3test is a small in-process POP3 server (RFC 1939 with CAPA,
// RESP-CODES, PIPELINING, STLS, SASL PLAIN and the OAuth2 mechanisms) for
// tests and `mailferry demo`. It listens on 127.0.0.1 only.
//
// Deletions are applied at QUIT only, never on a dropped connection.
package pop3test

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Server.
type Options struct {
	User, Password string   // default "user"/"secret"
	Messages       [][]byte // the mailbox, message numbers 1..n
	// UIDLs are explicit unique ids, one per message; default: the first
	// 16 hex digits of the SHA-1 of the message and its index.
	UIDLs                []string
	TLSConfig            *tls.Config // if set: STLS offered (or implicit TLS with ImplicitTLS)
	ImplicitTLS          bool
	NoPipelining, NoUIDL bool
	// InUseAfter, if > 0, limits concurrent logged-in sessions: the
	// (InUseAfter+1)th gets -ERR [IN-USE] at PASS/AUTH.
	InUseAfter int
	// SysTempOnce: the first RETR of the server's life answers
	// -ERR [SYS/TEMP].
	SysTempOnce bool
	// OAuth2Token, if set, is accepted by AUTH XOAUTH2 and OAUTHBEARER.
	OAuth2Token string
	Latency     time.Duration // delay before each answer
	Logf        func(format string, args ...any)
}

type message struct {
	uidl string
	body []byte
}

// Server is a running POP3 server.
type Server struct {
	opts    Options
	ln      net.Listener
	mu      sync.Mutex
	box     []*message
	deleted []string
	active  int // logged-in sessions
	retrs   int // RETR commands answered so far (for SysTempOnce)
	conns   map[net.Conn]bool
	closed  bool
	wg      sync.WaitGroup
}

// Start starts a server on 127.0.0.1:0.
func Start(opts Options) (*Server, error) {
	if opts.User == "" {
		opts.User = "user"
	}
	if opts.Password == "" {
		opts.Password = "secret"
	}
	if opts.UIDLs != nil && len(opts.UIDLs) != len(opts.Messages) {
		return nil, fmt.Errorf("pop3test: %d UIDLs for %d messages", len(opts.UIDLs), len(opts.Messages))
	}
	if opts.ImplicitTLS && opts.TLSConfig == nil {
		return nil, errors.New("pop3test: ImplicitTLS needs a TLSConfig")
	}
	s := &Server{opts: opts, conns: map[net.Conn]bool{}}
	seen := map[string]bool{}
	for i, m := range opts.Messages {
		var u string
		if opts.UIDLs != nil {
			u = opts.UIDLs[i]
		} else {
			h := sha1.Sum(append([]byte(strconv.Itoa(i)+"\x00"), m...))
			u = hex.EncodeToString(h[:8])
		}
		if seen[u] {
			return nil, fmt.Errorf("pop3test: duplicate UIDL %q", u)
		}
		seen[u] = true
		s.box = append(s.box, &message{uidl: u, body: m})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if opts.ImplicitTLS {
		ln = tls.NewListener(ln, opts.TLSConfig)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr returns host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server and drops every connection (without applying
// their deletions).
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// Deleted returns the UIDLs deleted so far (committed at QUIT), in order.
func (s *Server) Deleted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.deleted...)
}

// Remaining returns the messages still in the mailbox.
func (s *Server) Remaining() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.box))
	for i, m := range s.box {
		out[i] = m.body
	}
	return out
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			ss := &session{s: s, conn: c, tls: s.opts.ImplicitTLS}
			ss.run()
		}()
	}
}

type session struct {
	s      *Server
	conn   net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	tls    bool
	user   string
	authed bool
	box    []*message // snapshot at login; index = number-1
	dele   map[int]bool
}

const idleTimeout = 2 * time.Minute

func (ss *session) run() {
	ss.r = bufio.NewReader(ss.conn)
	ss.w = bufio.NewWriter(ss.conn)
	defer func() {
		if ss.authed {
			ss.s.mu.Lock()
			ss.s.active--
			ss.s.mu.Unlock()
		}
	}()
	ss.reply("+OK pop3test ready")
	for {
		if ss.r.Buffered() == 0 {
			if ss.w.Flush() != nil {
				return
			}
		}
		ss.conn.SetReadDeadline(time.Now().Add(idleTimeout))
		line, err := ss.r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		if d := ss.s.opts.Latency; d > 0 {
			time.Sleep(d)
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		if verb == "PASS" || verb == "AUTH" {
			ss.s.logf("pop3test: C: %s ***", verb)
		} else {
			ss.s.logf("pop3test: C: %s", line)
		}
		if !ss.command(verb, arg) {
			ss.w.Flush()
			return
		}
	}
}

func (ss *session) reply(format string, args ...any) {
	fmt.Fprintf(ss.w, format, args...)
	ss.w.WriteString("\r\n")
}

// command runs one command; false ends the session.
func (ss *session) command(verb, arg string) bool {
	o := &ss.s.opts
	switch verb {
	case "CAPA":
		ss.reply("+OK capability list follows")
		caps := []string{"TOP", "USER", "RESP-CODES", "AUTH-RESP-CODE", "EXPIRE NEVER"}
		if !o.NoUIDL {
			caps = append(caps, "UIDL")
		}
		if !o.NoPipelining {
			caps = append(caps, "PIPELINING")
		}
		sasl := "SASL PLAIN"
		if o.OAuth2Token != "" {
			sasl += " XOAUTH2 OAUTHBEARER"
		}
		caps = append(caps, sasl)
		if o.TLSConfig != nil && !ss.tls && !ss.authed {
			caps = append(caps, "STLS")
		}
		for _, c := range caps {
			ss.reply("%s", c)
		}
		ss.reply(".")
		return true
	case "QUIT":
		if ss.authed {
			ss.commit()
		}
		ss.reply("+OK bye")
		return false
	case "NOOP":
		if !ss.authed {
			break
		}
		ss.reply("+OK")
		return true
	}
	if !ss.authed {
		return ss.authCommand(verb, arg)
	}
	return ss.txCommand(verb, arg)
}

func (ss *session) authCommand(verb, arg string) bool {
	o := &ss.s.opts
	switch verb {
	case "STLS":
		if o.TLSConfig == nil || ss.tls {
			ss.reply("-ERR STLS not available")
			return true
		}
		ss.reply("+OK begin TLS negotiation")
		if ss.w.Flush() != nil {
			return false
		}
		tc := tls.Server(ss.conn, o.TLSConfig)
		tc.SetDeadline(time.Now().Add(idleTimeout))
		if err := tc.Handshake(); err != nil {
			ss.s.logf("pop3test: TLS handshake: %v", err)
			return false
		}
		tc.SetDeadline(time.Time{})
		ss.conn = tc
		ss.tls = true
		ss.r = bufio.NewReader(tc)
		ss.w = bufio.NewWriter(tc)
		ss.user = ""
		return true
	case "USER":
		ss.user = arg
		ss.reply("+OK")
		return true
	case "PASS":
		if ss.user == "" {
			ss.reply("-ERR USER first")
			return true
		}
		user := ss.user
		ss.user = ""
		ss.login(user == o.User && arg == o.Password, user)
		return true
	case "AUTH":
		ss.auth(arg)
		return true
	}
	ss.reply("-ERR unknown command in AUTHORIZATION state")
	return true
}

// readResponse reads one SASL client response line; ok is false when the
// client cancelled with "*" or the line is not base64.
func (ss *session) readResponse() (resp []byte, ok bool, err error) {
	if err := ss.w.Flush(); err != nil {
		return nil, false, err
	}
	ss.conn.SetReadDeadline(time.Now().Add(idleTimeout))
	line, err := ss.r.ReadString('\n')
	if err != nil {
		return nil, false, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "*" {
		return nil, false, nil
	}
	b, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		return nil, false, nil
	}
	return b, true, nil
}

func (ss *session) auth(arg string) {
	o := &ss.s.opts
	mech, ir, hasIR := strings.Cut(arg, " ")
	mech = strings.ToUpper(mech)
	var resp []byte
	switch {
	case mech == "PLAIN" || (o.OAuth2Token != "" && (mech == "XOAUTH2" || mech == "OAUTHBEARER")):
	default:
		ss.reply("-ERR [AUTH] unsupported mechanism")
		return
	}
	if hasIR {
		if ir != "=" {
			b, err := base64.StdEncoding.DecodeString(ir)
			if err != nil {
				ss.reply("-ERR [AUTH] bad base64")
				return
			}
			resp = b
		}
	} else {
		ss.reply("+ ")
		b, ok, err := ss.readResponse()
		if err != nil {
			return
		}
		if !ok {
			ss.reply("-ERR [AUTH] authentication aborted")
			return
		}
		resp = b
	}
	switch mech {
	case "PLAIN":
		parts := strings.Split(string(resp), "\x00")
		if len(parts) != 3 {
			ss.reply("-ERR [AUTH] malformed PLAIN response")
			return
		}
		ok := parts[1] == o.User && parts[2] == o.Password && (parts[0] == "" || parts[0] == parts[1])
		ss.login(ok, parts[1])
	case "XOAUTH2", "OAUTHBEARER":
		user, tok := parseOAuth(mech, string(resp))
		ok := user == o.User && tok == o.OAuth2Token
		if !ok {
			// RFC 7628 §3.2.2 / XOAUTH2: an error challenge, then -ERR.
			ss.reply("+ %s", base64.StdEncoding.EncodeToString([]byte(`{"status":"invalid_token","schemes":"bearer"}`)))
			if _, _, err := ss.readResponse(); err != nil {
				return
			}
		}
		ss.login(ok, user)
	}
}

func parseOAuth(mech, s string) (user, token string) {
	if mech == "OAUTHBEARER" {
		gs2, rest, _ := strings.Cut(s, "\x01")
		for _, f := range strings.Split(gs2, ",") {
			if v, ok := strings.CutPrefix(f, "a="); ok {
				user = v
			}
		}
		s = rest
	}
	for _, kv := range strings.Split(s, "\x01") {
		if v, ok := strings.CutPrefix(kv, "user="); ok {
			user = v
		}
		if v, ok := strings.CutPrefix(kv, "auth="); ok {
			if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
				token = v[7:]
			}
		}
	}
	return user, token
}

func (ss *session) login(ok bool, user string) {
	if !ok {
		ss.reply("-ERR [AUTH] Authentication failed.")
		return
	}
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.InUseAfter > 0 && s.active >= s.opts.InUseAfter {
		ss.reply("-ERR [IN-USE] Mailbox is locked by another POP3 session.")
		return
	}
	s.active++
	ss.authed = true
	ss.box = append([]*message(nil), s.box...)
	ss.dele = map[int]bool{}
	ss.reply("+OK Logged in.")
}

// commit applies this session's deletions (the UPDATE state).
func (ss *session) commit() {
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	gone := map[*message]bool{}
	for n := range ss.dele {
		gone[ss.box[n-1]] = true
	}
	kept := s.box[:0:0]
	for _, m := range s.box {
		if gone[m] {
			s.deleted = append(s.deleted, m.uidl)
		} else {
			kept = append(kept, m)
		}
	}
	s.box = kept
}

// msg parses a message-number argument; nil and an error reply otherwise.
func (ss *session) msg(arg string) (int, *message) {
	n, err := strconv.Atoi(strings.TrimSpace(arg))
	if err != nil || n < 1 || n > len(ss.box) {
		ss.reply("-ERR no such message")
		return 0, nil
	}
	if ss.dele[n] {
		ss.reply("-ERR message %d already deleted", n)
		return 0, nil
	}
	return n, ss.box[n-1]
}

func (ss *session) txCommand(verb, arg string) bool {
	o := &ss.s.opts
	switch verb {
	case "STAT":
		n, size := 0, 0
		for i, m := range ss.box {
			if !ss.dele[i+1] {
				n++
				size += len(m.body)
			}
		}
		ss.reply("+OK %d %d", n, size)
	case "LIST", "UIDL":
		if verb == "UIDL" && o.NoUIDL {
			ss.reply("-ERR unknown command")
			return true
		}
		val := func(m *message) string {
			if verb == "UIDL" {
				return m.uidl
			}
			return strconv.Itoa(len(m.body))
		}
		if strings.TrimSpace(arg) != "" {
			n, m := ss.msg(arg)
			if m != nil {
				ss.reply("+OK %d %s", n, val(m))
			}
			return true
		}
		ss.reply("+OK")
		for i, m := range ss.box {
			if !ss.dele[i+1] {
				ss.reply("%d %s", i+1, val(m))
			}
		}
		ss.reply(".")
	case "RETR":
		_, m := ss.msg(arg)
		if m == nil {
			return true
		}
		ss.s.mu.Lock()
		ss.s.retrs++
		first := ss.s.retrs == 1
		ss.s.mu.Unlock()
		if first && o.SysTempOnce {
			ss.reply("-ERR [SYS/TEMP] Temporary failure, try again later.")
			return true
		}
		ss.reply("+OK %d octets", len(m.body))
		DotStuff(ss.w, m.body)
	case "TOP":
		a, b, _ := strings.Cut(strings.TrimSpace(arg), " ")
		lines, err := strconv.Atoi(strings.TrimSpace(b))
		if err != nil || lines < 0 {
			ss.reply("-ERR usage: TOP msg lines")
			return true
		}
		_, m := ss.msg(a)
		if m == nil {
			return true
		}
		ss.reply("+OK")
		DotStuff(ss.w, top(m.body, lines))
	case "DELE":
		n, m := ss.msg(arg)
		if m == nil {
			return true
		}
		ss.dele[n] = true
		ss.reply("+OK message %d deleted", n)
	case "RSET":
		ss.dele = map[int]bool{}
		ss.reply("+OK")
	default:
		ss.reply("-ERR unknown command")
	}
	return true
}

// top returns the header, the blank line and the first n body lines.
func top(msg []byte, n int) []byte {
	i, inBody := 0, false
	for i < len(msg) {
		j := bytes.IndexByte(msg[i:], '\n')
		if j < 0 {
			j = len(msg) - i - 1
		}
		line := msg[i : i+j+1]
		if inBody {
			if n == 0 {
				break
			}
			n--
		} else if len(bytes.TrimRight(line, "\r\n")) == 0 {
			inBody = true
		}
		i += j + 1
	}
	return msg[:i]
}

// DotStuff writes msg as a POP3 multi-line body: a "." before lines that
// start with ".", CRLF after a last line without line ending, then ".\r\n".
// Bare LFs are kept as they are.
func DotStuff(w io.Writer, msg []byte) error {
	bw, ok := w.(*bufio.Writer)
	if !ok {
		bw = bufio.NewWriter(w)
	}
	for len(msg) > 0 {
		if msg[0] == '.' {
			bw.WriteByte('.')
		}
		i := bytes.IndexByte(msg, '\n')
		if i < 0 {
			bw.Write(msg)
			bw.WriteString("\r\n")
			break
		}
		bw.Write(msg[:i+1])
		msg = msg[i+1:]
	}
	bw.WriteString(".\r\n")
	return bw.Flush()
}
