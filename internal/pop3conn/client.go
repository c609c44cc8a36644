// Package pop3conn is a POP3 client (RFC 1939, RFC 2449 CAPA and response
// codes, RFC 2595 STLS, RFC 5034 SASL, RFC 3206 codes); source/pop3 adapts
// it to the engine's Source.
//
// Bodies are streamed through a dot reader that yields the exact stored
// bytes; every read and write has a deadline; cancelling a context closes
// the connection. Errors are *Error values (for -ERR replies) wrapped with
// the server's address and classed with failure.Mark.
package pop3conn

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/netconn"
)

// Security selects how the connection is protected (netconn.Security).
type Security = netconn.Security

const (
	// Implicit TLS from the first byte (pop3s://, port 995).
	Implicit = netconn.Implicit
	// STARTTLS: plain connection upgraded with STLS; fails when the
	// server does not offer STLS (pop3://).
	STARTTLS = netconn.STARTTLS
	// None: no TLS at all (pop3://…?tls=none).
	None = netconn.None
)

// Config describes one POP3 account.
type Config struct {
	Addr      string      // host:port
	Security  Security    // Implicit (the zero value), STARTTLS or None
	TLSConfig *tls.Config // RootCAs etc.; ServerName derived from Addr if empty
	User      string
	Password  string
	// OAuth2Token, if set, is used instead of the password: AUTH
	// OAUTHBEARER when the server lists it in CAPA SASL, else XOAUTH2.
	OAuth2Token func(ctx context.Context) (string, error)
	Folder      string        // name of the one folder presented, default "INBOX"
	Timeout     time.Duration // per read/write deadline, default 60s
	// Dialer opens the TCP connection (tests, fault proxies); default
	// net.Dialer.
	Dialer netconn.DialFunc
}

const defaultTimeout = 60 * time.Second

// pipelineWindow is the number of outstanding commands when the server
// advertises PIPELINING.
const pipelineWindow = 16

// MsgID is one line of a UIDL listing.
type MsgID struct {
	Num int
	UID string
}

// MsgSize is one line of a LIST listing.
type MsgSize struct {
	Num  int
	Size int64
}

// Client is one POP3 session. It is not safe for concurrent use.
type Client struct {
	cfg     Config
	raw     net.Conn // the TCP connection (closed to cancel)
	conn    net.Conn // raw, or TLS over it
	br      *bufio.Reader
	bw      *bufio.Writer
	caps    map[string][]string
	capaOK  bool
	pending *dotReader // unread multi-line response of a previous command
	broken  error
	sizes   map[int]int64 // message sizes announced by the last LIST
}

// MaxUnlistedBody bounds a RETR or TOP answer for a message whose size LIST
// did not announce. A listed message may take twice its size plus 1 MiB
// (servers count octets differently, but not that differently).
const MaxUnlistedBody = 1 << 30

// bodyLimit returns the most octets the answer to cmd ("RETR n", "TOP n
// l") may take on the wire, and the size LIST announced (-1: unknown).
func (c *Client) bodyLimit(cmd string) (limit, announced int64) {
	f := strings.Fields(cmd)
	if len(f) >= 2 {
		if n, err := strconv.Atoi(f[1]); err == nil {
			if size, ok := c.sizes[n]; ok {
				return 2*size + 1<<20, size
			}
		}
	}
	return MaxUnlistedBody, -1
}

// newBody returns a reader for the multi-line answer to cmd, bounded by
// bodyLimit.
func (c *Client) newBody(cmd string) *dotReader {
	dr := newDotReader(c.br)
	dr.limit, dr.announced = c.bodyLimit(cmd)
	return dr
}

// deadlineConn sets a fresh deadline before every read and write, so a
// stalled server fails within the timeout whatever the caller does.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	d.Conn.SetReadDeadline(time.Now().Add(d.timeout))
	return d.Conn.Read(p)
}

func (d *deadlineConn) Write(p []byte) (int, error) {
	d.Conn.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.Conn.Write(p)
}

