package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestSameAccount(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "Maildir")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"imaps://bob@127.0.0.1", "imaps://bob@127.0.0.1", true},
		{"imaps://bob@localhost", "imap://bob@127.0.0.1:143", true},
		{"imaps://bob@127.0.0.1:993", "imaps://Bob@127.0.0.1:10993", true},
		{"imap://bob@[::1]:143", "imaps://bob@127.0.0.1", true},
		{"pop3s://bob@127.0.0.1", "imaps://bob@localhost", true},
		{"imaps://bob@127.0.0.1", "imaps://amy@127.0.0.1", false},
		{"imaps://bob@127.0.0.1", "imaps://bob@192.0.2.1", false},
		{"imaps://bob@127.0.0.1", "maildir:" + real, false},
		{"maildir:" + real, "maildir:" + link, true},
		{"maildir:" + real, "maildir:" + dir, false},
	} {
		a, err := parseEndpoint(tc.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := parseEndpoint(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if got := sameAccount(context.Background(), a, b); got != tc.want {
			t.Errorf("sameAccount(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
