// Package corpus generates deterministic test mail for mailferry's
// integration tests and compares what a migration produced with what was
// expected. It is a Go port of the shape of the benchmark corpus
// (make-corpus.py): realistic RFC 5322 messages with CRLF line ends in
// eleven folders (nested ones, spaces, Arabic), with the oddities a real
// mailbox has.
//
// Variety, all deterministic for a seed: plain text, multipart/alternative,
// multipart/mixed with base64 attachments, raw 8-bit UTF-8 and RFC 2047
// encoded Arabic subjects and names, long folded headers, messages without a
// Message-ID, two different messages sharing one Message-ID, exact duplicates
// inside a folder, sizes from about 300 bytes to about 200 KB, and optional
// big messages (Options.Big). Flags include \Seen \Answered \Flagged \Draft
// and the keywords $Forwarded and Junk (never \Deleted). Dates are spread
// over 2019-2024 with second precision.
package corpus

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"mime"
	"slices"
	"strings"
	"time"
)

// Message is one test message.
type Message struct {
	// Folder is the canonical folder name: UTF-8, "/"-separated, "INBOX".
	Folder string
	// Body is the whole message (headers and body) with CRLF line ends.
	Body []byte
	// Flags are IMAP flags and keywords, e.g. `\Seen`, `$Forwarded`.
	Flags []string
	// Date is the internal date (second precision).
	Date time.Time
	// MessageID is the Message-ID header's value ("<...>"), "" when absent.
	MessageID string
}

// DefaultFolders are the folders of make-corpus.py, with nesting, spaces
// and Arabic names.
var DefaultFolders = []string{
	"INBOX", "Sent", "Drafts", "Archive", "Archive/2024", "Archive/2023",
	"Archive/2023/Q4 Reports", "العملاء", "العملاء/الرياض", "Project Alpha",
	"Lists/dovecot-users",
}

var defaultWeights = []float64{0.38, 0.15, 0.02, 0.05, 0.14, 0.08, 0.03, 0.06, 0.03, 0.04, 0.02}

// Options say what Generate makes. The zero value gives 100 messages of
// seed 0 in DefaultFolders.
type Options struct {
	// Messages is the number of messages (default 100).
	Messages int
	// Seed selects the corpus; the same Options give the same bytes.
	Seed int64
	// Folders replaces DefaultFolders (messages spread evenly).
	Folders []string
	// Big adds that many big messages (a base64 attachment of BigMB MiB)
	// in place of ordinary ones.
	Big int
	// BigMB is the attachment size of a big message in MiB (default 10).
	BigMB int
	// OnlyInbox puts every message in INBOX (a POP3 mailbox).
	OnlyInbox bool
}

const crlf = "\r\n"

