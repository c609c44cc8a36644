package pop3conn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// dotReader reads one multi-line POP3 response body (RFC 1939 §3): it
// removes the leading dot of dot-stuffed lines and stops at the
// terminating line ".". Every other byte is passed through unchanged:
// CRLF stays CRLF and a bare LF inside a message stays a bare LF, so the
// reader yields the message exactly as the server stores it (including
// its final line ending; the terminating ".\r\n" is not part of it).
// A line "." ending in a bare LF is accepted as the terminator too.
type dotReader struct {
	r         *bufio.Reader
	lineStart bool
	done      bool
	err       error
	onEOF     func() // called once when the terminator was read
	// limit, when > 0, is the most octets the response may take on the
	// wire (before un-stuffing); past it Read fails with a *TooLongError.
	limit     int64
	announced int64 // the size LIST announced (for the error), -1: unknown
	read      int64 // octets consumed so far
}

func newDotReader(r *bufio.Reader) *dotReader {
	return &dotReader{r: r, lineStart: true}
}

// errTruncated is returned when the connection ends inside a response.
var errTruncated = errors.New("connection closed in the middle of a multi-line response")

func (d *dotReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if d.lineStart {
		b, err := d.r.Peek(1)
		if err != nil {
			return 0, d.fail(err)
		}
		if b[0] == '.' {
			b, err = d.r.Peek(2)
			if err != nil {
				return 0, d.fail(err)
			}
			if b[1] == '\n' {
				d.r.Discard(2)
				return 0, d.finish()
			}
			if b[1] == '\r' {
				b, err = d.r.Peek(3)
				if err != nil {
					return 0, d.fail(err)
				}
				if b[2] == '\n' {
					d.r.Discard(3)
					return 0, d.finish()
				}
			}
			d.r.Discard(1) // un-stuff
			d.read++
		}
		d.lineStart = false
	}
	if d.r.Buffered() == 0 {
		if _, err := d.r.Peek(1); err != nil {
			return 0, d.fail(err)
		}
	}
	buf, _ := d.r.Peek(d.r.Buffered())
	if len(buf) > len(p) {
		buf = buf[:len(p)]
	}
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i+1]
		d.lineStart = true
	}
	n := copy(p, buf)
	d.r.Discard(n)
	d.read += int64(n)
	if d.limit > 0 && d.read > d.limit {
		return 0, d.fail(&TooLongError{Limit: d.limit, Announced: d.announced})
	}
	return n, nil
}

// TooLongError is returned by a message body that goes on past its limit:
// twice the size LIST announced plus 1 MiB, or MaxUnlistedBody. The
// connection cannot be resynchronised (the body may never end), so the
// session is closed; the message fails alone (failure.Message).
type TooLongError struct {
	Limit, Announced int64
}

func (e *TooLongError) Error() string {
	if e.Announced >= 0 {
		return fmt.Sprintf("the message goes on past %d octets although LIST announced %d; giving up on it (broken or hostile server)", e.Limit, e.Announced)
	}
	return fmt.Sprintf("the message goes on past %d octets; giving up on it (broken or hostile server)", e.Limit)
}

func (d *dotReader) finish() error {
	d.done = true
	if d.onEOF != nil {
		f := d.onEOF
		d.onEOF = nil
		f()
	}
	return io.EOF
}

func (d *dotReader) fail(err error) error {
	if err == io.EOF {
		err = errTruncated
	}
	d.err = err
	return err
}

// drain reads the rest of the response and discards it.
func (d *dotReader) drain() error {
	_, err := io.Copy(io.Discard, d)
	return err
}
