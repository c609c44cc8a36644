package imapconn

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/mutf7"
	"github.com/mailferry/mailferry/internal/netconn"
)

// Raw is a bare IMAP session for bulk APPEND. It is written here because
// go-imap v2 (beta.8, the newest) falls short for that one job: it waits for
// the server's "+" continuation before every literal over 4096 bytes even
// when the server announces LITERAL+ (so every APPEND of a real message
// costs a round trip, and the server idles in between), it cannot send
// MULTIAPPEND (RFC 3502) nor a literal8 (RFC 3516, for NUL bytes), and it
// drops the connection on an APPENDUID response code that carries a
// uid-set. Raw does what the IMAP target needs for storing and nothing
// else: log in, SELECT, APPEND and MULTIAPPEND with non-synchronizing
// literals and literal8s, pipelined, LOGOUT. Everything else stays on
// go-imap. Reads go through the same limitConn as go-imap's, so a hostile
// server is bounded in the same way. A Raw is not safe for concurrent use.
type Raw struct {
	cfg  Config
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	dw   *deadlineWriter
	io   time.Duration // bound on each read and write
	caps map[string]bool
	tags uint64
	err  error // sticky: the session is unusable
}

// Status is the tagged answer to a command.
type Status struct {
	Tag  string
	Type string // OK, NO or BAD
	Code string // response code atom, upper case ("" none)
	Args string // the response code's arguments
	Text string
}

// Err returns nil for OK, else an *imap.Error (so Classify and the callers'
// checks of response codes work as for go-imap's errors).
func (s *Status) Err() error {
	if s.Type == "OK" {
		return nil
	}
	t := imap.StatusResponseTypeNo
	if s.Type == "BAD" {
		t = imap.StatusResponseTypeBad
	}
	return &imap.Error{Type: t, Code: imap.ResponseCode(s.Code), Text: s.Text}
}