var (
	enWords = strings.Fields(`the of and to in is that for it as was with be by on not this are or from at which
		but have an they you were their one all we can has there been if more when will would who so no invoice
		meeting schedule project report budget deadline review contract server migration mailbox folder message
		sync backup restore customer quarterly revenue forecast attached please find regards thanks update status
		release build test deploy issue ticket`)
	arWords = strings.Fields(`مرحبا شكرا الاجتماع الفاتورة المشروع التقرير العميل الرياض جدة الموعد النهائي الميزانية
		المراجعة العقد الخادم البريد الرسالة المجلد النسخ الاحتياطي الاستعادة الربع السنوي الإيرادات التوقعات مرفق
		يرجى الاطلاع مع تحياتي تحديث الحالة الإصدار الاختبار النشر المشكلة التذكرة في من إلى على عن هذا هذه التي`)
	enNames = []string{"Alice Smith", "Bob Jones", "Carol White", "David Brown", "Erin Black", "Frank Green",
		"Grace Hall", "Heidi Young", "Ivan King", "Judy Wright", "Mallory Scott", "Oscar Adams"}
	arNames = []string{"محمد العتيبي", "فاطمة الزهراني", "عبدالله القحطاني", "نورة الشهري", "خالد الدوسري", "سارة الحربي"}
	domains = []string{"example.com", "example.org", "example.net", "corp.example", "xn--mgbh0fb.example"}
	enSubj  = []string{"Quarterly report", "Meeting tomorrow", "Invoice #%d", "Project Alpha status",
		"Server migration plan", "Budget review", "Contract draft v%d", "Lunch?", "Release %d notes",
		"Ticket %d updated", "Your order %d has shipped", "Weekly sync notes"}
	arSubj = []string{"التقرير الربعي", "اجتماع الغد", "فاتورة رقم %d", "حالة المشروع", "خطة نقل الخادم",
		"مراجعة الميزانية", "مسودة العقد %d", "تحديث التذكرة %d", "ملاحظات الإصدار %d"}
	attachTypes = [][2]string{{"application/pdf", "pdf"}, {"image/jpeg", "jpg"}, {"application/zip", "zip"},
		{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"}}
	riyadh = time.FixedZone("+0300", 3*3600)
)

type gen struct {
	r    *rand.Rand
	seed int64
}

func (g *gen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// text returns about n bytes of CRLF text lines starting with a unique token.
func (g *gen) text(n int, arabic bool, token string) string {
	var b strings.Builder
	b.WriteString("ref: " + token + crlf)
	words := enWords
	if arabic {
		words = arWords
	}
	for b.Len() < n {
		k := 6 + g.r.IntN(7)
		if arabic {
			k = 4 + g.r.IntN(6)
		}
		for j := 0; j < k; j++ {
			if j > 0 {
				b.WriteByte(' ')
			}
			w := g.pick(words)
			if j == 0 && !arabic {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			b.WriteString(w)
		}
		b.WriteString("." + crlf)
		if g.r.IntN(8) == 0 {
			b.WriteString(crlf)
		}
	}
	return b.String()
}

func (g *gen) randBytes(n int) []byte {
	p := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := g.r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	return p
}

// b64 is base64 in 76-character CRLF lines.
func b64(p []byte) string {
	s := base64.StdEncoding.EncodeToString(p)
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + crlf)
		s = s[76:]
	}
	b.WriteString(s + crlf)
	return b.String()
}

// fold folds a header line at spaces so that no line exceeds 78 octets.
func fold(line string) string {
	if len(line) <= 78 {
		return line
	}
	var b strings.Builder
	cur := 0
	for i, w := range strings.Split(line, " ") {
		if i > 0 {
			if cur+1+len(w) > 78 {
				b.WriteString(crlf + " ")
				cur = 1
			} else {
				b.WriteByte(' ')
				cur++
			}
		}
		b.WriteString(w)
		cur += len(w)
	}
	return b.String()
}

func addr(name, local, domain string, encode bool) string {
	if !isASCII(name) && encode {
		name = mime.BEncoding.Encode("utf-8", name)
	} else {
		name = `"` + name + `"`
	}
	return fmt.Sprintf("%s <%s@%s>", name, local, domain)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func rfc5322(t time.Time) string { return t.Format("Mon, 02 Jan 2006 15:04:05 -0700") }

// Generate returns a deterministic corpus: the same Options give the same
// messages, byte for byte.
func Generate(o Options) []Message {
	n := o.Messages
	if n <= 0 {
		n = 100
	}
	folders, weights := DefaultFolders, defaultWeights
	if len(o.Folders) > 0 {
		folders, weights = o.Folders, nil
	}
	if o.OnlyInbox {
		folders, weights = []string{"INBOX"}, nil
	}
	bigMB := o.BigMB
	if bigMB <= 0 {
		bigMB = 10
	}
	g := &gen{r: rand.New(rand.NewPCG(uint64(o.Seed), 0x6d61696c66657279)), seed: o.Seed}
	big := map[int]bool{}
	for _, i := range g.r.Perm(n)[:min(o.Big, n)] {
		big[i] = true
	}
	pickFolder := func() string {
		if weights == nil {
			return folders[g.r.IntN(len(folders))]
		}
		x := g.r.Float64()
		for i, w := range weights {
			if x < w {
				return folders[i]
			}
			x -= w
		}
		return folders[0]
	}
	start := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	const span = 6 * 365 * 86400
	out := make([]Message, 0, n)
	for i := 0; i < n; i++ {
		switch {
		// An exact duplicate of an earlier message in the same folder.
		case len(out) > 2 && !big[i] && (i == n/2 || g.r.IntN(100) == 0):
			src := out[g.r.IntN(len(out))]
			if len(src.Body) > 1<<20 {
				break
			}
			dup := src
			dup.Flags = slices.Clone(src.Flags)
			out = append(out, dup)
			continue
		// A different message that reuses an earlier Message-ID.
		case len(out) > 2 && !big[i] && (i == n/3 || g.r.IntN(200) == 0):
			src := out[g.r.IntN(len(out))]
			if src.MessageID != "" {
				out = append(out, g.message(i, pickFolder(), start, span, src.MessageID, false, bigMB))
				continue
			}
		}
		msgid := ""
		if !(i == 1 || g.r.IntN(100) == 0) {
			msgid = "-" // generated
		}
		out = append(out, g.message(i, pickFolder(), start, span, msgid, big[i], bigMB))
	}
	return out
}

// message builds message i. msgid "" means none, "-" means a new one.
func (g *gen) message(i int, folder string, start time.Time, span int, msgid string, big bool, bigMB int) Message {
	r := g.r
	date := start.Add(time.Duration(r.IntN(span)) * time.Second)
	arabic := r.IntN(100) < 35
	token := fmt.Sprintf("%d-%d-%012x", g.seed, i, r.Uint64()>>16)
	num := 100 + r.IntN(9900)
	if msgid == "-" {
		msgid = fmt.Sprintf("<%s.%d@mail.example.com>", token, num)
	}
	me := [3]string{"Mail Ferry", "ferry", "example.com"}
	name := g.pick(enNames)
	if arabic {
		name = g.pick(arNames)
	}
	other := [3]string{name, fmt.Sprintf("user%d", 1+r.IntN(400)), g.pick(domains)}
	from, to := other, me
	if folder == "Sent" || folder == "Drafts" {
		from, to = me, other
	}
	subj := g.pick(enSubj)
	if arabic {
		subj = g.pick(arSubj)
	}
	if strings.Contains(subj, "%d") {
		subj = fmt.Sprintf(subj, num)
	}
	reply := r.IntN(4) == 0
	if reply {
		if arabic {
			subj = "رد: " + subj
		} else {
			subj = "Re: " + subj
		}
	}
	rawUTF8 := r.IntN(2) == 0 // 8-bit headers instead of RFC 2047
	kind := r.IntN(100)
	tiny := kind < 5 && !big

	var h []string
	if tiny {
		h = []string{
			"Date: " + rfc5322(date),
			"From: " + addr(from[0], from[1], from[2], !rawUTF8),
			"To: " + addr(to[0], to[1], to[2], !rawUTF8),
			"Subject: " + subject(subj, rawUTF8),
		}
		if msgid != "" {
			h = append(h, "Message-ID: "+msgid)
		}
		h = append(h, "X-Mailer: mailferry corpus", "MIME-Version: 1.0", `Content-Type: text/plain; charset="utf-8"`)
		body := "ref: " + token + crlf + "ok, thanks" + crlf
		return g.finish(folder, date, msgid, strings.Join(h, crlf)+crlf+crlf+body)
	}
	zone := time.UTC
	if arabic {
		zone = riyadh
	}
	h = []string{
		fmt.Sprintf("Return-Path: <%s@%s>", from[1], from[2]),
		fold(fmt.Sprintf("Received: from mx%d.example.net (mx%d.example.net [192.0.2.%d]) by mail.example.com with ESMTPS id %s; %s",
			num%9, num%9, num%250+1, token, rfc5322(date.In(zone)))),
		"Date: " + rfc5322(date.In(zone)),
		"From: " + addr(from[0], from[1], from[2], !rawUTF8),
		"To: " + addr(to[0], to[1], to[2], !rawUTF8),
		"Subject: " + subject(subj, rawUTF8),
	}
	if r.IntN(5) == 0 {
		h = append(h, "Cc: "+addr(g.pick(enNames), fmt.Sprintf("cc%d", 1+r.IntN(50)), "example.org", true))
	}
	if msgid != "" {
		h = append(h, "Message-ID: "+msgid)
	}
	if reply {
		h = append(h, fmt.Sprintf("In-Reply-To: <%s.parent@mail.example.com>", token))
		// A long References header, folded over several lines.
		refs := make([]string, 3+r.IntN(12))
		for j := range refs {
			refs[j] = fmt.Sprintf("<%s.r%d@mail.example.com>", token, j)
		}
		h = append(h, fold("References: "+strings.Join(refs, " ")))
	}
	h = append(h, "MIME-Version: 1.0")
	if strings.HasPrefix(folder, "Lists/") {
		h = append(h, "List-Id: Dovecot Users <dovecot.dovecot.org>")
	}
	// Text: mostly 1-10 KB.
	tsize := 400 + r.IntN(2000)
	if r.IntN(3) == 0 {
		tsize += r.IntN(8000)
	}
	text := g.text(tsize, arabic, token)
	cte := "7bit"
	if arabic {
		cte = "8bit"
	}
	ctext := `text/plain; charset="utf-8"`
	attach := 0
	switch {
	case big:
		attach = bigMB << 20
	case kind < 7: // a few large ones, about 100-200 KB once encoded
		attach = 70<<10 + r.IntN(70<<10)
	case kind < 15:
		attach = 1<<10 + r.IntN(20<<10)
	}
	alt := r.IntN(10) < 3
	var body string
	if attach == 0 && !alt {
		h = append(h, "Content-Type: "+ctext, "Content-Transfer-Encoding: "+cte)
		body = text
	} else {
		bAlt := "=_alt_" + token
		var part string
		if alt {
			var html strings.Builder
			html.WriteString("<html><body>" + crlf)
			for _, ln := range strings.Split(text, crlf) {
				if ln != "" {
					html.WriteString("<p>" + ln + "</p>" + crlf)
				}
			}
			html.WriteString("</body></html>" + crlf)
			part = "Content-Type: multipart/alternative; boundary=\"" + bAlt + "\"" + crlf + crlf +
				"--" + bAlt + crlf + "Content-Type: " + ctext + crlf + "Content-Transfer-Encoding: " + cte + crlf + crlf + text +
				"--" + bAlt + crlf + "Content-Type: text/html; charset=\"utf-8\"" + crlf + "Content-Transfer-Encoding: " + cte + crlf + crlf + html.String() +
				"--" + bAlt + "--" + crlf
		} else {
			part = "Content-Type: " + ctext + crlf + "Content-Transfer-Encoding: " + cte + crlf + crlf + text
		}
		if attach > 0 {
			bMix := "=_mix_" + token
			at := attachTypes[r.IntN(len(attachTypes))]
			fname := fmt.Sprintf("report-%d.%s", num, at[1])
			disp := `attachment; filename="` + fname + `"`
			if arabic {
				fname = fmt.Sprintf("تقرير-%d.%s", num, at[1])
				disp = "attachment; filename*=utf-8''" + pctEncode(fname)
			}
			h = append(h, "Content-Type: multipart/mixed; boundary=\""+bMix+"\"")
			body = "This is a multi-part message in MIME format." + crlf + crlf +
				"--" + bMix + crlf + part +
				"--" + bMix + crlf + "Content-Type: " + at[0] + crlf + "Content-Transfer-Encoding: base64" + crlf +
				"Content-Disposition: " + disp + crlf + crlf + b64(g.randBytes(attach)) +
				"--" + bMix + "--" + crlf
		} else {
			head, rest, _ := strings.Cut(part, crlf+crlf)
			h = append(h, head)
			body = rest
		}
	}
	return g.finish(folder, date, msgid, strings.Join(h, crlf)+crlf+crlf+body)
}

func subject(s string, raw bool) string {
	if raw || isASCII(s) {
		return fold(s)
	}
	return fold(mime.BEncoding.Encode("utf-8", s))
}

func pctEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x80 && (c == '.' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (g *gen) finish(folder string, date time.Time, msgid, data string) Message {
	r := g.r
	var fl []string
	switch folder {
	case "Drafts":
		fl = append(fl, `\Draft`)
	case "INBOX", "العملاء", "العملاء/الرياض", "Project Alpha":
		if r.IntN(100) < 65 {
			fl = append(fl, `\Seen`)
		}
	default:
		if r.IntN(100) < 97 {
			fl = append(fl, `\Seen`)
		}
	}
	if r.IntN(20) == 0 {
		fl = append(fl, `\Flagged`)
	}
	if folder != "Drafts" && slices.Contains(fl, `\Seen`) && r.IntN(8) == 0 {
		fl = append(fl, `\Answered`)
	}
	if r.IntN(20) == 0 {
		fl = append(fl, "$Forwarded")
	}
	if folder == "INBOX" && r.IntN(40) == 0 {
		fl = append(fl, "Junk")
	}
	return Message{Folder: folder, Body: []byte(data), Flags: fl, Date: date, MessageID: msgid}
}

// Fingerprint is the identity of a message's bytes used by Compare: the
// SHA-256 of the exact bytes, in hex.
func Fingerprint(body []byte) string {
	s := sha256.Sum256(body)
	return hex.EncodeToString(s[:])
}

// MessageIDOf returns the Message-ID header's value of a message ("" if it
// has none). Folded values are unfolded.
func MessageIDOf(body []byte) string {
	head := body
	if i := bytes.Index(body, []byte("\n\n")); i >= 0 {
		head = body[:i]
	}
	if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
		head = head[:i]
	}
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	for k, ln := range lines {
		if len(ln) >= 11 && strings.EqualFold(ln[:11], "message-id:") {
			v := ln[11:]
			for _, c := range lines[k+1:] {
				if c == "" || (c[0] != ' ' && c[0] != '\t') {
					break
				}
				v += c
			}
			return strings.TrimSpace(v)
		}
	}
	return ""
}
