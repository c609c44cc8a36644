package message

import (
	"strings"
	"time"
)

// ParseDate parses an RFC 5322 date-time as found in real mail, tolerating
// what RFC 822-era and broken mailers write: a missing or comma-less day of
// week, 2- and 3-digit years (RFC 5322 §4.3: 00-49 are 20xx, 50-999 add
// 1900), missing seconds, any amount of white space, comments such as
// "(PST)" anywhere, obsolete zone names (UT, GMT, EST ... PDT; military
// letters count as UTC, as RFC 5322 advises), "+01:00" zones, a missing
// zone (UTC), full month names, "25-Nov-2026" and the asctime order
// "Tue Nov 25 21:28:12 2026". Leap second 60 becomes 59. Years must end up
// between 1000 and 9999.
func ParseDate(s string) (time.Time, bool) {
	f := strings.FieldsFunc(stripComments(s), func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == ','
	})
	// "25-Nov-2026" → three fields.
	if len(f) > 0 {
		i := 0
		if _, ok := weekday(f[0]); ok {
			i = 1
		}
		if i < len(f) && strings.Count(f[i], "-") == 2 && !strings.ContainsAny(f[i], ":") {
			p := strings.Split(f[i], "-")
			f = append(append(append([]string{}, f[:i]...), p...), f[i+1:]...)
		}
	}
	if len(f) > 0 {
		if _, ok := weekday(f[0]); ok {
			f = f[1:]
		}
	}
	if len(f) < 4 {
		return time.Time{}, false
	}
	var dayS, monS, yearS, timeS string
	var zone []string
	if _, ok := month(f[0]); ok {
		// asctime: Nov 25 21:28:12 2026 [zone]; or Nov 25 2026 21:28:12
		monS, dayS = f[0], f[1]
		if strings.Contains(f[2], ":") {
			timeS, yearS = f[2], f[3]
		} else {
			yearS, timeS = f[2], f[3]
		}
		zone = f[4:]
	} else {
		dayS, monS, yearS, timeS = f[0], f[1], f[2], f[3]
		zone = f[4:]
	}
	day, ok := number(dayS, 1, 2)
	if !ok {
		return time.Time{}, false
	}
	mon, ok := month(monS)
	if !ok {
		return time.Time{}, false
	}
	year, ok := number(yearS, 2, 4)
	if !ok {
		return time.Time{}, false
	}
	switch {
	case len(yearS) == 2 && year < 50:
		year += 2000
	case len(yearS) <= 3:
		year += 1900
	}
	if year < 1000 {
		return time.Time{}, false
	}
	hh, mm, ss, ok := clock(timeS)
	if !ok {
		return time.Time{}, false
	}
	loc := time.UTC
	if len(zone) > 0 {
		if loc, ok = location(zone[0]); !ok {
			return time.Time{}, false
		}
	}
	t := time.Date(year, mon, day, hh, mm, ss, 0, loc)
	if t.Day() != day || t.Month() != mon {
		return time.Time{}, false // 31 Feb
	}
	return t, true
}

// stripComments removes RFC 5322 comments (nested, with quoted-pairs); an
// unclosed comment runs to the end.
func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
			b.WriteByte(' ')
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func number(s string, minDigits, maxDigits int) (int, bool) {
	if len(s) < minDigits || len(s) > maxDigits {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

var weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func weekday(s string) (int, bool) {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if len(s) < 3 {
		return 0, false
	}
	full := []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}
	for i, w := range weekdays {
		if s == w || s == full[i] {
			return i, true
		}
	}
	return 0, false
}

var months = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

func month(s string) (time.Month, bool) {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if len(s) < 3 {
		return 0, false
	}
	full := []string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}
	for i, m := range months {
		if s == m || s == full[i] || (i == 8 && s == "sept") {
			return time.Month(i + 1), true
		}
	}
	return 0, false
}

// clock parses hh:mm or hh:mm:ss (one-digit hours tolerated).
func clock(s string) (hh, mm, ss int, ok bool) {
	p := strings.Split(s, ":")
	if len(p) != 2 && len(p) != 3 {
		return 0, 0, 0, false
	}
	if hh, ok = number(p[0], 1, 2); !ok || hh > 23 {
		return 0, 0, 0, false
	}
	if mm, ok = number(p[1], 2, 2); !ok || mm > 59 {
		return 0, 0, 0, false
	}
	if len(p) == 3 {
		if ss, ok = number(p[2], 2, 2); !ok || ss > 60 {
			return 0, 0, 0, false
		}
		if ss == 60 {
			ss = 59
		}
	}
	return hh, mm, ss, true
}

var zoneOffsets = map[string]int{
	"UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
	"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
}

func location(z string) (*time.Location, bool) {
	if z[0] == '+' || z[0] == '-' {
		d := strings.Replace(z[1:], ":", "", 1)
		v, ok := number(d, 4, 4)
		if !ok || v%100 > 59 {
			return nil, false
		}
		off := (v/100*60 + v%100) * 60
		if z[0] == '-' {
			off = -off
		}
		if off == 0 {
			return time.UTC, true
		}
		return time.FixedZone("", off), true
	}
	u := strings.ToUpper(z)
	if h, ok := zoneOffsets[u]; ok {
		if h == 0 {
			return time.UTC, true
		}
		return time.FixedZone(u, h*3600), true
	}
	if len(u) == 1 && u[0] >= 'A' && u[0] <= 'Z' && u[0] != 'J' {
		return time.UTC, true // military zone: RFC 5322 §4.3 says treat as -0000
	}
	// An unknown zone name (CET, MET DST, ...) carries no reliable offset.
	for i := 0; i < len(u); i++ {
		if u[i] < 'A' || u[i] > 'Z' {
			return nil, false
		}
	}
	return time.UTC, true
}