// DialRaw connects, secures the connection and logs in, like Dial.
func DialRaw(ctx context.Context, cfg Config) (*Raw, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	defer cancel()
	conn, stop, err := secure(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer stop()
	s := &Raw{cfg: cfg, conn: conn, r: bufio.NewReaderSize(conn, 16<<10), caps: map[string]bool{}, io: cfg.timeout()}
	s.dw = &deadlineWriter{conn: conn, d: s.io}
	s.w = bufio.NewWriterSize(s.dw, 64<<10)
	if err := s.start(ctx); err != nil {
		s.conn.Close()
		return nil, ctxErr(ctx, err)
	}
	return s, nil
}

func (s *Raw) start(ctx context.Context) error {
	line, st, err := s.Read()
	if err != nil {
		return Classify(fmt.Errorf("read greeting from %s: %w", s.cfg.Addr, err))
	}
	if st != nil || !strings.HasPrefix(line, "* ") {
		return notIMAPGreeting(s.cfg.Addr, line)
	}
	kind, code, args, text := parseCond(line[2:])
	switch kind {
	case "OK", "PREAUTH":
	case "BYE":
		return failure.Mark(failure.Temporary, fmt.Errorf("%s refuses the connection: %s", s.cfg.Addr, clip(text)))
	default:
		return failure.Mark(failure.Fatal, fmt.Errorf("read greeting from %s: not an IMAP greeting: %s", s.cfg.Addr, clip(line)))
	}
	if code == "CAPABILITY" {
		s.setCaps(args)
	} else if err := s.capability(); err != nil {
		return err
	}
	if kind == "PREAUTH" {
		return nil
	}
	st, err = s.login(ctx)
	if err != nil {
		return err
	}
	if st.Code == "CAPABILITY" {
		s.setCaps(st.Args)
		return nil
	}
	return s.capability()
}

// Has reports whether the server announced capability c (case-insensitive).
func (s *Raw) Has(c string) bool { return s.caps[strings.ToUpper(c)] }

func (s *Raw) setCaps(list string) {
	s.caps = map[string]bool{}
	for _, c := range strings.Fields(list) {
		s.caps[strings.ToUpper(c)] = true
	}
}

func (s *Raw) capability() error {
	tag := s.Tag()
	s.w.WriteString(tag + " CAPABILITY\r\n")
	st, err := s.Wait(tag, func(line string) {
		if rest, ok := cutFold(line, "* CAPABILITY "); ok {
			s.setCaps(rest)
		}
	})
	if err != nil {
		return Classify(fmt.Errorf("CAPABILITY on %s: %w", s.cfg.Addr, err))
	}
	if err := st.Err(); err != nil {
		return Classify(fmt.Errorf("CAPABILITY on %s: %w", s.cfg.Addr, err))
	}
	return nil
}

// login authenticates as login() does for go-imap: OAuth2 when a token
// source is set, else AUTHENTICATE PLAIN, else LOGIN.
func (s *Raw) login(ctx context.Context) (*Status, error) {
	cfg := s.cfg
	var st *Status
	var err error
	switch {
	case cfg.OAuth2Token != nil:
		tok, terr := cfg.OAuth2Token(ctx)
		if terr != nil {
			return nil, failure.Mark(failure.Auth, fmt.Errorf("get an OAuth2 token for %s: %w", cfg.User, terr))
		}
		st, err = s.authenticate(netconn.OAuth2Client(cfg.User, tok, cfg.Addr, s.Has("AUTH=OAUTHBEARER")))
	case s.Has("AUTH=PLAIN"):
		st, err = s.authenticate(sasl.NewPlainClient("", cfg.User, cfg.Password))
	case s.Has("LOGINDISABLED"):
		return nil, failure.Mark(failure.Auth, fmt.Errorf("server %s allows neither AUTHENTICATE PLAIN nor LOGIN here (is TLS required?)", cfg.Addr))
	default:
		st, err = s.loginCmd()
	}
	if err != nil {
		return nil, Classify(fmt.Errorf("log in as %q on %s: %w", cfg.User, cfg.Addr, err))
	}
	if err := st.Err(); err != nil {
		return nil, authErr(cfg, err)
	}
	return st, nil
}

// authenticate runs AUTHENTICATE with a SASL client (initial response
// inline with SASL-IR, else after the first continuation).
func (s *Raw) authenticate(sc sasl.Client) (*Status, error) {
	mech, ir, err := sc.Start()
	if err != nil {
		return nil, err
	}
	tag := s.Tag()
	s.w.WriteString(tag + " AUTHENTICATE " + mech)
	if ir != nil && s.Has("SASL-IR") {
		s.w.WriteString(" " + b64OrEq(ir))
		ir = nil
	}
	s.w.WriteString("\r\n")
	if err := s.Flush(); err != nil {
		return nil, err
	}
	for {
		line, st, err := s.Read()
		if err != nil {
			return nil, err
		}
		if st != nil {
			if st.Tag != tag {
				return nil, fmt.Errorf("answer to an unknown command: %s", clip(line))
			}
			return st, nil
		}
		if !strings.HasPrefix(line, "+") {
			continue // untagged data
		}
		var resp []byte
		if ir != nil {
			resp, ir = ir, nil
		} else {
			chal, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(line, "+")))
			if derr != nil {
				chal = nil
			}
			if resp, err = sc.Next(chal); err != nil {
				s.w.WriteString("*\r\n") // cancel
				if ferr := s.Flush(); ferr != nil {
					return nil, ferr
				}
				continue
			}
		}
		s.w.WriteString(base64.StdEncoding.EncodeToString(resp) + "\r\n")
		if err := s.Flush(); err != nil {
			return nil, err
		}
	}
}

