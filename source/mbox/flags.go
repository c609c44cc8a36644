package mbox

import (
	"bytes"
	"mime"
	"slices"
	"strconv"
	"strings"

	"github.com/mailferry/mailferry/internal/message"
)

// Thunderbird's X-Mozilla-Status bits (nsMsgMessageFlags).
const (
	mozRead      = 0x0001
	mozReplied   = 0x0002
	mozMarked    = 0x0004
	mozExpunged  = 0x0008
	mozForwarded = 0x1000
	mozLabels    = 0x0E000000 // X-Mozilla-Status2: the old labels 1 to 5
)

// headerFlags reads the flags of Thunderbird's X-Mozilla-Status,
// X-Mozilla-Status2 and X-Mozilla-Keys, and mutt's and Claws' Status and
// X-Status. expunged is Thunderbird's "deleted, not yet compacted away".
func headerFlags(hdr []byte) (flags []string, expunged bool) {
	add := func(f string) {
		if !slices.Contains(flags, f) {
			flags = append(flags, f)
		}
	}
	if v := headerValue(hdr, "x-mozilla-status"); v != nil {
		if n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 32); err == nil {
			if n&mozRead != 0 {
				add(`\Seen`)
			}
			if n&mozReplied != 0 {
				add(`\Answered`)
			}
			if n&mozMarked != 0 {
				add(`\Flagged`)
			}
			if n&mozForwarded != 0 {
				add(`$Forwarded`)
			}
			expunged = n&mozExpunged != 0
		}
	}
	if v := headerValue(hdr, "x-mozilla-status2"); v != nil {
		if n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 32); err == nil {
			if l := (n & mozLabels) >> 25; l != 0 {
				add("$label" + strconv.Itoa(int(l)))
			}
		}
	}
	if v := headerValue(hdr, "x-mozilla-keys"); v != nil {
		for _, k := range strings.Fields(string(v)) {
			if message.ValidKeyword(k) && !strings.HasPrefix(k, `\`) {
				add(k)
			}
		}
	}
	if v := headerValue(hdr, "status"); v != nil && bytes.ContainsRune(v, 'R') {
		add(`\Seen`)
	}
	if v := headerValue(hdr, "x-status"); v != nil {
		for _, c := range strings.TrimSpace(string(v)) {
			switch c {
			case 'A':
				add(`\Answered`)
			case 'F':
				add(`\Flagged`)
			case 'T':
				add(`\Draft`)
			case 'D':
				add(`\Deleted`)
			}
		}
	}
	return flags, expunged
}

// Gmail labels (Google Takeout's X-Gmail-Labels).
const archiveFolder = "Archive"

// labelFolder maps one Gmail label to a folder and its special use, or
// returns "" for labels that are flags or skipped.
func labelFolder(l string) (name, use string) {
	switch l {
	case "Inbox":
		return "INBOX", ""
	case "Sent":
		return "Sent", `\Sent`
	case "Drafts":
		return "Drafts", `\Drafts`
	case "Spam":
		return "Junk", `\Junk`
	case "Trash":
		return "Trash", `\Trash`
	case "Starred", "Unread", "Opened", "Important", "Archived", "":
		return "", ""
	}
	if strings.HasPrefix(l, "Category ") {
		return "", ""
	}
	return strings.Trim(l, "/"), ""
}

// labelRank orders folders for --gmail-labels first: INBOX, Sent, Drafts,
// then user labels in the header's order, then Junk, then Trash.
func labelRank(name string) int {
	switch name {
	case "INBOX":
		return 0
	case "Sent":
		return 1
	case "Drafts":
		return 2
	case "Junk":
		return 4
	case "Trash":
		return 5
	}
	return 3
}

// splitLabels splits an X-Gmail-Labels value at commas outside quotes and
// decodes RFC 2047 words.
func splitLabels(v []byte) []string {
	var out []string
	var cur strings.Builder
	inQ := false
	flush := func() {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		s = strings.TrimSuffix(strings.TrimPrefix(s, `"`), `"`)
		if s == "" {
			return
		}
		if strings.Contains(s, "=?") {
			if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
				s = d
			}
		}
		out = append(out, s)
	}
	for _, c := range string(v) {
		switch {
		case c == '"':
			inQ = !inQ
			cur.WriteRune(c)
		case c == ',' && !inQ:
			flush()
		default:
			cur.WriteRune(c)
		}
	}
	flush()
	return out
}

// gmail returns the folders (with their special uses) and the flags a
// message's labels give. every=false keeps the first folder by labelRank.
func gmail(v []byte, every bool) (folders, uses, flags []string) {
	seen := true
	for _, l := range splitLabels(v) {
		switch l {
		case "Starred":
			flags = append(flags, `\Flagged`)
		case "Unread":
			seen = false
		case "Drafts":
			flags = append(flags, `\Draft`)
		}
		name, use := labelFolder(l)
		if name != "" && !slices.Contains(folders, name) {
			folders = append(folders, name)
			uses = append(uses, use)
		}
	}
	if seen {
		flags = append(flags, `\Seen`)
	}
	if len(folders) == 0 {
		folders, uses = []string{archiveFolder}, []string{`\Archive`}
	}
	if !every && len(folders) > 1 {
		best := 0
		for i := range folders {
			if labelRank(folders[i]) < labelRank(folders[best]) {
				best = i
			}
		}
		folders, uses = folders[best:best+1], uses[best:best+1]
	}
	return folders, uses, flags
}
