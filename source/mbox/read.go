package mbox

import (
	"bytes"
	"errors"
	"io"
	"strconv"
)

// lineReader reads lines from an io.ReaderAt through one fixed buffer, so
// that seeking (a message's offset, skipping a Content-Length body) costs
// nothing and memory stays flat whatever the file size.
type lineReader struct {
	ra    io.ReaderAt
	buf   []byte
	r, w  int   // unread data is buf[r:w]
	base  int64 // file offset of buf[0]
	limit int64 // no data at or past this offset; -1 for none
	eof   bool  // nothing more before limit or the end of the file
	err   error
}

func newLineReader(ra io.ReaderAt, size int) *lineReader {
	return &lineReader{ra: ra, buf: make([]byte, size), limit: -1}
}

func (l *lineReader) pos() int64 { return l.base + int64(l.r) }

func (l *lineReader) seek(off int64) {
	if off >= l.base && off <= l.base+int64(l.w) {
		l.r = int(off - l.base)
	} else {
		l.base, l.r, l.w = off, 0, 0
	}
	l.eof = false
}

// setLimit makes off the end of the data (-1: the file's end). Data already
// buffered past a new limit is dropped.
func (l *lineReader) setLimit(off int64) {
	l.limit = off
	if off >= 0 && l.base+int64(l.w) > off {
		l.w = int(max(off-l.base, int64(l.r)))
	}
	l.eof = false
}

func (l *lineReader) fill() {
	if l.r > 0 {
		copy(l.buf, l.buf[l.r:l.w])
		l.base += int64(l.r)
		l.w -= l.r
		l.r = 0
	}
	want := len(l.buf) - l.w
	if l.limit >= 0 {
		want = int(min(int64(want), l.limit-(l.base+int64(l.w))))
	}
	if want <= 0 {
		l.eof = true
		return
	}
	n, err := l.ra.ReadAt(l.buf[l.w:l.w+want], l.base+int64(l.w))
	l.w += n
	switch {
	case err == io.EOF || (err == nil && n == 0):
		l.eof = true
	case err != nil:
		l.err = err
	case n < want:
		// ReadAt returns less only with an error; be safe anyway.
		l.eof = true
	}
}

// readLine returns the next line with its line end, complete=false when it
// ends at the buffer's size or at the end of the data without a line end.
// The slice is valid until the next call. At the end it returns io.EOF.
func (l *lineReader) readLine() (line []byte, complete bool, err error) {
	for {
		if i := bytes.IndexByte(l.buf[l.r:l.w], '\n'); i >= 0 {
			line = l.buf[l.r : l.r+i+1]
			l.r += i + 1
			return line, true, nil
		}
		if l.err != nil {
			return nil, false, l.err
		}
		if l.eof || l.w-l.r == len(l.buf) {
			if l.r == l.w {
				return nil, false, io.EOF
			}
			line = l.buf[l.r:l.w]
			l.r = l.w
			return line, false, nil
		}
		l.fill()
	}
}

