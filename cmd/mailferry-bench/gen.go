package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// The benchmark account: N messages over six folders, every message a pure
// function of (seed, index), so that a message can be built again at any
// time (the exactly-once check needs no copy of the account) and the
// account can be written by several goroutines.

// benchFolder is one folder of the account and its share of the messages.
type benchFolder struct {
	Name   string
	Weight float64
}

// benchFolders: the largest holds 40 %; nested, with a space, and a
// non-ASCII name (modified UTF-7 on disk and on the wire).
var benchFolders = []benchFolder{
	{"INBOX", 0.40},
	{"Sent", 0.20},
	{"Archive/2024", 0.15},
	{"Archive/2023", 0.12},
	{"Lists/dovecot users", 0.08},
	{"Kunden/Größe", 0.05},
}

// benchKeywords are the keywords messages may carry (written to each
// folder's dovecot-keywords in this order).
var benchKeywords = []string{"$Forwarded", "$Label1"}

// genOptions select an account.
type genOptions struct {
	Messages int
	Seed     uint64
	// Realistic spreads the sizes like a mailbox (text log-normal around
	// 8 KB, 5 % with a 200 KB–2 MB attachment); otherwise every message is
	// a small text message of about 1.3 KB.
	Realistic bool
}

// genMessage is one message of the account.
type genMessage struct {
	Index  int
	Folder string
	// Body is the message with CRLF line ends.
	Body  []byte
	Flags []string // canonical: sorted, system flags first by name
	Date  time.Time
}

// folderCounts splits n over benchFolders: floor of each share, the rest
// to INBOX.
func folderCounts(n int) []int {
	counts := make([]int, len(benchFolders))
	rest := n
	for i := 1; i < len(benchFolders); i++ {
		counts[i] = int(float64(n) * benchFolders[i].Weight)
		rest -= counts[i]
	}
	counts[0] = rest
	return counts
}

// folderOf returns the folder index of message i: the folders take
// consecutive index ranges (UIDs in index order within each folder).
func folderOf(counts []int, i int) int {
	for f, c := range counts {
		if i < c {
			return f
		}
		i -= c
	}
	return len(counts) - 1
}

var (
	words = strings.Fields(`the of and to in is that for it as was with be by on not this are or from at which
		but have an they you were their one all we can has there been if more when will would who so no
		invoice meeting schedule project report budget deadline review contract server migration mailbox
		folder message sync backup restore customer quarterly revenue forecast attached please find
		regards thanks update status release build test deploy issue ticket`)
	names    = []string{"Alice Smith", "Bob Jones", "Carol White", "David Brown", "Erin Black", "Frank Green", "Grace Hall", "Heidi Young"}
	subjects = []string{"Quarterly report", "Meeting tomorrow", "Invoice #%d", "Project Alpha status", "Server migration plan",
		"Budget review", "Contract draft v%d", "Release %d notes", "Ticket %d updated", "Weekly sync notes"}
	epoch = time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

// generate builds message i (0 <= i < o.Messages) of the account.
func generate(o genOptions, counts []int, i int) genMessage {
	r := rand.New(rand.NewPCG(o.Seed, uint64(i)))
	m := genMessage{Index: i, Folder: benchFolders[folderOf(counts, i)].Name}
	// Dates over five years, to the second.
	m.Date = time.Unix(epoch+r.Int64N(5*365*86400), 0).UTC()
	if r.Float64() < 0.7 {
		m.Flags = append(m.Flags, `\Seen`)
	}
	if r.Float64() < 0.1 {
		m.Flags = append(m.Flags, `\Answered`)
	}
	if r.Float64() < 0.05 {
		m.Flags = append(m.Flags, `\Flagged`)
	}
	for _, k := range benchKeywords {
		if r.Float64() < 0.03 {
			m.Flags = append(m.Flags, k)
		}
	}
	m.Flags = canonicalFlags(m.Flags)

	from, to := names[r.IntN(len(names))], names[r.IntN(len(names))]
	subj := subjects[r.IntN(len(subjects))]
	if strings.Contains(subj, "%d") {
		subj = fmt.Sprintf(subj, r.IntN(10000))
	}
	var b bytes.Buffer
	b.Grow(1400)
	addr := func(n string) string {
		return fmt.Sprintf("%q <%s@example.com>", n, strings.ToLower(strings.ReplaceAll(n, " ", ".")))
	}
	fmt.Fprintf(&b, "Date: %s\r\n", m.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\n", addr(from), addr(to))
	fmt.Fprintf(&b, "Subject: %s\r\n", subj)
	fmt.Fprintf(&b, "Message-ID: <%d.%d.%08x@bench.mailferry.example>\r\n", o.Seed, i, r.Uint32())
	b.WriteString("MIME-Version: 1.0\r\n")
	textSize := 1000
	var attach int
	if o.Realistic {
		textSize = int(min(60000, max(800, math.Exp(r.NormFloat64()*0.8+math.Log(8000)))))
		if r.Float64() < 0.05 {
			attach = int(math.Exp(math.Log(200<<10) + r.Float64()*(math.Log(2<<20)-math.Log(200<<10))))
		}
	} else {
		textSize += r.IntN(61) - 30
	}
	boundary := ""
	if attach > 0 {
		boundary = fmt.Sprintf("=_bench_%d_%08x", i, r.Uint32())
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", boundary)
		fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary)
	} else {
		b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n")
	}
	// Text: lines of words, up to textSize bytes.
	start := b.Len()
	for b.Len()-start < textSize {
		n := 6 + r.IntN(8)
		for w := 0; w < n; w++ {
			if w > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[r.IntN(len(words))])
		}
		b.WriteString(".\r\n")
	}
	if attach > 0 {
		fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: application/octet-stream; name=\"file%d.bin\"\r\n", boundary, i)
		fmt.Fprintf(&b, "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"file%d.bin\"\r\n\r\n", i)
		raw := make([]byte, attach)
		for j := 0; j+8 <= len(raw); j += 8 {
			v := r.Uint64()
			for k := 0; k < 8; k++ {
				raw[j+k] = byte(v >> (8 * k))
			}
		}
		enc := base64.StdEncoding.EncodeToString(raw)
		for len(enc) > 76 {
			b.WriteString(enc[:76])
			b.WriteString("\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc)
		fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	}
	m.Body = b.Bytes()
	return m
}

// canonicalFlags sorts flags (as dovecottest.WalkMaildir and
// corpus.CanonicalFlags give them back).
func canonicalFlags(f []string) []string {
	out := append([]string(nil), f...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// messageKey identifies a message for the exactly-once check: its folder
// and the SHA-256 of its bytes with CRLF turned into LF (Dovecot stores
// LF; an IMAP target gets CRLF).
func messageKey(folder string, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(folder))
	h.Write([]byte{0})
	for len(body) > 0 {
		i := bytes.Index(body, []byte("\r\n"))
		if i < 0 {
			h.Write(body)
			break
		}
		h.Write(body[:i])
		h.Write([]byte{'\n'})
		body = body[i+2:]
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}
