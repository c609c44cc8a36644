package mbox

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// Encode appends one message to an mbox file being written in format f
// (not Auto): the "From " line from (without line end), the message with
// the format's quoting, and the one line end a reader removes again. With
// crlf the added line ends are CRLF. For MboxCL and MboxCL2 the message must
// already carry its Content-Length (see WithContentLength). Encode exists
// for tests and the benchmark's generator; mailferry never writes mbox.
func Encode(w io.Writer, f Format, from string, msg []byte, crlf bool) error {
	eol := "\n"
	if crlf {
		eol = "\r\n"
	}
	var b bytes.Buffer
	b.WriteString(from + eol)
	b.Write(Quote(f, msg))
	b.WriteString(eol)
	_, err := w.Write(b.Bytes())
	return err
}

// Quote returns msg with the format's "From " quoting applied to every line.
func Quote(f Format, msg []byte) []byte {
	var out []byte
	for len(msg) > 0 {
		i := bytes.IndexByte(msg, '\n')
		line := msg
		if i >= 0 {
			line = msg[:i+1]
		}
		msg = msg[len(line):]
		switch f {
		case MboxO, MboxCL:
			if bytes.HasPrefix(line, []byte("From ")) {
				out = append(out, '>')
			}
		case MboxRD:
			j := 0
			for j < len(line) && line[j] == '>' {
				j++
			}
			if bytes.HasPrefix(line[j:], []byte("From ")) {
				out = append(out, '>')
			}
		}
		out = append(out, line...)
	}
	return out
}

// WithContentLength returns msg with a Content-Length header (inserted
// at the end of its header section) giving the length of its body as
// format f stores it. A message without a blank line is returned as is.
func WithContentLength(f Format, msg []byte) []byte {
	i := bytes.Index(msg, []byte("\n\n"))
	eol := "\n"
	if j := bytes.Index(msg, []byte("\r\n\r\n")); j >= 0 && (i < 0 || j < i) {
		i, eol = j+1, "\r\n"
	}
	if i < 0 {
		return msg
	}
	hdr, body := msg[:i+1], msg[i+1+len(eol):]
	n := len(Quote(f, body))
	out := append([]byte{}, hdr...)
	out = append(out, "Content-Length: "+strconv.Itoa(n)+eol+eol...)
	return append(out, body...)
}

// FromLine formats a separator line for a sender and a date, in the
// classic asctime form.
func FromLine(sender string, unix int64) string {
	return fmt.Sprintf("From %s %s", sender, unixASC(unix))
}