// peekAt reads up to len(p) octets at off without moving the reader.
func (l *lineReader) peekAt(p []byte, off int64) (int, error) {
	n, err := l.ra.ReadAt(p, off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

const hdrCap = 64 << 10 // header octets kept for fields, flags and the ID hash

// msgReader delivers one message of an mbox file: the octets after its
// separator line up to the next separator or the end of the file, without
// the one line end the writer added before the next separator, and with the
// format's quoting undone. It is a pull reader: Read scans the file as it
// goes, so a message is read once and never held whole in memory.
type msgReader struct {
	lr     *lineReader
	format Format
	crlf   bool

	sepOff  int64  // offset of the "From " line
	sepLine []byte // the "From " line without its line end
	hdr     []byte // the header section (at most hdrCap octets)
	hdrDone bool
	phase   int // phHeader, phBody, phLength, phDone
	atStart bool
	held    [2]byte // the line end of the last line, not yet delivered
	nheld   int
	pend    []byte // octets ready for Read
	pr      int
	size    int64 // octets delivered so far
	next    int64 // offset of the next separator (or the file's end) once done
	lenEnd  int64 // phLength: the offset where the body ends
	err     error

	// Counts for detection: lines inside the message that start with
	// "From " (only possible with Content-Length), ">From " and ">>+From ".
	fromLines, quoted1, quotedN int
	lengthOK                    bool // the Content-Length was used
	bodied                      bool // a blank line ended the header
}

const (
	phHeader = iota
	phBody
	phLength
	phDone
)

var errNotSeparator = errors.New("no mbox \"From \" line at this offset")

// start positions m at the separator at off. It fails with errNotSeparator
// when there is none.
func (m *msgReader) start(off int64) error {
	m.lr.setLimit(-1)
	m.lr.seek(off)
	*m = msgReader{lr: m.lr, format: m.format, crlf: m.crlf, hdr: m.hdr[:0], pend: m.pend[:0], sepLine: m.sepLine[:0]}
	m.sepOff = off
	line, complete, err := m.lr.readLine()
	if err == io.EOF {
		return errNotSeparator
	}
	if err != nil {
		return err
	}
	if !complete && !m.lr.eof {
		return errNotSeparator
	}
	body := trimEOL(line)
	if len(body) < 5 || string(body[:5]) != "From " {
		return errNotSeparator
	}
	m.sepLine = append(m.sepLine, body...)
	m.atStart = true
	return nil
}

func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

func isBlank(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

// emit queues a line: the held line end first, then the line without its
// own line end, which is held in turn.
func (m *msgReader) emit(line []byte, complete bool) {
	if m.nheld > 0 {
		m.pend = append(m.pend, m.held[:m.nheld]...)
		m.nheld = 0
	}
	if complete {
		e := 1
		if len(line) >= 2 && line[len(line)-2] == '\r' {
			e = 2
		}
		m.pend = append(m.pend, line[:len(line)-e]...)
		m.nheld = copy(m.held[:], line[len(line)-e:])
		return
	}
	m.pend = append(m.pend, line...)
}

// finish ends the message at the current line: the held line end is the
// writer's and is dropped (in an LF file only its LF).
func (m *msgReader) finish(next int64) {
	if m.nheld == 2 && !m.crlf {
		m.pend = append(m.pend, '\r')
	}
	m.nheld = 0
	m.phase = phDone
	m.next = next
	m.endHeader()
}

func (m *msgReader) endHeader() {
	m.hdrDone = true
}

// line processes one line of the message in the header or body phase.
func (m *msgReader) step() {
	lineOff := m.lr.pos()
	line, complete, err := m.lr.readLine()
	if err == io.EOF {
		m.finish(lineOff)
		return
	}
	if err != nil {
		m.err = err
		return
	}
	if m.atStart && line[0] == 'F' {
		if _, ok := parseFromLine(trimEOL(line)); ok && (complete || m.lr.eof) {
			m.finish(lineOff)
			return
		}
		if m.format.usesLength() && bytes.HasPrefix(line, []byte("From ")) {
			m.fromLines++
		}
	}
	if m.atStart && line[0] == '>' {
		m.countQuoted(line)
	}
	if m.phase == phHeader && !m.hdrDone {
		if room := hdrCap - len(m.hdr); room > 0 {
			m.hdr = append(m.hdr, line[:min(room, len(line))]...)
		}
	}
	blank := m.atStart && isBlank(line)
	if m.atStart {
		line = line[m.format.unquoted(line):]
	}
	m.emit(line, complete)
	m.atStart = complete
	if blank && m.phase == phHeader {
		m.phase = phBody
		m.bodied = true
		m.endHeader()
		if m.format.usesLength() {
			m.tryLength()
		}
	}
}

func (m *msgReader) countQuoted(line []byte) {
	i := 0
	for i < len(line) && line[i] == '>' {
		i++
	}
	if len(line)-i >= 5 && string(line[i:i+5]) == "From " {
		if i == 1 {
			m.quoted1++
		} else {
			m.quotedN++
		}
	}
}

// tryLength switches to the Content-Length body when the header has one
// that ends exactly at the next separator (after the writer's line end) or
// at the end of the file; otherwise the body is scanned for the separator.
func (m *msgReader) tryLength() {
	v := headerValue(m.hdr, "content-length")
	if v == nil {
		return
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
	if err != nil || n < 0 {
		return
	}
	end := m.lr.pos() + n
	var p [1024]byte
	k, err := m.lr.peekAt(p[:], end)
	if err != nil {
		return
	}
	q := p[:k]
	switch {
	case k == 0:
	case bytes.HasPrefix(q, []byte("\r\n")) && m.crlf:
		q = q[2:]
	case bytes.HasPrefix(q, []byte("\n")):
		q = q[1:]
	default:
		return
	}
	if len(q) > 0 {
		if i := bytes.IndexByte(q, '\n'); i < 0 {
			if k == len(p) {
				return
			}
		} else {
			q = q[:i+1]
		}
		if _, ok := parseFromLine(trimEOL(q)); !ok {
			return
		}
	}
	m.lengthOK = true
	m.lenEnd = end
	m.phase = phLength
	m.lr.setLimit(end)
}

// stepLength processes one line of a Content-Length body.
func (m *msgReader) stepLength() {
	line, complete, err := m.lr.readLine()
	if err == io.EOF {
		// The body is done: the writer's line end follows, then the
		// next separator or the end of the file.
		m.lr.setLimit(-1)
		next := m.lenEnd
		if line, c, err := m.lr.readLine(); err == nil && c && isBlank(line) {
			next = m.lr.pos()
		} else if err == nil {
			m.lr.seek(m.lenEnd)
		}
		if m.nheld > 0 { // a body ending with a line end keeps it
			m.pend = append(m.pend, m.held[:m.nheld]...)
			m.nheld = 0
		}
		m.phase = phDone
		m.next = next
		return
	}
	if err != nil {
		m.err = err
		return
	}
	if m.atStart {
		if bytes.HasPrefix(line, []byte("From ")) {
			m.fromLines++
		}
		if line[0] == '>' {
			m.countQuoted(line)
		}
		line = line[m.format.unquoted(line):]
	}
	if m.nheld > 0 {
		m.pend = append(m.pend, m.held[:m.nheld]...)
		m.nheld = 0
	}
	m.pend = append(m.pend, line...)
	m.atStart = complete
}

// Read delivers the message.
func (m *msgReader) Read(p []byte) (int, error) {
	for m.pr == len(m.pend) {
		if m.err != nil {
			return 0, m.err
		}
		if m.phase == phDone {
			return 0, io.EOF
		}
		m.pend, m.pr = m.pend[:0], 0
		if m.phase == phLength {
			m.stepLength()
		} else {
			m.step()
		}
	}
	n := copy(p, m.pend[m.pr:])
	m.pr += n
	m.size += int64(n)
	return n, nil
}

// readHeader advances until the header section is complete (or the message
// ends), keeping what it read for Read.
func (m *msgReader) readHeader() error {
	for !m.hdrDone && m.phase != phDone && m.err == nil && len(m.pend) < 4*hdrCap {
		m.step()
	}
	return m.err
}

// skip reads the rest of the message and returns its size and the offset
// of what follows.
func (m *msgReader) skip() (size int64, next int64, err error) {
	var buf [32 << 10]byte
	for {
		_, err := m.Read(buf[:])
		if err == io.EOF {
			return m.size, m.next, nil
		}
		if err != nil {
			return m.size, 0, err
		}
	}
}

// headerValue returns the unfolded value of the first field called name
// (lower case) in hdr, or nil.
func headerValue(hdr []byte, name string) []byte {
	var out []byte
	found := false
	for len(hdr) > 0 {
		i := bytes.IndexByte(hdr, '\n')
		var line []byte
		if i < 0 {
			line, hdr = hdr, nil
		} else {
			line, hdr = hdr[:i+1], hdr[i+1:]
		}
		if found {
			if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
				out = append(out, trimEOL(line)...)
				continue
			}
			return out
		}
		c := bytes.IndexByte(line, ':')
		if c > 0 && len(name) == c && bytes.EqualFold(line[:c], []byte(name)) {
			found = true
			out = append(out, trimEOL(line[c+1:])...)
		}
	}
	if found {
		return out
	}
	return nil
}
