package message

import (
	"bufio"
	"io"
)

// ReadHeader writes r's header section, up to and including the blank line
// that ends it (at most MaxHeader octets), to sc, and reads no line after
// it: what a Maildir reader needs for a file's Message-ID without its body.
// A file without a blank line ends at its end.
func ReadHeader(r *bufio.Reader, sc *Scanner) error {
	lineStart := true
	for n := 0; n < MaxHeader; {
		line, err := r.ReadSlice('\n')
		sc.Write(line)
		n += len(line)
		switch {
		case err == bufio.ErrBufferFull:
			lineStart = false
			continue
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
		if lineStart && (len(line) == 1 || len(line) == 2 && line[0] == '\r') {
			return nil
		}
		lineStart = true
	}
	return nil
}