func b64OrEq(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

// loginCmd sends LOGIN; a user name or password that cannot be quoted goes
// as a synchronizing literal.
func (s *Raw) loginCmd() (*Status, error) {
	tag := s.Tag()
	s.w.WriteString(tag + " LOGIN ")
	if err := s.astring(s.cfg.User); err != nil {
		return nil, err
	}
	s.w.WriteString(" ")
	if err := s.astring(s.cfg.Password); err != nil {
		return nil, err
	}
	s.w.WriteString("\r\n")
	return s.Wait(tag, nil)
}

// astring writes a quoted string, or a literal (waiting for the server's
// continuation unless it has LITERAL+).
func (s *Raw) astring(v string) error {
	if q, ok := Quote(v); ok {
		s.w.WriteString(q)
		return nil
	}
	if s.Has("LITERAL+") {
		fmt.Fprintf(s.w, "{%d+}\r\n%s", len(v), v)
		return nil
	}
	fmt.Fprintf(s.w, "{%d}\r\n", len(v))
	if err := s.Flush(); err != nil {
		return err
	}
	for {
		line, st, err := s.Read()
		if err != nil {
			return err
		}
		if st != nil {
			return fmt.Errorf("literal refused: %s", clip(st.Type+" "+st.Text))
		}
		if strings.HasPrefix(line, "+") {
			break
		}
	}
	s.w.WriteString(v)
	return nil
}

// Quote returns v as an IMAP quoted string, or false when it must be sent
// as a literal (CR, LF, NUL, 8-bit, or long).
func Quote(v string) (string, bool) {
	if len(v) > 1024 {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == 0 || c == '\r' || c == '\n' || c >= 0x80:
			return "", false
		case c == '"' || c == '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String(), true
}

// EncodeMailbox returns a folder name as sent on the wire without
// UTF8=ACCEPT: "INBOX" for any case of it, else modified UTF-7 (RFC 3501
// §5.1.3), as go-imap's encoder does it.
func EncodeMailbox(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return mutf7.Encode(name)
}

// WriteMailbox writes a folder name as an astring: quoted, or as a
// non-synchronizing literal (the caller has checked LITERAL+). It is
// encoded as go-imap encodes it on the session that created the folder:
// UTF-8 (only "&" escaped) when the server announces IMAP4rev2, else
// modified UTF-7.
func (s *Raw) WriteMailbox(name string) {
	enc := EncodeMailbox(name)
	if s.Has("IMAP4rev2") && enc != "INBOX" {
		enc = strings.ReplaceAll(name, "&", "&-")
	}
	if enc == "INBOX" {
		s.w.WriteString(enc)
		return
	}
	if q, ok := Quote(enc); ok {
		s.w.WriteString(q)
		return
	}
	fmt.Fprintf(s.w, "{%d+}\r\n%s", len(enc), enc)
}

// WriteLiteralHead writes the announcement of a non-synchronizing literal
// of size octets (the caller has checked LITERAL+). With binary it is a
// literal8, "~{n+}" (RFC 3516, with RFC 7888's "+"), the only form that
// may carry NUL bytes; the caller has checked BINARY. Only messages that
// hold NUL go that way: Dovecot 2.3 and Cyrus 3.6 rewrite the parts of a
// literal8 marked "Content-Transfer-Encoding: binary" as base64, which a
// normal literal keeps as they are.
func (s *Raw) WriteLiteralHead(size int64, binary bool) {
	if binary {
		s.w.WriteByte('~')
	}
	s.w.WriteString("{" + strconv.FormatInt(size, 10) + "+}\r\n")
}

// SetIOTimeout changes the bound on each read and write (the default is
// the configured timeout, which bounds the login).
func (s *Raw) SetIOTimeout(d time.Duration) {
	s.io, s.dw.d = d, d
}

// abort closes the connection so that nothing more of what was written
// reaches the server (TCP RST, unsent bytes dropped).
func (s *Raw) abort() {
	if lc, ok := s.conn.(*limitConn); ok {
		lc.Abort()
		return
	}
	s.conn.Close()
}

// Tag returns a new command tag.
func (s *Raw) Tag() string {
	s.tags++
	return "R" + strconv.FormatUint(s.tags, 10)
}

// W is the buffered writer for commands; Flush sends what it holds.
func (s *Raw) W() *bufio.Writer { return s.w }

// Flush sends the buffered command bytes.
func (s *Raw) Flush() error {
	if s.err != nil {
		return s.err
	}
	if err := s.w.Flush(); err != nil {
		return s.fail(err)
	}
	return nil
}

// Broken returns the error that made the session unusable, or nil.
func (s *Raw) Broken() error { return s.err }

func (s *Raw) fail(err error) error {
	if s.err == nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%s did not answer for %v: %w", s.cfg.Addr, s.io, err)
		}
		s.err = failure.Mark(failure.Temporary, err)
		if k := failure.KindOf(Classify(err)); k == failure.Fatal {
			s.err = failure.Mark(failure.Fatal, err)
		}
		s.abort()
	}
	return s.err
}

