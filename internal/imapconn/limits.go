package imapconn

import (
	"bytes"
	"fmt"
	"net"
	"strings"
)

// Limits bounds what an IMAP server can make the client read and hold in
// memory. go-imap v2 buffers every literal that is not a message body (a
// folder name, an envelope string) and every protocol line whole, with no
// bound, and does not expose its decoder's CheckBufferedLiteralFunc; so
// Dial puts a limitConn between the TLS layer and imapclient that follows
// the IMAP framing (lines, and literals announced by {N} at the end of a
// line) and refuses a response before go-imap reads it.
//
// The conn can tell literal octets from protocol text exactly: a literal
// is announced by "{N}" (or "{N+}", "~{N}") right before CRLF, and the
// next N octets are its contents. Long lines inside a message body are
// literal octets and never count against MaxLine. A zero field means its
// default.
type Limits struct {
	// MaxLine bounds the protocol text of one response, literal contents
	// excluded (default 4 MiB: a FETCH of a message with a huge
	// BODYSTRUCTURE or a SEARCH of 500,000 UIDs still fits).
	MaxLine int64
	// MaxLiteral bounds a literal that is not a message body, and the sum
	// of those in one response (default 16 MiB).
	MaxLiteral int64
	// MaxBody bounds a message body literal (BODY[...], BINARY[...],
	// RFC822 in a FETCH response), which go-imap streams (default 2 GiB;
	// the IMAP source also refuses a body far larger than its RFC822.SIZE).
	MaxBody int64
}

// DefaultLimits are the limits used for zero fields of Config.Limits.
var DefaultLimits = Limits{MaxLine: 4 << 20, MaxLiteral: 16 << 20, MaxBody: 2 << 30}

func (l Limits) withDefaults() Limits {
	if l.MaxLine <= 0 {
		l.MaxLine = DefaultLimits.MaxLine
	}
	if l.MaxLiteral <= 0 {
		l.MaxLiteral = DefaultLimits.MaxLiteral
	}
	if l.MaxBody <= 0 {
		l.MaxBody = DefaultLimits.MaxBody
	}
	return l
}

// hostile ends the text of every limit error; Classify marks errors that
// contain it failure.Fatal (go-imap keeps only the text of read errors).
const hostile = "refusing it (broken or hostile server)"

// LimitError is returned by reads once the server broke a limit. go-imap
// passes it on as text only; Classify recognises it and marks it Fatal.
type LimitError struct {
	Addr, What string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("imap %s %s; %s", e.Addr, e.What, hostile)
}

// limitConn enforces Limits on what is read through it. Reads come from
// one goroutine (imapclient's reader), so it has no lock.
type limitConn struct {
	net.Conn
	base net.Conn // the dialled connection (under TLS)
	addr string
	sc   scanner
	pre  []byte // replayed before the connection's own bytes
	err  error  // sticky
}

func newLimitConn(c, base net.Conn, addr string, l Limits, pre []byte) *limitConn {
	return &limitConn{Conn: c, base: base, addr: addr, sc: scanner{lim: l.withDefaults()}, pre: pre}
}

// Abort closes the connection with a TCP RST when it is TCP (SO_LINGER 0):
// whatever the kernel has not sent yet is dropped instead of delivered
// after the client gave up on the connection.
func (c *limitConn) Abort() error {
	if tc, ok := c.base.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	return c.Conn.Close()
}

func (c *limitConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	var n int
	var err error
	if len(c.pre) > 0 {
		n = copy(p, c.pre)
		c.pre = c.pre[n:]
	} else {
		n, err = c.Conn.Read(p)
	}
	if what := c.sc.scan(p[:n]); what != "" {
		c.err = &LimitError{Addr: c.addr, What: what}
		c.Conn.Close()
		return 0, c.err
	}
	return n, err
}

// scanner follows the framing of what an IMAP server sends.
type scanner struct {
	lim      Limits
	lit      int64    // literal octets still to come
	resp     int64    // protocol octets of the current response
	buffered int64    // octets of non-body literals in the current response
	head     [24]byte // first octets of the current response
	hn       int      //
	tail     [64]byte // last octets of the current line segment
	tn       int      //
	brace    int      // 0: none; 1: in "{digits"; 2: after '+'; 3: after '}'; 4: after "}\r"
	num      int64    // the literal size being read
	nd       int      // its number of digits
	body     bool     // the '{' being read follows a body section of a FETCH
}

