package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

// expected is the exactly-once oracle of an account: every message's key
// (folder and bytes) with its flags and date, built by generating the
// account again, not by reading the source.
type expected struct {
	index map[[32]byte]int32
	msgs  []expectedMsg
}

type expectedMsg struct {
	flags string
	date  int64
	got   int32
}

func buildExpected(o genOptions) *expected {
	counts := folderCounts(o.Messages)
	e := &expected{index: make(map[[32]byte]int32, o.Messages), msgs: make([]expectedMsg, o.Messages)}
	for i := 0; i < o.Messages; i++ {
		m := generate(o, counts, i)
		e.index[messageKey(m.Folder, m.Body)] = int32(i)
		e.msgs[i] = expectedMsg{flags: strings.Join(m.Flags, " "), date: m.Date.Unix()}
	}
	return e
}

// verdict is the outcome of a strict check. A perfect copy has Found ==
// Expected and every other count zero.
type verdict struct {
	Expected, Found                                        int
	Missing, Duplicates, Extra, FlagMismatch, DateMismatch int
	Details                                                []string
}

func (v verdict) OK() bool {
	return v.Found == v.Expected && v.Missing == 0 && v.Duplicates == 0 && v.Extra == 0 &&
		v.FlagMismatch == 0 && v.DateMismatch == 0
}

func (v verdict) String() string {
	if v.OK() {
		return fmt.Sprintf("exact (%d)", v.Found)
	}
	return fmt.Sprintf("FAIL: found %d of %d, missing %d, duplicates %d, extra %d, flags≠ %d, dates≠ %d",
		v.Found, v.Expected, v.Missing, v.Duplicates, v.Extra, v.FlagMismatch, v.DateMismatch)
}

func (v *verdict) detail(format string, args ...any) {
	if len(v.Details) < 20 {
		v.Details = append(v.Details, fmt.Sprintf(format, args...))
	}
}

// check compares the Maildir++ tree at root (a Maildir target, or the
// target user's mail on the private Dovecot) with the account, strictly:
// every message exactly once in its folder, same bytes (CRLF and LF
// compared as equal), same flags, same internal date.
func (e *expected) check(root string) (verdict, error) {
	v := verdict{Expected: len(e.msgs)}
	for i := range e.msgs {
		e.msgs[i].got = 0
	}
	err := dovecottest.WalkMaildir(root, func(f dovecottest.MaildirFile) error {
		body, err := os.ReadFile(f.Path)
		if err != nil {
			return err
		}
		v.Found++
		i, ok := e.index[messageKey(f.Folder, body)]
		if !ok {
			v.Extra++
			v.detail("extra: %s", f.Path)
			return nil
		}
		m := &e.msgs[i]
		m.got++
		if m.got > 1 {
			v.Duplicates++
			v.detail("duplicate of message %d: %s", i, f.Path)
			return nil
		}
		if fl := strings.Join(f.Flags, " "); fl != m.flags {
			v.FlagMismatch++
			v.detail("flags of message %d: want [%s], got [%s] (%s)", i, m.flags, fl, f.Path)
		}
		if f.Date.Unix() != m.date {
			v.DateMismatch++
			v.detail("date of message %d: want %d, got %d (%s)", i, m.date, f.Date.Unix(), f.Path)
		}
		return nil
	})
	if err != nil {
		return v, fmt.Errorf("read %s: %w", root, err)
	}
	for i, m := range e.msgs {
		if m.got == 0 {
			v.Missing++
			v.detail("missing: message %d", i)
		}
	}
	return v, nil
}

// countFiles counts the message files under root in any layout (Maildir++
// or one directory per folder): the regular files in directories named
// cur or new. It is the check of the other tools, which rewrite headers
// (mbsync's X-TUID, offlineimap's X-OfflineIMAP) and so cannot be
// compared byte for byte.
func countFiles(root string) (int, error) {
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			if b := filepath.Base(filepath.Dir(p)); b == "cur" || b == "new" {
				n++
			}
		}
		return nil
	})
	return n, err
}
