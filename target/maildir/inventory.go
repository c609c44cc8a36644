package maildir

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/mailferry/mailferry/internal/maildirpp"
	"github.com/mailferry/mailferry/internal/message"
	"github.com/mailferry/mailferry/target"
)

var _ target.Inventorier = (*Target)(nil)

// Census counts the message files of cur/ and new/. A missing folder has
// none and is not created.
func (t *Target) Census(ctx context.Context, folder string) (target.Census, error) {
	if err := ctx.Err(); err != nil {
		return target.Census{}, err
	}
	name, dir, err := t.resolve(folder)
	if err != nil {
		return target.Census{}, err
	}
	var c target.Census
	for _, sub := range []string{"new", "cur"} {
		err := eachFile(filepath.Join(dir, sub), func(string) { c.Messages++ })
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return target.Census{}, fmt.Errorf("count the messages of Maildir folder %q: %w", name, err)
		}
	}
	return c, nil
}

// eachFile calls fn with the name of every message file of dir (not
// directories, not dot files).
func eachFile(dir string, fn func(name string)) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		des, err := f.ReadDir(4096)
		for _, de := range des {
			if de.IsDir() || strings.HasPrefix(de.Name(), ".") {
				continue
			}
			fn(de.Name())
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// inventoryWorkers is how many files Inventory reads at once: opening
// files is mostly waiting on the file system.
const inventoryWorkers = 4

// Inventory calls fn for every message file of cur/ and new/: the base
// name as receipt, the ",S=" size (else the file's), the mtime as date,
// and the Message-ID from the header section, read up to its blank line.
// fn is called on the calling goroutine. A file that Dovecot renames
// while Inventory runs (new/ to cur/, new flags) is looked for again under
// its new name.
func (t *Target) Inventory(ctx context.Context, folder string, fn func(target.Stored) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name, dir, err := t.resolve(folder)
	if err != nil {
		return err
	}
	list := func(keep func(base string) bool) ([]string, error) {
		var rels []string
		// new/ first: Dovecot moves files from new/ to cur/, never back.
		for _, sub := range []string{"new", "cur"} {
			err := eachFile(filepath.Join(dir, sub), func(base string) {
				if keep == nil || keep(base) {
					rels = append(rels, sub+"/"+base)
				}
			})
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("list the messages of Maildir folder %q: %w", name, err)
			}
		}
		return rels, nil
	}
	unique := func(rel string) string {
		u, _, _ := maildirpp.ParseFileName(rel[len("cur/"):])
		return u
	}
	// read reports the files of rels and returns those that vanished.
	read := func(rels []string) (map[string]bool, error) {
		var gone map[string]bool
		err := readAll(ctx, dir, rels, func(rel string, s target.Stored, err error) error {
			if errors.Is(err, os.ErrNotExist) {
				if gone == nil {
					gone = map[string]bool{}
				}
				gone[rel] = true
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %s in Maildir folder %q: %w", rel, name, err)
			}
			return fn(s)
		})
		return gone, err
	}
	rels, err := list(nil)
	if err != nil {
		return err
	}
	gone, err := read(rels)
	if err != nil || len(gone) == 0 {
		return err
	}
	// Look again for the messages whose file vanished and that were not
	// reported under another name already.
	missing := map[string]bool{}
	for rel := range gone {
		missing[unique(rel)] = true
	}
	for _, rel := range rels {
		if !gone[rel] {
			delete(missing, unique(rel))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	again, err := list(func(base string) bool {
		u, _, _ := maildirpp.ParseFileName(base)
		return missing[u]
	})
	if err != nil {
		return err
	}
	_, err = read(again) // a file gone twice was expunged
	return err
}

// readAll reads the files of rels ("new/<base>" or "cur/<base>") with a
// few workers and calls fn, from this goroutine, for each; err is the
// file's read error.
func readAll(ctx context.Context, dir string, rels []string, fn func(rel string, s target.Stored, err error) error) error {
	type result struct {
		rel string
		s   target.Stored
		err error
	}
	// Files are read in batches: at 200,000 files the channel operations
	// count.
	const batch = 128
	ctx, cancel := context.WithCancel(ctx)
	jobs := make(chan []string, inventoryWorkers)
	results := make(chan []result, inventoryWorkers)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // no reads go on after a return
	for range min(inventoryWorkers, len(rels)/batch+1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReaderSize(nil, 4096)
			for b := range jobs {
				out := make([]result, len(b))
				for i, rel := range b {
					s, err := readStored(dir, rel, br)
					out[i] = result{rel, s, err}
				}
				select {
				case results <- out:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := 0; i < len(rels); i += batch {
			select {
			case jobs <- rels[i:min(i+batch, len(rels))]:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	for rs := range results {
		for _, r := range rs {
			if err := fn(r.rel, r.s, r.err); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// testHookRead, when set, runs before readStored opens a file.
var testHookRead func(rel string)

// readStored describes one message file, reading its header section only.
func readStored(dir, rel string, br *bufio.Reader) (target.Stored, error) {
	if testHookRead != nil {
		testHookRead(rel)
	}
	base := rel[len("cur/"):]
	s := target.Stored{Receipt: base}
	f, err := maildirpp.OpenNoAtime(filepath.Join(dir, rel))
	if err != nil {
		return s, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return s, err
	}
	s.Date = fi.ModTime()
	s.Size = fi.Size()
	if _, size, _ := maildirpp.ParseFileName(base); size >= 0 {
		s.Size = size
	}
	s.MessageID, err = readMessageID(f, br)
	return s, err
}

// readMessageID reads r's header section only (through br, which it
// resets) and returns its Message-ID.
func readMessageID(r io.Reader, br *bufio.Reader) (string, error) {
	var sc message.Scanner
	br.Reset(r)
	err := message.ReadHeader(br, &sc)
	return sc.MessageID(), err
}
