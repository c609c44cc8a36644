package dovecottest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// This file is the entry point for programs that are not tests (the
// benchmark, cmd/mailferry-bench): the same instance as Start, without a
// testing.TB, and a streaming reader of a Maildir++ tree for accounts too
// big to hold in memory.

// standaloneTB adapts Start's testing.TB to a plain program: Fatal and
// Skip unwind with a panic that StartStandalone recovers, Cleanup
// functions are kept for the stop function. Methods Start does not call
// are not implemented (the embedded nil interface panics).
type standaloneTB struct {
	testing.TB
	logf     func(format string, args ...any)
	cleanups []func()
}

type standaloneAbort struct{ msg string }

func (t *standaloneTB) Helper()                         {}
func (t *standaloneTB) Failed() bool                    { return false }
func (t *standaloneTB) Cleanup(f func())                { t.cleanups = append(t.cleanups, f) }
func (t *standaloneTB) Logf(format string, args ...any) { t.logf(format, args...) }
func (t *standaloneTB) Fatalf(format string, args ...any) {
	panic(standaloneAbort{fmt.Sprintf(format, args...)})
}
func (t *standaloneTB) Fatal(args ...any) { panic(standaloneAbort{fmt.Sprint(args...)}) }
func (t *standaloneTB) Skip(args ...any)  { panic(standaloneAbort{fmt.Sprint(args...)}) }

func (t *standaloneTB) stop() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}

// StartStandalone starts an instance as Start does, for a program that is
// not a test: it returns an error instead of failing a test (also when
// Dovecot is not installed), and a stop function that terminates Dovecot
// and deletes its directory. logf receives the few messages Start logs
// (nil: none). The instance also dies with the calling process.
func StartStandalone(o Options, logf func(format string, args ...any)) (s *Server, stop func(), err error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	tb := &standaloneTB{logf: logf}
	defer func() {
		if r := recover(); r != nil {
			a, ok := r.(standaloneAbort)
			if !ok {
				panic(r)
			}
			tb.stop()
			s, stop, err = nil, nil, errors.New(a.msg)
		}
	}()
	s = Start(tb, o)
	return s, tb.stop, nil
}

// DoveadmRun runs doveadm with this instance's configuration and returns
// its standard output (Doveadm without a testing.TB).
func (s *Server) DoveadmRun(args ...string) (string, error) {
	return s.doveadm(args...)
}

// Kick ends the user's sessions and waits (up to 10 s) until they are gone
// (the kick of Reset, without a testing.TB).
func (s *Server) Kick(user string) error {
	s.doveadm("kick", user) // fails when there is nobody to kick
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := s.doveadm("who", "-1", user)
		if err != nil || !strings.Contains(out, user) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sessions of %s still open 10 s after doveadm kick:\n%s", user, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// MailOwner is the uid and gid that own the users' mail (the mail
// account's when running as root, else the caller's).
func (s *Server) MailOwner() (uid, gid int) { return s.uid, s.gid }

// MaildirFile is one message file met by WalkMaildir.
type MaildirFile struct {
	// Folder is the canonical name ("/"-separated, INBOX for the root).
	Folder string
	// Path is the file.
	Path string
	// Flags are the flags of the file name (keywords through the folder's
	// dovecot-keywords), canonical as corpus.CanonicalFlags.
	Flags []string
	// Date is the file's mtime at second precision (Dovecot's and
	// mailferry's INTERNALDATE).
	Date time.Time
	// Size is the file's size in bytes.
	Size int64
}

// WalkMaildir calls fn for every message file of a Maildir++ tree, with
// the same reading of folders, flags and dates as DumpMaildir but without
// reading the files or holding them in memory. Folders come INBOX first
// then sorted, files in name order (cur/ then new/). A missing root has no
// files.
func WalkMaildir(root string, fn func(MaildirFile) error) error {
	ents, err := os.ReadDir(root)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	dirs := map[string]string{}
	if isDir(filepath.Join(root, "cur")) || isDir(filepath.Join(root, "new")) {
		dirs["INBOX"] = root
	}
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() || !strings.HasPrefix(n, ".") || n == "." || n == ".." {
			continue
		}
		d := filepath.Join(root, n)
		if !isDir(filepath.Join(d, "cur")) && !isDir(filepath.Join(d, "new")) {
			continue
		}
		parts := strings.Split(n[1:], ".")
		for i, p := range parts {
			parts[i] = unescapeList(mutf7Decode(p))
		}
		name := strings.Join(parts, "/")
		if strings.EqualFold(name, "INBOX") {
			name = "INBOX"
		}
		if other, dup := dirs[name]; dup {
			return fmt.Errorf("folder %q is stored twice: %s and %s", name, other, d)
		}
		dirs[name] = d
	}
	names := make([]string, 0, len(dirs))
	for n := range dirs {
		names = append(names, n)
	}
	sortFolders(names)
	for _, name := range names {
		d := dirs[name]
		kw, err := readKeywords(filepath.Join(d, "dovecot-keywords"))
		if err != nil {
			return err
		}
		for _, sub := range []string{"cur", "new"} {
			files, err := os.ReadDir(filepath.Join(d, sub))
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				return err
			}
			for _, f := range files {
				if f.IsDir() || strings.HasPrefix(f.Name(), ".") {
					continue
				}
				p := filepath.Join(d, sub, f.Name())
				st, err := os.Stat(p)
				if err != nil {
					return fmt.Errorf("stat %s: %w", p, err)
				}
				flags, err := parseFlags(f.Name(), kw)
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				if err := fn(MaildirFile{Folder: name, Path: p, Flags: flags,
					Date: st.ModTime().Truncate(time.Second), Size: st.Size()}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