// Dial connects, reads the greeting, negotiates TLS as configured and
// logs in.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.Folder == "" {
		cfg.Folder = "INBOX"
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	raw, err := netconn.Dial(dctx, cfg.Dialer, cfg.Addr)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("pop3 %s: connect: %w", cfg.Addr, ctx.Err())
		}
		return nil, fmt.Errorf("pop3 %s: cannot connect: %w", cfg.Addr, err)
	}
	c := &Client{cfg: cfg, raw: raw}
	c.setConn(&deadlineConn{Conn: raw, timeout: cfg.Timeout})
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	err = c.start(ctx)
	if !stop() && err == nil {
		err = fmt.Errorf("pop3 %s: login: %w", cfg.Addr, ctx.Err())
	}
	if err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}

func (c *Client) setConn(conn net.Conn) {
	c.conn = conn
	c.br = bufio.NewReaderSize(conn, 32<<10)
	c.bw = bufio.NewWriterSize(conn, 4<<10)
}

func (c *Client) tlsConfig() *tls.Config {
	return netconn.TLSConfig(c.cfg.TLSConfig, c.cfg.Addr)
}

func (c *Client) handshake(ctx context.Context) error {
	tc := tls.Client(c.conn, c.tlsConfig())
	hctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("pop3 %s: TLS handshake: %w", c.cfg.Addr, ctx.Err())
		}
		if perr := plainGreetingOnTLS(c.cfg.Addr, err); perr != nil {
			return perr
		}
		return failure.Mark(failure.TLS, fmt.Errorf(
			"pop3 %s: TLS handshake failed (use --ca-file to trust the server's certificate, or ?tls=none for a server without TLS): %w",
			c.cfg.Addr, err))
	}
	c.setConn(tc)
	return nil
}

func (c *Client) start(ctx context.Context) error {
	addr := c.cfg.Addr
	if c.cfg.Security == Implicit {
		if err := c.handshake(ctx); err != nil {
			return err
		}
	}
	line, err := c.readLine()
	if err != nil {
		return c.ioErr(ctx, "read the greeting", err)
	}
	if ierr := imapGreeting(addr, line); ierr != nil {
		return ierr
	}
	ok, code, text, perr := parseReply(line)
	if perr != nil {
		return failure.Mark(failure.Fatal, fmt.Errorf("pop3 %s: not a POP3 server: %w", addr, perr))
	}
	if !ok {
		e := &Error{Cmd: "greeting", Code: code, Text: text}
		k := classify(e, false)
		if k == failure.Unknown {
			k = failure.Connect
		}
		return failure.Mark(k, fmt.Errorf("pop3 %s: the server refused the connection: %w", addr, e))
	}
	if err := c.capa(ctx); err != nil {
		return err
	}
	if c.cfg.Security == STARTTLS {
		if _, offered := c.caps["STLS"]; !offered && c.capaOK {
			return failure.Mark(failure.TLS, fmt.Errorf(
				"pop3 %s: the server does not offer STLS (use pop3s:// for implicit TLS, or ?tls=none to connect without TLS)", addr))
		}
		_, e, err := c.do(ctx, "STLS", "STLS")
		if err != nil {
			return err
		}
		if e != nil {
			return failure.Mark(failure.TLS, fmt.Errorf(
				"pop3 %s: the server refused STLS (use pop3s:// for implicit TLS, or ?tls=none to connect without TLS): %w", addr, e))
		}
		if c.br.Buffered() > 0 {
			return failure.Mark(failure.TLS, fmt.Errorf("pop3 %s: the server sent data before the TLS handshake", addr))
		}
		if err := c.handshake(ctx); err != nil {
			return err
		}
		if err := c.capa(ctx); err != nil {
			return err
		}
	}
	if err := c.login(ctx); err != nil {
		return err
	}
	if c.capaOK {
		// Capabilities may differ in the TRANSACTION state (RFC 2449 §5).
		return c.capa(ctx)
	}
	return nil
}

// capa asks for the capabilities; a server without CAPA leaves them empty.
func (c *Client) capa(ctx context.Context) error {
	_, e, err := c.do(ctx, "CAPA", "CAPA")
	if err != nil {
		return err
	}
	c.caps = map[string][]string{}
	if e != nil {
		c.capaOK = false
		return nil
	}
	c.capaOK = true
	lines, err := c.readLines(ctx, "CAPA")
	if err != nil {
		return err
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		c.caps[strings.ToUpper(f[0])] = f[1:]
	}
	return nil
}

