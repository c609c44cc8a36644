package corpus

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// CompareOptions select what Compare checks besides bytes and folders.
type CompareOptions struct {
	// NormalizeCRLF compares bodies with CRLF turned into LF on both sides
	// (an IMAP server delivers CRLF whatever was stored).
	NormalizeCRLF bool
	// Flags compares flags (system flags case-insensitively, \Recent
	// ignored, order ignored).
	Flags bool
	// Dates compares internal dates at second precision.
	Dates bool
}

// Report is the outcome of Compare. A perfect copy has Found == Expected
// and every other count zero.
type Report struct {
	Expected, Found int
	// Missing: wanted messages found nowhere (and not Modified).
	Missing int
	// Duplicates: found messages beyond the number of times they were
	// wanted (in the same folder, or in another one when the wanted copies
	// are all present).
	Duplicates int
	// Modified: a wanted message is missing in its folder but a message of
	// that folder with the same Message-ID and other bytes is there.
	Modified int
	// FlagMismatch, DateMismatch: found messages whose flags or date differ.
	FlagMismatch, DateMismatch int
	// WrongFolder: a wanted message found in another folder instead.
	WrongFolder int
	// Extra: found messages that match nothing wanted (by bytes or
	// Message-ID).
	Extra int
	// Details has one line per problem.
	Details []string
}

// OK reports whether the copy is perfect.
func (r Report) OK() bool {
	return r.Found == r.Expected && r.Missing == 0 && r.Duplicates == 0 && r.Modified == 0 &&
		r.FlagMismatch == 0 && r.DateMismatch == 0 && r.WrongFolder == 0 && r.Extra == 0
}

func (r Report) String() string {
	s := fmt.Sprintf("expected %d found %d missing %d duplicates %d modified %d flag-mismatch %d date-mismatch %d wrong-folder %d extra %d",
		r.Expected, r.Found, r.Missing, r.Duplicates, r.Modified, r.FlagMismatch, r.DateMismatch, r.WrongFolder, r.Extra)
	d := r.Details
	if len(d) > 20 {
		d = append(slices.Clone(d[:20]), fmt.Sprintf("... and %d more", len(r.Details)-20))
	}
	if len(d) > 0 {
		s += "\n" + strings.Join(d, "\n")
	}
	return s
}

// CanonicalFlags sorts flags, canonicalises the case of system flags and
// drops \Recent and duplicates.
func CanonicalFlags(flags []string) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			l := strings.ToLower(f)
			if l == `\recent` {
				continue
			}
			for _, s := range []string{`\Seen`, `\Answered`, `\Flagged`, `\Draft`, `\Deleted`} {
				if strings.ToLower(s) == l {
					f = s
				}
			}
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

type item struct {
	m     *Message
	key   string
	flags string
}

func describe(m *Message) string {
	id := m.MessageID
	if id == "" {
		id = "(no Message-ID)"
	}
	subj := ""
	for _, ln := range strings.SplitN(string(m.Body), "\n", 40) {
		if len(ln) > 8 && strings.EqualFold(ln[:8], "subject:") {
			subj = strings.TrimSpace(ln[8:])
			break
		}
	}
	return fmt.Sprintf("%q %s %d bytes %q", m.Folder, id, len(m.Body), subj)
}

// Compare matches got against want as multisets: a message of want must be
// in got in the same folder, with the same bytes (after CRLF normalisation
// when opt.NormalizeCRLF), exactly as many times as it is in want. Flags and
// dates are compared when asked; among equal copies in one folder they are
// paired in a canonical order so that only real differences count.
func Compare(want, got []Message, opt CompareOptions) Report {
	rep := Report{Expected: len(want), Found: len(got)}
	key := func(m *Message) string {
		b := m.Body
		if opt.NormalizeCRLF {
			b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
		}
		return m.Folder + "\x00" + Fingerprint(b)
	}
	mk := func(ms []Message) map[string][]item {
		out := map[string][]item{}
		for i := range ms {
			m := &ms[i]
			k := key(m)
			out[k] = append(out[k], item{m: m, key: k, flags: strings.Join(CanonicalFlags(m.Flags), " ")})
		}
		return out
	}
	w, g := mk(want), mk(got)
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var missW, extraG []item
	for _, k := range keys {
		ws, gs := w[k], g[k]
		order := func(a, b item) int {
			if c := strings.Compare(a.flags, b.flags); c != 0 {
				return c
			}
			return a.m.Date.Compare(b.m.Date)
		}
		slices.SortStableFunc(ws, order)
		slices.SortStableFunc(gs, order)
		n := min(len(ws), len(gs))
		for i := 0; i < n; i++ {
			wm, gm := ws[i].m, gs[i].m
			if opt.Flags && ws[i].flags != gs[i].flags {
				rep.FlagMismatch++
				rep.Details = append(rep.Details, fmt.Sprintf("flags: %s: want [%s], got [%s]", describe(wm), ws[i].flags, gs[i].flags))
			}
			if opt.Dates && wm.Date.Unix() != gm.Date.Unix() {
				rep.DateMismatch++
				rep.Details = append(rep.Details, fmt.Sprintf("date: %s: want %s, got %s", describe(wm), wm.Date.UTC().Format("2006-01-02 15:04:05Z"), gm.Date.UTC().Format("2006-01-02 15:04:05Z")))
			}
		}
		missW = append(missW, ws[n:]...)
		if len(gs) > n {
			extraG = append(extraG, gs[n:]...)
		}
	}
	gkeys := make([]string, 0, len(g))
	for k := range g {
		if _, ok := w[k]; !ok {
			gkeys = append(gkeys, k)
		}
	}
	sort.Strings(gkeys)
	for _, k := range gkeys {
		extraG = append(extraG, g[k]...)
	}
	// Pair what is missing with what is extra: same bytes in another folder
	// (wrong folder), then same Message-ID in the same folder (modified).
	fp := func(it item) string { _, f, _ := strings.Cut(it.key, "\x00"); return f }
	used := make([]bool, len(extraG))
	var stillMissing []item
	for _, mw := range missW {
		found := false
		for j, eg := range extraG {
			if !used[j] && fp(eg) == fp(mw) {
				used[j], found = true, true
				rep.WrongFolder++
				rep.Details = append(rep.Details, fmt.Sprintf("wrong folder: %s found in %q", describe(mw.m), eg.m.Folder))
				break
			}
		}
		if !found {
			stillMissing = append(stillMissing, mw)
		}
	}
	for _, mw := range stillMissing {
		found := false
		if mw.m.MessageID != "" {
			for j, eg := range extraG {
				if !used[j] && eg.m.Folder == mw.m.Folder && MessageIDOf(eg.m.Body) == mw.m.MessageID {
					used[j], found = true, true
					rep.Modified++
					rep.Details = append(rep.Details, fmt.Sprintf("modified: %s came as %d bytes", describe(mw.m), len(eg.m.Body)))
					break
				}
			}
		}
		if !found {
			rep.Missing++
			rep.Details = append(rep.Details, "missing: "+describe(mw.m))
		}
	}
	wantFP := map[string]bool{}
	for k := range w {
		_, f, _ := strings.Cut(k, "\x00")
		wantFP[f] = true
	}
	for j, eg := range extraG {
		if used[j] {
			continue
		}
		if wantFP[fp(eg)] {
			rep.Duplicates++
			rep.Details = append(rep.Details, "duplicate: "+describe(eg.m))
		} else {
			rep.Extra++
			rep.Details = append(rep.Details, "extra: "+describe(eg.m))
		}
	}
	return rep
}
