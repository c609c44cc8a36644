package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/mailferry/mailferry/target"
)

// dryTargetOpener is the target opener of a plan or a --dry-run: it creates
// nothing. A Maildir target that does not exist yet is listed as the empty
// Maildir it would be (one in a temporary directory, removed by cleanup).
func dryTargetOpener(e *endpoint, co connOptions) (target.Opener, func(), error) {
	if e.scheme != "maildir" {
		o, err := e.targetOpener(co)
		return o, func() {}, err
	}
	if _, err := os.Stat(e.path); err == nil {
		o, err := e.targetOpener(co)
		return o, func() {}, err
	}
	tmp, err := os.MkdirTemp("", "mailferry-dry-*")
	if err != nil {
		return nil, nil, fmt.Errorf("create a temporary Maildir for the plan: %w", err)
	}
	empty := *e
	empty.path = filepath.Join(tmp, "Maildir")
	o, err := empty.targetOpener(co)
	return o, func() { os.RemoveAll(tmp) }, err
}