func (c *Client) login(ctx context.Context) error {
	if c.cfg.OAuth2Token != nil {
		tok, err := c.cfg.OAuth2Token(ctx)
		if err != nil {
			return failure.Mark(failure.Auth, fmt.Errorf("pop3 %s: cannot get an OAuth2 token for %q: %w", c.cfg.Addr, c.cfg.User, err))
		}
		return c.auth(ctx, netconn.OAuth2Client(c.cfg.User, tok, c.cfg.Addr, c.hasSASL("OAUTHBEARER")))
	}
	if c.hasSASL("PLAIN") {
		return c.auth(ctx, sasl.NewPlainClient("", c.cfg.User, c.cfg.Password))
	}
	_, e, err := c.do(ctx, "USER "+c.cfg.User, "USER")
	if err != nil {
		return err
	}
	if e != nil {
		return loginError(c.cfg.Addr, c.cfg.User, e)
	}
	_, e, err = c.do(ctx, "PASS "+c.cfg.Password, "PASS")
	if err != nil {
		return err
	}
	if e != nil {
		return loginError(c.cfg.Addr, c.cfg.User, e)
	}
	return nil
}

func (c *Client) hasSASL(mech string) bool {
	for _, m := range c.caps["SASL"] {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

// auth runs a SASL exchange (RFC 5034).
func (c *Client) auth(ctx context.Context, sc sasl.Client) error {
	mech, ir, err := sc.Start()
	if err != nil {
		return failure.Mark(failure.Auth, fmt.Errorf("pop3 %s: start %s authentication: %w", c.cfg.Addr, mech, err))
	}
	display := "AUTH " + mech
	line := display
	if ir != nil {
		enc := base64.StdEncoding.EncodeToString(ir)
		if enc == "" {
			enc = "="
		}
		if len(line)+1+len(enc) <= 253 {
			line += " " + enc
			ir = nil
		}
	}
	if err := c.send(line); err != nil {
		return c.ioErr(ctx, display, err)
	}
	var saslErr error
	for {
		l, err := c.readLine()
		if err != nil {
			return c.ioErr(ctx, display, err)
		}
		if l == "+" || (strings.HasPrefix(l, "+ ") && !hasPrefixFold(l, "+OK")) {
			var resp string
			switch {
			case ir != nil:
				resp = base64.StdEncoding.EncodeToString(ir)
				ir = nil
			case saslErr != nil:
				resp = "*"
			default:
				chal, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(l, "+")))
				if derr != nil {
					resp = "*"
					saslErr = fmt.Errorf("bad challenge: %w", derr)
					break
				}
				r, nerr := sc.Next(chal)
				if nerr != nil {
					resp, saslErr = "*", nerr
					break
				}
				resp = base64.StdEncoding.EncodeToString(r)
			}
			if err := c.send(resp); err != nil {
				return c.ioErr(ctx, display, err)
			}
			continue
		}
		ok, code, text, perr := parseReply(l)
		if perr != nil {
			return failure.Mark(failure.Fatal, fmt.Errorf("pop3 %s: %s: %w", c.cfg.Addr, display, perr))
		}
		if ok {
			return nil
		}
		e := &Error{Cmd: display, Code: code, Text: text}
		if saslErr != nil && e.Code == "" {
			e.Text += " (" + saslErr.Error() + ")"
		}
		return loginError(c.cfg.Addr, c.cfg.User, e)
	}
}

// Capabilities returns the CAPA listing: capability name in upper case →
// its arguments. Empty when the server does not support CAPA.
func (c *Client) Capabilities() map[string][]string {
	m := make(map[string][]string, len(c.caps))
	for k, v := range c.caps {
		m[k] = append([]string(nil), v...)
	}
	return m
}

// HasCapability reports whether CAPA listed name.
func (c *Client) HasCapability(name string) bool {
	_, ok := c.caps[strings.ToUpper(name)]
	return ok
}

// --- plumbing -------------------------------------------------------------

func (c *Client) send(line string) error {
	c.bw.WriteString(line)
	c.bw.WriteString("\r\n")
	return c.bw.Flush()
}

