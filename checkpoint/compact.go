package checkpoint

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Compaction keeps the journal at one record per key. Every run appends an
// intent and a done per message it copies, and a done per message whose
// flags --sync-flags updates; a forgotten key leaves its records behind. When
// at least as many records are superseded as there are keys (at Close), or
// twice as many (at Open, after runs that never closed), the journal is
// rewritten as a snapshot: the header, then for each key its latest intent
// or done line (with the flags of a later "flags" record folded in), in the
// order the index walks them (see cursor). Later records are appended to it
// as before (the tail), so the file is always snapshot + tail in the one
// format that Open reads.
//
// The snapshot is written to path+".compact", fsynced, renamed over the
// journal, and the directory fsynced. A crash before the rename leaves the
// old journal (and a temporary file that the next Open removes); a crash
// after it leaves the complete snapshot. Either opens to the same keys and
// entries. Compaction runs only while no record is being written (at Open
// before the writer starts, at Close after it stopped), under the lock.

const compactSuffix = ".compact"

// compactMin is the number of superseded records below which compaction is
// not worth a rewrite.
var compactMin int64 = 4096

// compactBuf is the write buffer of a compaction (a variable for tests).
var compactBuf = 1 << 20

// compactHook, when set (tests), is called at each point of a compaction:
// "create", "write" (before each buffer is written), "synced", "renamed",
// "dirsynced", "done".
var compactHook func(point string)

func hookAt(point string) {
	if compactHook != nil {
		compactHook(point)
	}
}

// compactDue reports whether at least factor times as many records are
// superseded as there are keys.
func (j *Journal) compactDue(factor int64) bool {
	garbage := j.lines - int64(j.live)
	return garbage >= compactMin && garbage >= factor*int64(j.live)
}

type hookWriter struct{ w io.Writer }

func (h hookWriter) Write(p []byte) (int, error) {
	hookAt("write")
	return h.w.Write(p)
}

// compact rewrites the journal as a snapshot (see above). It must be called
// with no writer running; j.f is then the new file, and the index's slots
// point into it. On error the journal is unchanged.
func (j *Journal) compact() (err error) {
	tmp := j.path + compactSuffix
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	renamed := false
	defer func() {
		if err != nil {
			f.Close()
			if !renamed {
				os.Remove(tmp)
			}
		}
	}()
	hookAt("create")
	w := bufio.NewWriterSize(hookWriter{f}, compactBuf)
	var (
		line = appendLine(nil, &Record{Op: opHeader})
		off  = int64(len(line))
		lens = make([]uint32, 0, j.live) // of the snapshot's lines, for the index once renamed
		win  []byte
		wOff int64
		raw  rawRecord
		sc   scratch
		kb   []byte
		live int
	)
	if _, err := w.Write(line); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	x := j.idx
	var c cursor
	for {
		s, more := x.next(&c)
		if !more {
			break
		}
		if s.state() == stateForgotten {
			continue
		}
		kb = x.appendKey(kb[:0], s)
		rec := s.rec()
		line = lineIn(win, wOff, rec)
		if line == nil {
			if win == nil {
				win = make([]byte, 1<<20)
			}
			m, rerr := j.f.ReadAt(win[:cap(win)], rec)
			win, wOff = win[:m], rec
			if line = lineIn(win, wOff, rec); line == nil {
				if rerr != nil && rerr != io.EOF {
					return fmt.Errorf("read the journal: %w", rerr)
				}
				if line, err = readLineAt(j.f, rec); err != nil { // longer than the window
					return fmt.Errorf("read the journal: %w", err)
				}
			}
		}
		if err := parseRawMode(line, &raw, &sc, true); err != nil {
			return fmt.Errorf("read the record of %q: %w", kb, err)
		}
		if !bytes.Equal(raw.key, kb) {
			return fmt.Errorf("read the record of %q: found the record of %q", kb, raw.key)
		}
		if want := x.flagSets[s.flagID()]; !sameJoined(raw.flags, raw.nflags, want) {
			// A later "flags" record changed them: write the line anew.
			r, err := ParseLine(line)
			if err != nil {
				return fmt.Errorf("read the record of %q: %w", kb, err)
			}
			r.Flags = want
			line = appendLine(nil, &r)
		}
		if _, err := w.Write(line); err != nil {
			return fmt.Errorf("write %s: %w", tmp, err)
		}
		lens = append(lens, uint32(len(line)))
		off += int64(len(line))
		live++
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	hookAt("synced")
	if err := lock(f); err != nil { // as Open locks the journal itself
		return fmt.Errorf("lock %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("replace the journal with its compacted copy: %w", err)
	}
	renamed = true
	hookAt("renamed")
	// Were the directory's fsync to fail, the rename might not be durable,
	// but both files hold the same state: go on with the new one.
	syncDir(filepath.Dir(j.path))
	hookAt("dirsynced")
	j.f.Close()
	j.mu.Lock()
	// The index keeps its slots (a forgotten key's stays forgotten, no
	// longer in the file); each live one points into the snapshot.
	pos := int64(len(appendLine(nil, &Record{Op: opHeader})))
	var c2 cursor
	for k := 0; ; {
		s, more := x.next(&c2)
		if !more {
			break
		}
		if s.state() != stateForgotten {
			s.setRec(pos)
			pos += int64(lens[k])
			k++
		}
	}
	j.f = f
	j.lines, j.live = int64(live), live
	j.bufBase, j.durable = off, off
	j.buf, j.spare = j.buf[:0], nil
	j.mu.Unlock()
	hookAt("done")
	return nil
}

// sameJoined reports whether joined (n flags joined with NUL bytes) holds
// the flags want.
func sameJoined(joined []byte, n int, want []string) bool {
	if n != len(want) {
		return false
	}
	for i, f := range want {
		if i > 0 {
			if len(joined) == 0 || joined[0] != 0 {
				return false
			}
			joined = joined[1:]
		}
		if len(joined) < len(f) || string(joined[:len(f)]) != f {
			return false
		}
		joined = joined[len(f):]
	}
	return len(joined) == 0
}
