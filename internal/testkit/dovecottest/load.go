package dovecottest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
)

// systemLetters maps IMAP system flags to Maildir info letters.
var systemLetters = map[string]byte{`\draft`: 'D', `\flagged`: 'F', `\answered`: 'R', `\seen`: 'S', `\deleted`: 'T'}

// FolderDir is the Maildir++ directory of a canonical folder name relative
// to the root: "" for INBOX, ".A.B" for "A/B", each level in modified
// UTF-7. (Dovecot's layout with mail_location = maildir:~/Maildir for both
// namespace configurations: the IMAP separator does not change the disk.)
func FolderDir(folder string) string {
	if strings.EqualFold(folder, "INBOX") {
		return ""
	}
	parts := strings.Split(folder, "/")
	for i, p := range parts {
		parts[i] = mutf7Encode(p)
	}
	return "." + strings.Join(parts, ".")
}

// IMAPName is the name of a canonical folder on this server: with the
// namespace prefix and separator.
func (s *Server) IMAPName(folder string) string {
	if strings.EqualFold(folder, "INBOX") {
		return "INBOX"
	}
	return s.opt.Prefix + strings.ReplaceAll(folder, "/", s.opt.Separator)
}

// Load replaces the user's Maildir with msgs: Maildir++ files written
// directly (flags and keywords in the file names, dovecot-keywords per
// folder, mtime = Date, CRLF turned into LF as Dovecot stores mail), folders
// subscribed, then indexed by Dovecot so that UIDs follow the order of msgs
// within each folder and INTERNALDATE is Date.
func (s *Server) Load(tb testing.TB, user string, msgs []corpus.Message) {
	tb.Helper()
	s.kick(tb, user)
	root := s.Maildir(user)
	if err := os.RemoveAll(root); err != nil {
		tb.Fatalf("dovecottest: load %s: %v", user, err)
	}
	if err := s.writeMaildir(root, msgs); err != nil {
		tb.Fatalf("dovecottest: load %s: %v", user, err)
	}
	var folders []string
	for _, m := range msgs {
		if !strings.EqualFold(m.Folder, "INBOX") && !slices.Contains(folders, m.Folder) {
			folders = append(folders, m.Folder)
		}
	}
	if len(folders) > 0 {
		args := []string{"mailbox", "subscribe", "-u", user}
		for _, f := range folders {
			args = append(args, s.IMAPName(f))
		}
		s.Doveadm(tb, args...)
	}
	// Index every folder: assigns UIDs (in file name order) and UIDVALIDITY.
	// (Names, not "*": with the prefix "INBOX." doveadm's "*" misses folders.)
	args := []string{"mailbox", "status", "-u", user, "-t", "messages", "INBOX"}
	for _, f := range folders {
		args = append(args, s.IMAPName(f))
	}
	out := s.Doveadm(tb, args...)
	n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(out), "messages="))
	if err != nil || n != len(msgs) {
		tb.Fatalf("dovecottest: load %s: Dovecot sees %q after loading %d messages", user, strings.TrimSpace(out), len(msgs))
	}
}

// writeMaildir writes msgs as a Maildir++ tree at root, owned by the mail
// account.
func (s *Server) writeMaildir(root string, msgs []corpus.Message) error {
	type box struct {
		dir      string
		keywords []string
	}
	boxes := map[string]*box{}
	mkdir := func(p string) error {
		if err := os.Mkdir(p, 0o700); err != nil && !os.IsExist(err) {
			return err
		}
		return os.Chown(p, s.uid, s.gid)
	}
	getBox := func(folder string) (*box, error) {
		if strings.EqualFold(folder, "INBOX") {
			folder = "INBOX"
		}
		if b, ok := boxes[folder]; ok {
			return b, nil
		}
		d := filepath.Join(root, FolderDir(folder))
		for _, p := range []string{d, filepath.Join(d, "cur"), filepath.Join(d, "new"), filepath.Join(d, "tmp")} {
			if err := mkdir(p); err != nil {
				return nil, err
			}
		}
		if folder != "INBOX" {
			if err := s.writeFile(filepath.Join(d, "maildirfolder"), nil); err != nil {
				return nil, err
			}
		}
		b := &box{dir: d}
		boxes[folder] = b
		return b, nil
	}
	if err := mkdir(root); err != nil {
		return err
	}
	if _, err := getBox("INBOX"); err != nil {
		return err
	}
	// Files are written by a few goroutines (a file system on overlayfs
	// takes about 1 ms per file).
	type job struct {
		path string
		data []byte
		date time.Time
	}
	jobs := make(chan job, 64)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if firstErr.Load() != nil {
					continue
				}
				err := s.writeFile(j.path, j.data)
				if err == nil && !j.date.IsZero() {
					err = os.Chtimes(j.path, j.date, j.date)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	closed := false
	defer func() {
		// On an early return, let the workers finish.
		if !closed {
			close(jobs)
			wg.Wait()
		}
	}()
	const base = 1700000000
	pid := os.Getpid()
	for i, m := range msgs {
		b, err := getBox(m.Folder)
		if err != nil {
			return err
		}
		var letters []byte
		for _, f := range m.Flags {
			if c, ok := systemLetters[strings.ToLower(f)]; ok {
				letters = append(letters, c)
				continue
			}
			if strings.HasPrefix(f, `\`) {
				continue // \Recent and unknown system flags
			}
			k := slices.Index(b.keywords, f)
			if k < 0 {
				if len(b.keywords) == 26 {
					return fmt.Errorf("folder %q: more than 26 keywords", m.Folder)
				}
				b.keywords = append(b.keywords, f)
				k = len(b.keywords) - 1
			}
			letters = append(letters, byte('a'+k))
		}
		slices.Sort(letters)
		letters = slices.Compact(letters)
		data := bytes.ReplaceAll(m.Body, []byte("\r\n"), []byte("\n"))
		vsize := len(data) + bytes.Count(data, []byte("\n"))
		// The names sort in the order of msgs: Dovecot assigns UIDs in that order.
		name := fmt.Sprintf("%d.M%dP%d.mailferrytest,S=%d,W=%d:2,%s", base+i, i, pid, len(data), vsize, letters)
		jobs <- job{filepath.Join(b.dir, "cur", name), data, m.Date}
	}
	close(jobs)
	closed = true
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		return *err
	}
	for _, b := range boxes {
		if len(b.keywords) == 0 {
			continue
		}
		var kw strings.Builder
		for i, k := range b.keywords {
			fmt.Fprintf(&kw, "%d %s\n", i, k)
		}
		if err := s.writeFile(filepath.Join(b.dir, "dovecot-keywords"), []byte(kw.String())); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) writeFile(p string, data []byte) error {
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return err
	}
	return os.Chown(p, s.uid, s.gid)
}

// sortFolders orders canonical names with INBOX first.
func sortFolders(names []string) {
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == "INBOX") != (names[j] == "INBOX") {
			return names[i] == "INBOX"
		}
		return names[i] < names[j]
	})
}