func (c *Client) readLine() (string, error) {
	var b []byte
	for {
		chunk, err := c.br.ReadSlice('\n')
		b = append(b, chunk...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF {
				if len(b) == 0 {
					return "", io.EOF
				}
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		if len(b) > maxLine {
			return "", fmt.Errorf("reply line longer than %d bytes", maxLine)
		}
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// ready finishes what a previous command left unread and fails when the
// connection is unusable.
func (c *Client) ready(ctx context.Context) error {
	if c.broken != nil {
		return c.broken
	}
	if c.pending != nil {
		p := c.pending
		c.pending = nil
		if err := p.drain(); err != nil {
			return c.ioErr(ctx, "read the rest of a response", err)
		}
	}
	return nil
}

// watch closes the connection when ctx is cancelled until the returned
// function is called.
func (c *Client) watch(ctx context.Context) func() bool {
	return context.AfterFunc(ctx, func() { c.raw.Close() })
}

// do sends one command and reads its status line. display is the command
// as it may appear in errors (no secrets). A -ERR reply is returned as e;
// err is an I/O or protocol error (the connection is then unusable).
func (c *Client) do(ctx context.Context, line, display string) (text string, e *Error, err error) {
	if err := c.ready(ctx); err != nil {
		return "", nil, err
	}
	if err := c.send(line); err != nil {
		return "", nil, c.ioErr(ctx, display, err)
	}
	return c.status(ctx, display)
}

func (c *Client) status(ctx context.Context, display string) (string, *Error, error) {
	l, err := c.readLine()
	if err != nil {
		return "", nil, c.ioErr(ctx, display, err)
	}
	ok, code, text, perr := parseReply(l)
	if perr != nil {
		c.broken = failure.Mark(failure.Temporary, fmt.Errorf("pop3 %s: %s: %w", c.cfg.Addr, display, perr))
		return "", nil, c.broken
	}
	if !ok {
		return "", &Error{Cmd: display, Code: code, Text: text}, nil
	}
	return text, nil, nil
}

// readLines reads a multi-line listing body into lines (without CRLF).
func (c *Client) readLines(ctx context.Context, display string) ([]string, error) {
	dr := newDotReader(c.br)
	sc := bufio.NewScanner(dr)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	var lines []string
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, c.ioErr(ctx, display, err)
	}
	return lines, nil
}

// ioErr turns a transport error into a classed error and marks the
// connection unusable.
func (c *Client) ioErr(ctx context.Context, what string, err error) error {
	var out error
	switch {
	case ctx.Err() != nil:
		out = fmt.Errorf("pop3 %s: %s: %w", c.cfg.Addr, what, ctx.Err())
	case errors.Is(err, os.ErrDeadlineExceeded):
		out = failure.Mark(failure.Temporary, fmt.Errorf("pop3 %s: %s: the server did not answer within %v: %w", c.cfg.Addr, what, c.cfg.Timeout, err))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errTruncated):
		out = failure.Mark(failure.Temporary, fmt.Errorf("pop3 %s: %s: the server closed the connection: %w", c.cfg.Addr, what, err))
	default:
		var ae *Error
		if errors.As(err, &ae) {
			return err
		}
		k := failure.KindOf(err)
		var tl *TooLongError
		if errors.As(err, &tl) {
			k = failure.Message // this message, not the server, is the problem
		} else if k == failure.Unknown {
			k = failure.Temporary
		}
		out = failure.Mark(k, fmt.Errorf("pop3 %s: %s: %w", c.cfg.Addr, what, err))
	}
	c.broken = out
	c.raw.Close()
	return out
}

// --- commands -------------------------------------------------------------

// simple runs a single-line command and turns -ERR into an error.
func (c *Client) simple(ctx context.Context, line, display string) (string, error) {
	defer c.watch(ctx)()
	text, e, err := c.do(ctx, line, display)
	if err != nil {
		return "", err
	}
	if e != nil {
		return "", CmdError(c.cfg.Addr, e)
	}
	return text, nil
}

// multi runs a command with a multi-line answer and returns its lines.
func (c *Client) multi(ctx context.Context, line string) ([]string, error) {
	defer c.watch(ctx)()
	_, e, err := c.do(ctx, line, line)
	if err != nil {
		return nil, err
	}
	if e != nil {
		return nil, CmdError(c.cfg.Addr, e)
	}
	return c.readLines(ctx, line)
}

// Stat returns the number of messages and their total size.
func (c *Client) Stat(ctx context.Context) (count int, size int64, err error) {
	text, err := c.simple(ctx, "STAT", "STAT")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(text)
	if len(f) < 2 {
		return 0, 0, c.ProtoErr("STAT", text)
	}
	count, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || count < 0 || size < 0 {
		return 0, 0, c.ProtoErr("STAT", text)
	}
	return count, size, nil
}

func (c *Client) ProtoErr(cmd, text string) error {
	return failure.Mark(failure.Temporary, fmt.Errorf("pop3 %s: malformed answer to %s: %q", c.cfg.Addr, cmd, truncate(text)))
}

// UIDL lists the unique ids of all messages.
func (c *Client) UIDL(ctx context.Context) ([]MsgID, error) {
	lines, err := c.multi(ctx, "UIDL")
	if err != nil {
		return nil, err
	}
	out := make([]MsgID, 0, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 {
			return nil, c.ProtoErr("UIDL", l)
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n <= 0 {
			return nil, c.ProtoErr("UIDL", l)
		}
		out = append(out, MsgID{Num: n, UID: f[1]})
	}
	return out, nil
}

// List lists the sizes of all messages.
func (c *Client) List(ctx context.Context) ([]MsgSize, error) {
	lines, err := c.multi(ctx, "LIST")
	if err != nil {
		return nil, err
	}
	out := make([]MsgSize, 0, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 {
			return nil, c.ProtoErr("LIST", l)
		}
		n, err1 := strconv.Atoi(f[0])
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || n <= 0 || size < 0 {
			return nil, c.ProtoErr("LIST", l)
		}
		out = append(out, MsgSize{Num: n, Size: size})
	}
	c.sizes = make(map[int]int64, len(out))
	for _, m := range out {
		c.sizes[m.Num] = m.Size
	}
	return out, nil
}

// body starts a command whose answer is a message, and returns a reader
// for it. The reader is valid until the next command.
func (c *Client) body(ctx context.Context, line string) (io.Reader, error) {
	stop := c.watch(ctx)
	_, e, err := c.do(ctx, line, line)
	if err != nil {
		stop()
		return nil, err
	}
	if e != nil {
		stop()
		return nil, CmdError(c.cfg.Addr, e)
	}
	dr := c.newBody(line)
	dr.onEOF = func() { stop() }
	c.pending = dr
	return &bodyReader{c: c, ctx: ctx, dr: dr, what: line}, nil
}

// bodyReader turns transport errors of a body into classed errors.
type bodyReader struct {
	c    *Client
	ctx  context.Context
	dr   *dotReader
	what string
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.dr.Read(p)
	if err != nil && err != io.EOF {
		if b.c.broken == nil {
			b.c.ioErr(b.ctx, b.what, err)
		}
		return n, b.c.broken
	}
	if err == io.EOF && b.c.pending == b.dr {
		b.c.pending = nil
	}
	return n, err
}

// Top returns the headers and the first lines lines of the body of
// message n. The reader is valid until the next command.
func (c *Client) Top(ctx context.Context, n, lines int) (io.Reader, error) {
	return c.body(ctx, fmt.Sprintf("TOP %d %d", n, lines))
}

// Retr streams message n exactly as stored. The reader is valid until the
// next command.
func (c *Client) Retr(ctx context.Context, n int) (io.Reader, error) {
	return c.body(ctx, fmt.Sprintf("RETR %d", n))
}

// RetrMany retrieves the messages nums in order, calling fn for each with a
// reader valid during the call (what fn leaves unread is drained). With
// PIPELINING up to 16 RETR commands are outstanding. A -ERR for one
// message stops RetrMany with that error.
func (c *Client) RetrMany(ctx context.Context, nums []int, fn func(n int, r io.Reader) error) error {
	cmds := make([]string, len(nums))
	for i, n := range nums {
		cmds[i] = fmt.Sprintf("RETR %d", n)
	}
	return c.Pipeline(ctx, cmds, func(i int, r io.Reader, e *Error) error {
		if e != nil {
			return CmdError(c.cfg.Addr, e)
		}
		return fn(nums[i], r)
	})
}

// pipeline sends cmds (each answered by +OK and a multi-line body, or
// -ERR), keeping up to pipelineWindow outstanding when the server
// supports PIPELINING. fn gets either a body reader or the -ERR. When fn
// returns an error, the outstanding answers are read and discarded, so the
// session stays usable, and the error is returned.
func (c *Client) Pipeline(ctx context.Context, cmds []string, fn func(i int, r io.Reader, e *Error) error) error {
	defer c.watch(ctx)()
	if err := c.ready(ctx); err != nil {
		return err
	}
	window := 1
	if c.HasCapability("PIPELINING") {
		window = pipelineWindow
	}
	sent := 0
	var fnErr error
	for i := 0; i < sent || (fnErr == nil && i < len(cmds)); i++ {
		if fnErr == nil && sent < len(cmds) && sent-i < window {
			for sent < len(cmds) && sent-i < window {
				c.bw.WriteString(cmds[sent])
				c.bw.WriteString("\r\n")
				sent++
			}
			if err := c.bw.Flush(); err != nil {
				return c.ioErr(ctx, cmds[i], err)
			}
		}
		_, e, err := c.status(ctx, cmds[i])
		if err != nil {
			return err
		}
		if fnErr != nil { // discarding what was already asked for
			if e == nil {
				if err := c.newBody(cmds[i]).drain(); err != nil {
					return c.ioErr(ctx, cmds[i], err)
				}
			}
			continue
		}
		if e != nil {
			fnErr = fn(i, nil, e)
			continue
		}
		dr := c.newBody(cmds[i])
		br := &bodyReader{c: c, ctx: ctx, dr: dr, what: cmds[i]}
		fnErr = fn(i, br, nil)
		if c.broken != nil {
			return c.broken
		}
		if err := dr.drain(); err != nil {
			return c.ioErr(ctx, cmds[i], err)
		}
	}
	if fnErr != nil && ctx.Err() != nil && c.broken != nil {
		return c.broken
	}
	return fnErr
}

// Dele marks message n for deletion; the server removes it at QUIT.
func (c *Client) Dele(ctx context.Context, n int) error {
	_, err := c.simple(ctx, fmt.Sprintf("DELE %d", n), fmt.Sprintf("DELE %d", n))
	return err
}

// Rset unmarks all messages marked for deletion in this session.
func (c *Client) Rset(ctx context.Context) error {
	_, err := c.simple(ctx, "RSET", "RSET")
	return err
}

// Noop does nothing but keeps the session alive.
func (c *Client) Noop(ctx context.Context) error {
	_, err := c.simple(ctx, "NOOP", "NOOP")
	return err
}

// Quit ends the session: the server commits the deletions. A -ERR means
// the deletions were not (all) done.
func (c *Client) Quit(ctx context.Context) error {
	defer c.raw.Close()
	if c.broken != nil {
		return fmt.Errorf("pop3 %s: deletions not committed: %w", c.cfg.Addr, c.broken)
	}
	_, err := c.simple(ctx, "QUIT", "QUIT")
	if err != nil {
		return fmt.Errorf("pop3 %s: deletions may not be committed: %w", c.cfg.Addr, err)
	}
	c.broken = fmt.Errorf("pop3 %s: session ended", c.cfg.Addr)
	return nil
}

// Close closes the connection without QUIT: nothing is deleted.
func (c *Client) Close() error {
	if c.broken == nil {
		c.broken = fmt.Errorf("pop3 %s: session closed", c.cfg.Addr)
	}
	return c.raw.Close()
}

// CapaKnown reports whether the server answered CAPA (a server without
// it leaves Capabilities empty, which then says nothing).
func (c *Client) CapaKnown() bool { return c.capaOK }

// Addr is the server's address, for messages.
func (c *Client) Addr() string { return c.cfg.Addr }

// Timeout is the per read/write deadline in use.
func (c *Client) Timeout() time.Duration { return c.cfg.Timeout }
