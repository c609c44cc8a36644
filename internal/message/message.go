// Package message extracts, while a message streams past, the few header
// facts the engine needs (Message-ID, Date, the Received chain's newest
// date, bare LF count) and converts bare LF line ends to CRLF for targets
// that require it. Nothing here holds more than the bounded header section.
package message

import (
	"bytes"
	"io"
	"strings"
	"time"
)

// MaxHeader bounds how much of a message's header section the Scanner keeps.
const MaxHeader = 256 << 10

// Scanner is an io.Writer that sees a message's bytes as they stream and
// records header facts from its header section only: it stops buffering
// after the blank line that ends the header, or after MaxHeader bytes. It
// counts bare LF line ends in the whole message. The zero value is ready to
// use; a Scanner is for one message.
type Scanner struct {
	hdr      []byte
	hdrDone  bool
	scanned  int // bytes of hdr already searched for the blank line
	prevCR   bool
	bareLF   int
	parsed   bool
	msgID    string
	date     time.Time
	dateOK   bool
	received time.Time
	recvOK   bool
}

// Write records p. It never fails.
func (s *Scanner) Write(p []byte) (int, error) {
	s.countBareLF(p)
	if !s.hdrDone {
		room := MaxHeader - len(s.hdr)
		q := p
		if len(q) > room {
			q = q[:room]
		}
		s.hdr = append(s.hdr, q...)
		if end := headerEnd(s.hdr, s.scanned); end >= 0 {
			s.hdr = s.hdr[:end]
			s.hdrDone = true
		} else if len(s.hdr) >= MaxHeader {
			s.hdrDone = true
		} else if len(s.hdr) > 2 {
			s.scanned = len(s.hdr) - 2
		}
	}
	return len(p), nil
}

func (s *Scanner) countBareLF(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.prevCR = p[len(p)-1] == '\r'
			return
		}
		if (i == 0 && !s.prevCR) || (i > 0 && p[i-1] != '\r') {
			s.bareLF++
		}
		s.prevCR = false
		p = p[i+1:]
	}
}

// headerEnd returns the length of the header section in b (up to and
// including its last line end, excluding the blank line), or -1 if b does
// not contain the blank line yet. Searching starts at from.
func headerEnd(b []byte, from int) int {
	// A message that starts with a blank line has an empty header.
	if from == 0 {
		if len(b) > 0 && b[0] == '\n' {
			return 0
		}
		if len(b) > 1 && b[0] == '\r' && b[1] == '\n' {
			return 0
		}
	}
	for i := from; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		k := i + j + 1 // start of the next line
		switch {
		case k < len(b) && b[k] == '\n':
			return k
		case k+1 < len(b) && b[k] == '\r' && b[k+1] == '\n':
			return k
		case k == len(b) || (k+1 == len(b) && b[k] == '\r'):
			return -1 // the next line is not complete yet
		}
		i = k
	}
}

// BareLF returns the number of LF bytes not preceded by CR in everything
// written so far.
func (s *Scanner) BareLF() int { return s.bareLF }

// MessageID returns the value of the first Message-ID header, trimmed
// (with its angle brackets), or "".
func (s *Scanner) MessageID() string {
	s.parse()
	return s.msgID
}

// Date returns the Date header's time.
func (s *Scanner) Date() (time.Time, bool) {
	s.parse()
	return s.date, s.dateOK
}

// NewestReceived returns the newest of the dates of the Received headers
// (the text after each one's last ';').
func (s *Scanner) NewestReceived() (time.Time, bool) {
	s.parse()
	return s.received, s.recvOK
}

// InternalDate returns the date to store a message under when the source
// has none (POP3): the newest Received date, else the Date header, else
// fallback.
func (s *Scanner) InternalDate(fallback time.Time) time.Time {
	if t, ok := s.NewestReceived(); ok {
		return t
	}
	if t, ok := s.Date(); ok {
		return t
	}
	return fallback
}

func (s *Scanner) parse() {
	if s.parsed {
		return
	}
	s.parsed = true
	eachField(s.hdr, func(name, value []byte) {
		switch {
		case asciiEqualFold(name, "message-id"):
			if s.msgID == "" {
				s.msgID = strings.TrimSpace(string(value))
			}
		case asciiEqualFold(name, "date"):
			if !s.dateOK {
				s.date, s.dateOK = ParseDate(string(value))
			}
		case asciiEqualFold(name, "received"):
			i := bytes.LastIndexByte(value, ';')
			if i < 0 {
				return
			}
			if t, ok := ParseDate(string(value[i+1:])); ok && (!s.recvOK || t.After(s.received)) {
				s.received, s.recvOK = t, true
			}
		}
	})
}

// eachField calls fn with each header field's name and unfolded value.
// Lines that are neither fields nor continuations (an mbox "From " line,
// garbage) are skipped.
func eachField(hdr []byte, fn func(name, value []byte)) {
	var name, value []byte
	flush := func() {
		if name != nil {
			fn(name, value)
		}
		name, value = nil, nil
	}
	for len(hdr) > 0 {
		line := hdr
		if i := bytes.IndexByte(hdr, '\n'); i >= 0 {
			line, hdr = hdr[:i], hdr[i+1:]
		} else {
			hdr = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if name != nil {
				value = append(value, ' ')
				value = append(value, bytes.TrimLeft(line, " \t")...)
			}
			continue
		}
		flush()
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			continue
		}
		n := bytes.TrimRight(line[:i], " \t")
		if len(n) == 0 || bytes.ContainsAny(n, " \t") {
			continue
		}
		name = n
		value = append([]byte(nil), bytes.TrimLeft(line[i+1:], " \t")...)
	}
	flush()
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// CRLFWriter converts bare LF line ends to CRLF while writing to an
// underlying writer. CRLF is kept, a lone CR is kept as it is, and a CR at
// the end of one Write followed by LF at the start of the next is a CRLF.
type CRLFWriter struct {
	w         io.Writer
	prevCR    bool
	converted int
	buf       []byte
}

// NewCRLFWriter returns a CRLFWriter writing to w.
func NewCRLFWriter(w io.Writer) *CRLFWriter { return &CRLFWriter{w: w} }

// Converted returns the number of bare LFs converted so far.
func (c *CRLFWriter) Converted() int { return c.converted }

// Write writes p with bare LFs converted, in one write to the underlying
// writer. It returns len(p), or 0 and the error of the underlying writer.
func (c *CRLFWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	out := p
	if c.hasBare(p) {
		out = c.buf[:0]
		prevCR := c.prevCR
		for rest := p; len(rest) > 0; {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				out = append(out, rest...)
				break
			}
			if (i == 0 && !prevCR) || (i > 0 && rest[i-1] != '\r') {
				out = append(out, rest[:i]...)
				out = append(out, '\r', '\n')
				c.converted++
			} else {
				out = append(out, rest[:i+1]...)
			}
			prevCR = false
			rest = rest[i+1:]
		}
		c.buf = out
	}
	c.prevCR = p[len(p)-1] == '\r'
	if _, err := c.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// hasBare reports whether p has an LF not preceded by CR.
func (c *CRLFWriter) hasBare(p []byte) bool {
	prevCR := c.prevCR
	for off := 0; ; {
		i := bytes.IndexByte(p[off:], '\n')
		if i < 0 {
			return false
		}
		j := off + i
		if (j == 0 && !prevCR) || (j > 0 && p[j-1] != '\r') {
			return true
		}
		off = j + 1
	}
}
