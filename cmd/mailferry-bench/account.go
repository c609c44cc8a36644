package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

// systemLetter maps IMAP system flags to Maildir info letters.
var systemLetter = map[string]byte{`\Draft`: 'D', `\Flagged`: 'F', `\Answered`: 'R', `\Seen`: 'S', `\Deleted`: 'T'}

// maildirName is the Maildir++ file name of message m of size (LF) n and
// vsize (CRLF) v: the names sort in index order, so that Dovecot gives
// UIDs in that order.
func maildirName(m genMessage, n, v int) string {
	var letters []byte
	for _, f := range m.Flags {
		if c, ok := systemLetter[f]; ok {
			letters = append(letters, c)
		} else if k := slices.Index(benchKeywords, f); k >= 0 {
			letters = append(letters, byte('a'+k))
		}
	}
	slices.Sort(letters)
	return fmt.Sprintf("%d.M%dP0.mailferrybench,S=%d,W=%d:2,%s", 1600000000+m.Index, m.Index, n, v, letters)
}

// writeAccount writes the account o as a Maildir++ tree at root (the
// layout of Dovecot's mail_location = maildir:~/Maildir): LF line ends as
// Dovecot stores mail, flags and keywords in the names, mtime = the
// internal date, owned by uid:gid (-1: unchanged). It returns the number
// of bytes written (CRLF sizes, as IMAP counts them).
func writeAccount(ctx context.Context, root string, o genOptions, uid, gid int) (int64, error) {
	counts := folderCounts(o.Messages)
	own := func(p string) error {
		if uid < 0 {
			return nil
		}
		return os.Lchown(p, uid, gid)
	}
	mkdir := func(p string) error {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return err
		}
		return own(p)
	}
	dirs := make([]string, len(benchFolders))
	if err := mkdir(root); err != nil {
		return 0, err
	}
	var kw strings.Builder
	for i, k := range benchKeywords {
		fmt.Fprintf(&kw, "%d %s\n", i, k)
	}
	for i, f := range benchFolders {
		d := filepath.Join(root, dovecottest.FolderDir(f.Name))
		for _, s := range []string{d, filepath.Join(d, "cur"), filepath.Join(d, "new"), filepath.Join(d, "tmp")} {
			if err := mkdir(s); err != nil {
				return 0, err
			}
		}
		if f.Name != "INBOX" {
			if err := writeOwned(filepath.Join(d, "maildirfolder"), nil, own); err != nil {
				return 0, err
			}
		}
		if err := writeOwned(filepath.Join(d, "dovecot-keywords"), []byte(kw.String()), own); err != nil {
			return 0, err
		}
		dirs[i] = d
	}
	workers := max(2, runtime.NumCPU())
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int64
		first error
	)
	next := make(chan int, 256)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sum int64
			for i := range next {
				m := generate(o, counts, i)
				data := bytes.ReplaceAll(m.Body, []byte("\r\n"), []byte("\n"))
				p := filepath.Join(dirs[folderOf(counts, i)], "cur", maildirName(m, len(data), len(m.Body)))
				err := writeOwned(p, data, own)
				if err == nil {
					err = os.Chtimes(p, m.Date, m.Date)
				}
				sum += int64(len(m.Body))
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			total += sum
			mu.Unlock()
		}()
	}
	for i := 0; i < o.Messages && ctx.Err() == nil; i++ {
		next <- i
		if i%1024 == 0 {
			mu.Lock()
			err := first
			mu.Unlock()
			if err != nil {
				break
			}
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return total, fmt.Errorf("write the account into %s: %w", root, first)
	}
	return total, ctx.Err()
}

func writeOwned(p string, data []byte, own func(string) error) error {
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return err
	}
	return own(p)
}

// loadAccount replaces user's mail on s with the account o, subscribes the
// folders and lets Dovecot index them (UIDs, UIDVALIDITY).
func loadAccount(ctx context.Context, s *dovecottest.Server, user string, o genOptions, aside func(string)) (int64, error) {
	if err := s.Kick(user); err != nil {
		return 0, err
	}
	aside(s.Maildir(user))
	uid, gid := s.MailOwner()
	n, err := writeAccount(ctx, s.Maildir(user), o, uid, gid)
	if err != nil {
		return n, err
	}
	args := []string{"mailbox", "subscribe", "-u", user}
	for _, f := range benchFolders {
		if f.Name != "INBOX" {
			args = append(args, f.Name)
		}
	}
	if _, err := s.DoveadmRun(args...); err != nil {
		return n, err
	}
	// One folder per call: each doveadm call has a 60 s bound, and
	// indexing a big folder takes a while.
	seen := 0
	for _, f := range benchFolders {
		out, err := s.DoveadmRun("mailbox", "status", "-u", user, "-t", "messages", f.Name)
		if err != nil {
			return n, err
		}
		var k int
		if _, err := fmt.Sscanf(strings.TrimSpace(out), "messages=%d", &k); err != nil {
			return n, fmt.Errorf("load %s: doveadm mailbox status %q: %q", user, f.Name, out)
		}
		seen += k
	}
	if seen != o.Messages {
		return n, fmt.Errorf("load %s: Dovecot sees %d messages after writing %d", user, seen, o.Messages)
	}
	return n, nil
}
