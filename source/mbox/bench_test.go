package mbox

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/source"
)

// writeTakeout writes a Takeout-like mbox of about size octets: Gmail's
// "From " lines and X-Gmail-Labels (1 to 5 labels, every tenth message in
// two folders), Received chains, MIME messages whose sizes follow a mail
// archive's spread (most of 4-30 KB, a quarter with a 50-400 KB attachment,
// one in a hundred with 1-8 MB), "From " lines in bodies. It returns the
// number of messages.
func writeTakeout(w io.Writer, size int64, seed uint64) (int, error) {
	r := rand.New(rand.NewPCG(seed, 0x74616b656f7574))
	bw := bufio.NewWriterSize(w, 1<<20)
	labels := []string{"Inbox", "Sent", "Work", "Work/Projects", "Family", "Receipts", "Travel/2023", "Spam", "Trash", "Drafts"}
	extra := []string{"Important", "Category Updates", "Category Promotions", "Starred"}
	raw := make([]byte, 8<<20)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	start := time.Date(2012, 1, 1, 0, 0, 0, 0, time.UTC)
	var written int64
	n := 0
	for written < size {
		date := start.Add(time.Duration(r.Int64N(12*365*86400)) * time.Second)
		var ls []string
		ls = append(ls, labels[r.IntN(len(labels))])
		if n%10 == 0 {
			ls = append(ls, labels[2+r.IntN(5)])
		}
		for range r.IntN(3) {
			ls = append(ls, extra[r.IntN(len(extra))])
		}
		if r.IntN(3) == 0 {
			ls = append(ls, "Unread")
		} else {
			ls = append(ls, "Opened")
		}
		var b strings.Builder
		fmt.Fprintf(&b, "X-GM-THRID: %d\nX-Gmail-Labels: %s\n", r.Uint64()>>2, strings.Join(ls, ","))
		for h := range 2 + r.IntN(4) {
			fmt.Fprintf(&b, "Received: from mx%d.example.net (mx%d.example.net [192.0.2.%d])\n        by mx.google.com with ESMTPS id %x\n        for <me@gmail.com>; %s\n", h, h, r.IntN(255), r.Uint64(), date.Add(-time.Duration(h)*time.Second).Format(time.RFC1123Z))
		}
		fmt.Fprintf(&b, "Message-ID: <%d.%x@example.com>\nDate: %s\nFrom: Sender %d <s%d@example.com>\nTo: me@gmail.com\nSubject: Message number %d\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\nContent-Type: text/plain; charset=utf-8\n\n", n, r.Uint64(), date.Format(time.RFC1123Z), n%500, n%500, n, n, n)
		text := 3000 + r.IntN(25000)
		for k := 0; k < text; k += 72 {
			if r.IntN(400) == 0 {
				b.WriteString("From the archive, a line that is not a separator.\n")
			}
			b.WriteString(strings.Repeat("lorem ipsum ", 6) + "\n")
		}
		att := 0
		switch x := r.IntN(100); {
		case x == 0:
			att = 1<<20 + r.IntN(7<<20)
		case x < 25:
			att = 50<<10 + r.IntN(350<<10)
		}
		if att > 0 {
			fmt.Fprintf(&b, "--b%d\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n", n)
			off := r.IntN(len(raw) - att)
			enc := base64.StdEncoding.EncodeToString(raw[off : off+att])
			for len(enc) > 76 {
				b.WriteString(enc[:76] + "\n")
				enc = enc[76:]
			}
			b.WriteString(enc + "\n")
		}
		fmt.Fprintf(&b, "--b%d--\n", n)
		from := "From " + strconv.FormatUint(1500000000000000000+uint64(n), 10) + "@xxx " + date.Format("Mon Jan 02 15:04:05 -0700 2006")
		msg := []byte(b.String())
		cw := &countWriter{w: bw}
		if err := Encode(cw, MboxRD, from, msg, false); err != nil {
			return n, err
		}
		written += cw.n
		n++
	}
	return n, bw.Flush()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// TestGenerateTakeout writes the benchmark's Takeout-like file when
// MAILFERRY_MBOX_BENCH names it (size in MAILFERRY_MBOX_BENCH_MB, default
// 5120), for BENCHMARKS.md's mbox section.
func TestGenerateTakeout(t *testing.T) {
	path := os.Getenv("MAILFERRY_MBOX_BENCH")
	if path == "" {
		t.Skip("set MAILFERRY_MBOX_BENCH=FILE to write the benchmark's Takeout-like file")
	}
	mb, _ := strconv.ParseInt(os.Getenv("MAILFERRY_MBOX_BENCH_MB"), 10, 64)
	if mb <= 0 {
		mb = 5120
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := writeTakeout(f, mb<<20, 1)
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d messages, %d MB", path, n, mb)
}

// BenchmarkScan: listing (Folders and List of every label) and fetching a
// 64 MB Takeout-like file, in MB/s of the file.
func BenchmarkScan(b *testing.B) {
	path := filepath.Join(b.TempDir(), "takeout.mbox")
	f, _ := os.Create(path)
	if _, err := writeTakeout(f, 64<<20, 2); err != nil {
		b.Fatal(err)
	}
	f.Close()
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	ctx := context.Background()
	for b.Loop() {
		s, err := Open(ctx, path, Options{GmailLabels: "first"})
		if err != nil {
			b.Fatal(err)
		}
		fs, err := s.Folders(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range fs {
			metas, err := s.List(ctx, f)
			if err != nil {
				b.Fatal(err)
			}
			ids := make([]string, len(metas))
			for i, m := range metas {
				ids[i] = m.ID
			}
			if err := s.Fetch(ctx, f, ids, func(_ source.Meta, r io.Reader) error {
				_, err := io.Copy(io.Discard, r)
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
		s.Close()
	}
}
