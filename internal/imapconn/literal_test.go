package imapconn

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/failure"
)

// TestFullLiteral: a literal that ends before its announced size is a
// Temporary ErrUnexpectedEOF (even when the caller does not read to the
// end); a whole one reads as it is.
func TestFullLiteral(t *testing.T) {
	what := func() string { return "message UID 7" }
	l := NewFullLiteral(strings.NewReader("hello"), 5, what)
	if b, err := io.ReadAll(l); err != nil || string(b) != "hello" || l.Rest() != nil {
		t.Fatalf("whole literal: %q, %v", b, err)
	}
	l = NewFullLiteral(strings.NewReader("hel"), 5, what)
	_, err := io.ReadAll(l)
	if !errors.Is(err, io.ErrUnexpectedEOF) || failure.KindOf(err) != failure.Temporary || !strings.Contains(err.Error(), "got 3 of 5 octets") {
		t.Fatalf("short literal: %v (kind %v)", err, failure.KindOf(err))
	}
	l = NewFullLiteral(strings.NewReader("hel"), 5, what)
	if err := l.Rest(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Rest of a short literal: %v", err)
	}
}
