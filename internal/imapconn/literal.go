package imapconn

import (
	"fmt"
	"io"

	"github.com/mailferry/mailferry/internal/failure"
)

// FullLiteral reads a FETCH literal and fails unless all of its announced
// size arrives. go-imap's literal reader answers io.EOF when the peer
// closes the connection in the middle of a literal (an orderly FIN): taken
// at its word, a cut body becomes a shorter message, a cut header an absent
// Message-ID, a cut hash a wrong one. A short literal is a Temporary error
// wrapping io.ErrUnexpectedEOF; another read error keeps its class.
type FullLiteral struct {
	R    io.Reader
	Size int64
	What func() string // what is read, for the error: "message UID 7 of \"INBOX\""
	n    int64
	Err  error // the error that ended the literal, if any
}

// NewFullLiteral wraps a literal of the announced size.
func NewFullLiteral(r io.Reader, size int64, what func() string) *FullLiteral {
	return &FullLiteral{R: r, Size: size, What: what}
}

func (l *FullLiteral) Read(p []byte) (int, error) {
	if l.Err != nil {
		return 0, l.Err
	}
	n, err := l.R.Read(p)
	l.n += int64(n)
	switch {
	case err == io.EOF && l.n < l.Size:
		l.Err = failure.Mark(failure.Temporary, fmt.Errorf("%s: got %d of %d octets: %w", l.What(), l.n, l.Size, io.ErrUnexpectedEOF))
	case err != nil && err != io.EOF:
		// Keep the cause's class (reset, timeout): KindOf unwraps.
		l.Err = fmt.Errorf("%s: got %d of %d octets: %w", l.What(), l.n, l.Size, err)
	default:
		return n, err
	}
	return n, l.Err
}

// Rest reads what the caller left of the literal, so that a short literal
// is an error even when the caller did not read to the end.
func (l *FullLiteral) Rest() error {
	_, err := io.Copy(io.Discard, l)
	return err
}
