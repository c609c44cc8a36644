package migrate

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/mailferry/mailferry/internal/message"
)

// defaultSpoolThreshold is how many bytes of one message are held in memory
// before the rest goes to a temporary file. The journal's intent needs the
// size and SHA-256 of the bytes before the first byte reaches the target, and
// an IMAP APPEND needs the exact size up front, so every message passes
// through a spool; this bound keeps RSS flat whatever the message sizes.
const defaultSpoolThreshold = 1 << 20

// spool holds one message's bytes as they will be sent to the target.
type spool struct {
	dir         string
	threshold   int
	buf         bytes.Buffer
	file        *os.File
	size        int64
	sum         [32]byte
	scan        *message.Scanner
	converted   int
	nulStripped int
	nul         int   // NUL bytes in the source bytes
	raw         int64 // bytes read from the source
}

// fill reads r to the end. With crlf, bare LF is converted to CRLF on the
// way in (IMAP targets); with stripNUL, NUL bytes are dropped. The header
// scanner sees the original bytes.
func (s *spool) fill(r io.Reader, crlf, stripNUL bool) error {
	s.reset()
	h := sha256.New()
	s.scan = new(message.Scanner)
	var sink io.Writer = writerFunc(s.write)
	out := io.MultiWriter(h, sink)
	var conv *message.CRLFWriter
	var w io.Writer = out
	if crlf {
		conv = message.NewCRLFWriter(out)
		w = conv
	}
	var nul *nulStripper
	if stripNUL {
		nul = &nulStripper{w: w}
		w = nul
	}
	n, err := io.Copy(io.MultiWriter(s.scan, writerFunc(s.countNUL), w), r)
	s.raw = n
	if err != nil {
		return err
	}
	if conv != nil {
		s.converted = conv.Converted()
	}
	if nul != nil {
		s.nulStripped = nul.n
	}
	copy(s.sum[:], h.Sum(nil))
	return nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (s *spool) write(p []byte) (int, error) {
	s.size += int64(len(p))
	if s.file == nil && s.buf.Len()+len(p) <= s.threshold {
		return s.buf.Write(p)
	}
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "mailferry-spool-*")
		if err != nil {
			return 0, fmt.Errorf("spool a large message: %w", err)
		}
		// Unlinked at once: the file lives only as long as it is open.
		os.Remove(f.Name())
		s.file = f
		if _, err := f.Write(s.buf.Bytes()); err != nil {
			return 0, fmt.Errorf("spool a large message: %w", err)
		}
		s.buf.Reset()
	}
	return s.file.Write(p)
}

// reader returns the spooled bytes from the start.
func (s *spool) reader() (io.Reader, error) {
	if s.file == nil {
		return bytes.NewReader(s.buf.Bytes()), nil
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.LimitReader(s.file, s.size), nil
}

func (s *spool) reset() {
	s.buf.Reset()
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	s.size = 0
	s.converted = 0
	s.nulStripped = 0
	s.nul = 0
	s.scan = nil
}

func (s *spool) close() {
	s.reset()
}

// nulStripper drops NUL bytes (--strip-nul), counting them.
type nulStripper struct {
	w io.Writer
	n int
}

func (s *nulStripper) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, 0) < 0 {
		return s.w.Write(p)
	}
	out := make([]byte, 0, len(p))
	for _, c := range p {
		if c == 0 {
			s.n++
			continue
		}
		out = append(out, c)
	}
	if _, err := s.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *spool) countNUL(p []byte) (int, error) {
	s.nul += bytes.Count(p, []byte{0})
	return len(p), nil
}
