package mbox

import (
	"fmt"
	"strings"
	"time"

	"github.com/mailferry/mailferry/internal/message"
)

// Format is an mbox variant: how the end of a message is found and how
// "From " lines inside a message are quoted.
type Format int

const (
	// Auto detects the variant from the file's first messages (see the
	// package doc).
	Auto Format = iota
	// MboxO quotes "From " at a line start as ">From "; reading turns
	// every ">From " at a line start back into "From " (so an original
	// ">From " line cannot be told apart: mboxo is lossy by definition).
	MboxO
	// MboxRD quotes every line matching ^>*From by one more ">"; reading
	// removes one ">" from every line matching ^>+From .
	MboxRD
	// MboxCL is mboxo quoting plus a Content-Length header giving the
	// length of the body as stored (quoted).
	MboxCL
	// MboxCL2 has a Content-Length header and no quoting at all.
	MboxCL2
)

var formatNames = []string{"auto", "mboxo", "mboxrd", "mboxcl", "mboxcl2"}

func (f Format) String() string {
	if f >= 0 && int(f) < len(formatNames) {
		return formatNames[f]
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat parses "auto", "mboxo", "mboxrd", "mboxcl" or "mboxcl2".
func ParseFormat(s string) (Format, error) {
	for i, n := range formatNames {
		if strings.EqualFold(s, n) {
			return Format(i), nil
		}
	}
	return Auto, fmt.Errorf("unknown mbox format %q (want %s)", s, strings.Join(formatNames, ", "))
}

func (f Format) usesLength() bool { return f == MboxCL || f == MboxCL2 }

// unquoted returns how many leading octets of a line (at a line start) the
// format's quoting added: 1 for a quoted "From " line, else 0.
func (f Format) unquoted(line []byte) int {
	switch f {
	case MboxO, MboxCL:
		if len(line) >= 6 && string(line[:6]) == ">From " {
			return 1
		}
	case MboxRD:
		i := 0
		for i < len(line) && line[i] == '>' {
			i++
		}
		if i > 0 && len(line)-i >= 5 && string(line[i:i+5]) == "From " {
			return 1
		}
	}
	return 0
}

// parseFromLine reports whether line (with or without its line end) is an
// mbox separator: "From ", a sender (any token, "-" for Thunderbird), and
// an asctime-like date, as in "From MAILER-DAEMON Mon Jan  1 00:00:00 2024",
// "From - Mon Jan 01 00:00:00 2024" or Google Takeout's
// "From 1789...@xxx Wed Mar 04 12:34:56 +0000 2020". A line that starts
// with "From " but carries no such date is text, not a separator; this is
// what keeps an unquoted "From here on..." in a body from cutting a message
// in two. The date is returned when it parses (a date without a zone is
// UTC).
func parseFromLine(line []byte) (time.Time, bool) {
	if len(line) < 5 || string(line[:5]) != "From " || len(line) > 1000 {
		return time.Time{}, false
	}
	f := strings.Fields(string(line[5:]))
	// The sender may be missing ("From  Mon Jan ...") or quoted with spaces.
	starts := []int{1, 0}
	if len(f) > 0 && strings.HasPrefix(f[0], `"`) {
		for i := range f {
			if i > 0 && strings.HasSuffix(f[i], `"`) {
				starts = append([]int{i + 1}, starts...)
				break
			}
		}
	}
	for _, i := range starts {
		if i < len(f) {
			if t, ok := asctime(f[i:]); ok {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// asctime parses [weekday] month day hh:mm[:ss] and a year, with an optional
// zone before or after the year and anything after that ("remote from x").
func asctime(f []string) (time.Time, bool) {
	if len(f) > 0 && len(f[0]) >= 3 && isWeekday(f[0]) {
		f = f[1:]
	}
	if len(f) < 4 {
		return time.Time{}, false
	}
	var zone, year string
	switch {
	case isYear(f[3]):
		year = f[3]
		if len(f) > 4 && isZone(f[4]) {
			zone = f[4]
		}
	case len(f) > 4 && isZone(f[3]) && isYear(f[4]):
		zone, year = f[3], f[4]
	default:
		return time.Time{}, false
	}
	s := f[1] + " " + f[0] + " " + year + " " + f[2]
	if zone != "" {
		s += " " + zone
	} else {
		s += " +0000"
	}
	return message.ParseDate(s)
}

func isWeekday(s string) bool {
	switch strings.ToLower(s[:3]) {
	case "mon", "tue", "wed", "thu", "fri", "sat", "sun":
		return true
	}
	return false
}

func isYear(s string) bool {
	if len(s) != 4 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isZone(s string) bool {
	if len(s) == 5 && (s[0] == '+' || s[0] == '-') {
		return isYear(s[1:])
	}
	if len(s) < 1 || len(s) > 5 {
		return false
	}
	for _, c := range s {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func unixASC(unix int64) string {
	return time.Unix(unix, 0).UTC().Format("Mon Jan _2 15:04:05 2006")
}