// Read reads one response. A tagged one is returned as a Status; untagged
// data and continuation requests as their text with the contents of any
// literals left out. It waits at most the configured timeout.
func (s *Raw) Read() (string, *Status, error) {
	if s.err != nil {
		return "", nil, s.err
	}
	if err := s.Flush(); err != nil {
		return "", nil, err
	}
	s.conn.SetReadDeadline(time.Now().Add(s.io))
	var b strings.Builder
	for {
		seg, err := s.r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return "", nil, s.fail(err)
		}
		seg = strings.TrimRight(seg, "\r\n")
		n, ok := literalSize(seg)
		if b.Len() < 64<<10 {
			b.WriteString(seg)
		}
		if !ok {
			break
		}
		// The limitConn has bounded n already.
		if _, err := io.CopyN(io.Discard, s.r, n); err != nil {
			return "", nil, s.fail(err)
		}
	}
	line := b.String()
	if line == "" || line[0] == '*' || line[0] == '+' {
		if bye, ok := cutFold(line, "* BYE"); ok {
			// The server is closing: remember why, the next read fails.
			s.err = failure.Mark(failure.Temporary, fmt.Errorf("%s closed the session: %s", s.cfg.Addr, clip(strings.TrimSpace(bye))))
		}
		return line, nil, nil
	}
	tag, rest, _ := strings.Cut(line, " ")
	kind, code, args, text := parseCond(rest)
	return line, &Status{Tag: tag, Type: kind, Code: code, Args: args, Text: text}, nil
}

// Wait reads until the tagged answer to tag, passing untagged responses to
// untagged (may be nil). A tagged answer to another command is a protocol
// error: Raw's users wait for their commands in the order they sent them.
func (s *Raw) Wait(tag string, untagged func(line string)) (*Status, error) {
	for {
		line, st, err := s.Read()
		if err != nil {
			return nil, err
		}
		if st == nil {
			if untagged != nil {
				untagged(line)
			}
			continue
		}
		if st.Tag != tag {
			return nil, s.fail(failure.Mark(failure.Fatal, fmt.Errorf("%s answered command %q while %q was expected: %s", s.cfg.Addr, st.Tag, tag, clip(line))))
		}
		return st, nil
	}
}

// CloseOnDone closes the connection when ctx ends (call stop when done).
func (s *Raw) CloseOnDone(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() { s.conn.Close() })
}

// Close says LOGOUT (waiting at most 2 s) unless the session is broken or
// writeLogout is false (a command is half written), and closes.
func (s *Raw) Close(writeLogout bool) error {
	if s.err == nil && writeLogout {
		s.SetIOTimeout(2 * time.Second)
		tag := s.Tag()
		s.w.WriteString(tag + " LOGOUT\r\n")
		s.Wait(tag, nil)
	}
	if s.err == nil {
		s.err = failure.Mark(failure.Temporary, errors.New("session closed"))
	}
	if !writeLogout {
		s.abort()
		return nil
	}
	return s.conn.Close()
}

// literalSize reports whether a response line segment ends with a literal
// announcement {N} and returns N.
func literalSize(seg string) (int64, bool) {
	if !strings.HasSuffix(seg, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(seg, '{')
	if i < 0 {
		return 0, false
	}
	num := strings.TrimSuffix(seg[i+1:len(seg)-1], "+")
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// parseCond splits "OK [CODE args] text" into its parts; kind is upper case.
func parseCond(s string) (kind, code, args, text string) {
	kind, rest, _ := strings.Cut(s, " ")
	kind = strings.ToUpper(kind)
	if strings.HasPrefix(rest, "[") {
		if end := strings.IndexByte(rest, ']'); end > 0 {
			inner := rest[1:end]
			code, args, _ = strings.Cut(inner, " ")
			code = strings.ToUpper(code)
			rest = strings.TrimPrefix(rest[end+1:], " ")
		}
	}
	return kind, code, args, rest
}

// cutFold is strings.CutPrefix with a case-insensitive prefix.
func cutFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// deadlineWriter bounds every write by d: a server that stops reading
// fails the write instead of blocking it for ever.
type deadlineWriter struct {
	conn net.Conn
	d    time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.conn.SetWriteDeadline(time.Now().Add(w.d))
	return w.conn.Write(p)
}
