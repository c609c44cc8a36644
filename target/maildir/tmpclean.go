package maildir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// A tmp file's name carries who writes it: "<unique>.mferry-<job>-<writer>",
// where writer is a random token of the Target. Cleaning removes a file
// only when its job is this Target's and its writer is no open Target of
// this process: the caller holds the job's lock (the journal's state
// directory), so no other process writes files of the job, and a Target
// of this process that is still open may be writing it.
const tagMark = ".mferry-"

// staleAge is Dovecot's rule for tmp/ (by ctime, which Chtimes cannot set
// back) applied to the files of other mailferry jobs.
const staleAge = 36 * time.Hour

// maxTmpUnique bounds the unique part kept in a tmp file name so that the
// name with its tag stays under the 255 bytes of a file name.
const maxTmpUnique = 160

// maxJob bounds Options.Job.
const maxJob = 32

// writers holds the tokens of the open Targets of this process.
var writers sync.Map

func newWriter() string {
	for {
		var b [6]byte
		rand.Read(b[:])
		w := hex.EncodeToString(b[:])
		if _, dup := writers.LoadOrStore(w, struct{}{}); !dup {
			return w
		}
	}
}

func validJob(job string) bool {
	if len(job) > maxJob {
		return false
	}
	for i := 0; i < len(job); i++ {
		c := job[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// tmpName is the name of the tmp file for unique; extra makes it differ
// from a stale file of the same name.
func (t *Target) tmpName(unique, extra string) string {
	if len(unique) > maxTmpUnique {
		unique = unique[:maxTmpUnique]
	}
	return unique + extra + tagMark + t.job + "-" + t.writer
}

// parseTag returns the job and writer of a tmp file name written by
// mailferry.
func parseTag(name string) (job, writer string, ok bool) {
	i := strings.LastIndex(name, tagMark)
	if i < 0 {
		return "", "", false
	}
	job, writer, ok = strings.Cut(name[i+len(tagMark):], "-")
	return job, writer, ok && writer != ""
}

// cleanOnce removes, the first time this Target touches the folder
// directory, what earlier runs of its job left in its tmp/. Failing to
// clean is logged, never an error of the store.
func (t *Target) cleanOnce(folder, dir string) {
	if t.cleaned[dir] {
		return
	}
	t.cleaned[dir] = true
	n, size, err := cleanTmp(dir, t.job, time.Now())
	if n > 0 {
		t.log.Info("removed partial files an interrupted run left in the Maildir's tmp/", "folder", folder, "files", n, "bytes", size)
	}
	if err != nil {
		t.log.Warn("could not clean the Maildir's tmp/", "folder", folder, "err", err)
	}
}

// cleanTmp removes from dir/tmp the files of job whose writer is not an
// open Target of this process, and the files of other mailferry jobs not
// changed for staleAge. Files not named by mailferry are never touched.
// An empty job removes only the old files.
//
// go-maildir's Dir.Clean is not used: it removes every file of tmp/ whose
// mtime is 36 hours old, and mtime is the message's date, set before the
// rename by mailferry (and other writers) while the file is being written.
func cleanTmp(dir, job string, now time.Time) (n int, size int64, err error) {
	tmp := filepath.Join(dir, "tmp")
	f, err := os.Open(tmp)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var errs []error
	for {
		names, rerr := f.Readdirnames(1024)
		for _, name := range names {
			fjob, writer, ok := parseTag(name)
			if !ok {
				continue
			}
			if _, live := writers.Load(writer); live {
				continue
			}
			p := filepath.Join(tmp, name)
			fi, err := os.Lstat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			if job == "" || fjob != job {
				ct, ok := ctime(fi)
				if !ok || now.Sub(ct) < staleAge {
					continue
				}
			}
			if err := os.Remove(p); err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
				continue
			}
			n++
			size += fi.Size()
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				errs = append(errs, fmt.Errorf("list %s: %w", tmp, rerr))
			}
			break
		}
	}
	return n, size, errors.Join(errs...)
}
