package imap

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestReadmeStatesTheCommandSize: README's "How it works" gives the
// MULTIAPPEND bound the store session uses.
func TestReadmeStatesTheCommandSize(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("MULTIAPPEND commands of up to %d messages", maxMulti)
	if !strings.Contains(strings.Join(strings.Fields(string(b)), " "), want) {
		t.Errorf("README does not say %q", want)
	}
}
