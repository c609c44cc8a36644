package maildir

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/source"
)

// TestFetchExactSize: the body delivered is the file as it was at open. A
// file another program shrinks or grows while it is read is a temporary
// error, whether or not fn reads to the end; an unchanged file comes whole.
func TestFetchExactSize(t *testing.T) {
	body := "Subject: s\r\n\r\n" + strings.Repeat("0123456789\r\n", 1000)
	tests := []struct {
		name    string
		change  func(p string) error // applied after fn read half
		lenient bool                 // fn ignores the read error and stops reading
		wantErr string
	}{
		{"unchanged", nil, false, ""},
		{"shrunk", func(p string) error { return os.Truncate(p, int64(len(body))/2+10) }, false, "shrank"},
		{"emptied", func(p string) error { return os.Truncate(p, 0) }, false, "shrank"},
		{"grown", appendTo("more\r\n"), false, "grew"},
		{"shrunk, lenient fn", func(p string) error { return os.Truncate(p, 100) }, true, "shrank"},
		{"grown, lenient fn", appendTo("x"), true, "grew"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range []string{"cur", "new", "tmp"} {
				if err := os.Mkdir(filepath.Join(root, d), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(root, "cur", "1700000001.M1P1.host,S=1:2,S")
			if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			s, err := Open(ctx, root)
			if err != nil {
				t.Fatal(err)
			}
			inbox := source.Folder{Name: "INBOX", Validity: Validity}
			var got []byte
			var readErr error
			err = s.Fetch(ctx, inbox, []string{"1700000001.M1P1.host"}, func(m source.Meta, r io.Reader) error {
				half := make([]byte, len(body)/2)
				if _, err := io.ReadFull(r, half); err != nil {
					return err
				}
				if tc.change != nil {
					if err := tc.change(p); err != nil {
						t.Fatal(err)
					}
				}
				if tc.lenient {
					got = half
					return nil
				}
				rest, err := io.ReadAll(r)
				got, readErr = append(half, rest...), err
				return err
			})
			if tc.wantErr == "" {
				if err != nil || string(got) != body {
					t.Fatalf("Fetch = %v, %d of %d octets", err, len(got), len(body))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !failure.Is(err, failure.Temporary) {
				t.Fatalf("Fetch = %v (%v), want a temporary error saying %q", err, failure.KindOf(err), tc.wantErr)
			}
			if !tc.lenient && readErr == nil {
				t.Errorf("fn read %d octets without error", len(got))
			}
			if tc.wantErr == "shrank" && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("Fetch = %v, want io.ErrUnexpectedEOF", err)
			}
		})
	}
}

func appendTo(s string) func(p string) error {
	return func(p string) error {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(s); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
}