// scan consumes p and returns what the server did wrong, or "".
func (s *scanner) scan(p []byte) string {
	for i := 0; i < len(p); {
		if s.lit > 0 {
			k := int64(len(p) - i)
			if k > s.lit {
				k = s.lit
			}
			s.lit -= k
			i += int(k)
			continue
		}
		b := p[i]
		i++
		s.resp++
		if s.resp > s.lim.MaxLine {
			return fmt.Sprintf("sent a response line longer than %s", size(s.lim.MaxLine))
		}
		if s.hn < len(s.head) {
			s.head[s.hn] = b
			s.hn++
		}
		switch {
		case b == '\n' && s.brace == 4:
			s.brace = 0
			if s.body {
				if s.num > s.lim.MaxBody {
					return fmt.Sprintf("announced a message body of %s; the limit is %s", octets(s.num), size(s.lim.MaxBody))
				}
			} else {
				s.buffered += s.num
				if s.num > s.lim.MaxLiteral || s.buffered > s.lim.MaxLiteral {
					return fmt.Sprintf("announced a literal of %s in a %q response; the limit is %s for what is not a message body",
						octets(s.num), s.kind(), size(s.lim.MaxLiteral))
				}
			}
			s.lit, s.tn = s.num, 0
			continue
		case b == '\n':
			s.resp, s.buffered, s.hn, s.tn, s.brace = 0, 0, 0, 0, 0
			continue
		case b == '{':
			s.body = s.isBody()
			s.brace, s.num, s.nd = 1, 0, 0
		case s.brace == 1 && b >= '0' && b <= '9':
			s.nd++
			if s.nd > 18 {
				s.num = 1<<63 - 1 // absurd either way
			} else {
				s.num = s.num*10 + int64(b-'0')
			}
		case s.brace == 1 && b == '+' && s.nd > 0:
			s.brace = 2
		case (s.brace == 1 && s.nd > 0 || s.brace == 2) && b == '}':
			s.brace = 3
		case s.brace == 3 && b == '\r':
			s.brace = 4
		default:
			s.brace = 0
		}
		if s.tn == len(s.tail) {
			copy(s.tail[:], s.tail[len(s.tail)/2:])
			s.tn = len(s.tail) / 2
		}
		s.tail[s.tn] = b
		s.tn++
	}
	return ""
}

// isBody tells whether a literal announced now would be a message body:
// the response is "* n FETCH" and the line so far ends with a body item
// (BODY[...], BINARY[...], with an optional <origin>; RFC822,
// RFC822.TEXT, RFC822.HEADER), a space and an optional '~'.
func (s *scanner) isBody() bool {
	f := strings.Fields(strings.ToUpper(string(s.head[:s.hn])))
	if len(f) < 3 || f[0] != "*" || f[2] != "FETCH" && !strings.HasPrefix(f[2], "FETCH") {
		return false
	}
	t := bytes.TrimSuffix(s.tail[:s.tn], []byte("~"))
	t = bytes.TrimRight(t, " ")
	if bytes.HasSuffix(t, []byte(">")) {
		if j := bytes.LastIndexByte(t, '<'); j >= 0 {
			t = t[:j]
		}
	}
	if bytes.HasSuffix(t, []byte("]")) {
		return true
	}
	u := bytes.ToUpper(t)
	for _, item := range []string{"RFC822", "RFC822.TEXT", "RFC822.HEADER"} {
		if bytes.HasSuffix(u, []byte(" "+item)) || bytes.HasSuffix(u, []byte("("+item)) {
			return true
		}
	}
	return false
}

// kind names the current response for errors ("* LIST", "A3 OK").
func (s *scanner) kind() string {
	f := strings.Fields(string(s.head[:s.hn]))
	n := 2
	if len(f) > 1 && strings.Trim(f[1], "0123456789") == "" {
		n = 3 // "* 12 FETCH"
	}
	if len(f) > n {
		f = f[:n]
	}
	return strings.ToValidUTF8(strings.Join(f, " "), "?")
}

func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func octets(n int64) string {
	if n >= 1e9 {
		return fmt.Sprintf("%d octets (%.1f GB)", n, float64(n)/1e9)
	}
	return fmt.Sprintf("%d octets", n)
}
