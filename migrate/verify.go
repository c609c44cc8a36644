package migrate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mailferry/mailferry/internal/message"
	"github.com/mailferry/mailferry/source"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	Folders FolderRules
	// Deep compares the SHA-256 of every body; otherwise messages are
	// matched by Message-ID and size.
	Deep bool
	// CRLF: the target stores CRLF only (IMAP), so bare LF in source bytes
	// is counted as CRLF when comparing.
	CRLF bool
	// IgnoreFlags skips the flag comparison; IgnoreKeywords compares the
	// system flags only (for a target that refuses keywords).
	IgnoreFlags    bool
	IgnoreKeywords bool
	// IgnoreDates skips the internal date comparison.
	IgnoreDates bool
	Logger      *slog.Logger
	Stats       *Stats
}

// Problem kinds.
const (
	ProblemMissing    = "missing"    // a source message with no copy in the target
	ProblemExtra      = "extra"      // a target message with no source message
	ProblemDuplicated = "duplicated" // more copies in the target than in the source
	ProblemFlags      = "flags"      // a copy whose flags differ from the source's
	ProblemDate       = "date"       // a copy whose internal date differs by more than DateTolerance
)

// DateTolerance is how far a copy's internal date may be from the source's:
// IMAP dates have whole seconds, Maildir mtimes nanoseconds.
const DateTolerance = time.Second

// Problem is one thing wrong with one message (or, for duplicated, one group
// of indistinguishable source messages and all their copies).
type Problem struct {
	Kind         string `json:"kind"`
	Folder       string `json:"folder"`        // source folder
	TargetFolder string `json:"target_folder"` // its target folder
	// SourceID is the source's key of the message (IMAP UID, POP3 UIDL,
	// Maildir file key); TargetID the copy's (IMAP UID, Maildir file key).
	SourceID  string `json:"source_id,omitempty"`
	TargetID  string `json:"target_id,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	Size      int64  `json:"size"`
	// Only for duplicated, flags and date problems (kept out of the others
	// to keep a long list of missing messages small).
	*ProblemDetail
}

// ProblemDetail is what a duplicated, flags or date problem adds.
type ProblemDetail struct {
	// duplicated: every source message of the group (when more than one:
	// twins that match the same copies) and every copy in the target.
	SourceIDs []string `json:"source_ids,omitempty"`
	TargetIDs []string `json:"target_ids,omitempty"`
	Copies    int      `json:"copies,omitempty"`
	// flags: the flags compared (those the target can hold).
	SourceFlags []string `json:"source_flags,omitzero"`
	TargetFlags []string `json:"target_flags,omitzero"`
	// date: the source's internal date (for POP3, derived from the headers
	// as migrate derives it) and the copy's.
	SourceDate time.Time `json:"source_date,omitzero"`
	TargetDate time.Time `json:"target_date,omitzero"`
}

// FolderCheck is the comparison of one source folder with its target folder.
type FolderCheck struct {
	Source         string    `json:"source"`
	Target         string    `json:"target"`
	SourceCount    int       `json:"source_count"`
	TargetCount    int       `json:"target_count"`
	Missing        int       `json:"missing"`
	Extra          int       `json:"extra"`
	Duplicated     int       `json:"duplicated"` // copies beyond the source's count
	FlagMismatches int       `json:"flag_mismatches"`
	DateMismatches int       `json:"date_mismatches"`
	Problems       []Problem `json:"problems,omitempty"`
}

// VerifyReport is the result of Verify.
type VerifyReport struct {
	Folders        []FolderCheck `json:"folders"`
	Missing        int           `json:"missing"`
	Extra          int           `json:"extra"`
	Duplicated     int           `json:"duplicated"`
	FlagMismatches int           `json:"flag_mismatches"`
	DateMismatches int           `json:"date_mismatches"`
	// FlagsChecked is false with IgnoreFlags, or when the source has no
	// flags (POP3).
	FlagsChecked    bool `json:"flags_checked"`
	KeywordsChecked bool `json:"keywords_checked"`
	DatesChecked    bool `json:"dates_checked"`
}

// OK reports whether every source message is in the target exactly once,
// with its flags and internal date (as far as they were checked). Extra
// target messages do not count against it.
func (r *VerifyReport) OK() bool {
	return r.Missing == 0 && r.Duplicated == 0 && r.FlagMismatches == 0 && r.DateMismatches == 0
}

// Verify compares the source with the target, folder by folder, by
// fingerprint. The target is read through a source.Source of its own
// (tgt opens the target endpoint for reading): what the target holds is the
// truth, whatever a journal says.
func Verify(ctx context.Context, src, tgt source.Opener, o VerifyOptions) (*VerifyReport, error) {
	if o.Stats == nil {
		o.Stats = new(Stats)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := src(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to the source: %w", err)
	}
	defer s.Close()
	t, err := tgt(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to the target: %w", err)
	}
	defer t.Close()
	sf, err := s.Folders(ctx)
	if err != nil {
		return nil, fmt.Errorf("list source folders: %w", err)
	}
	tf, err := t.Folders(ctx)
	if err != nil {
		return nil, fmt.Errorf("list target folders: %w", err)
	}
	tByName := map[string]int{}
	for i, f := range tf {
		tByName[f.Name] = i
	}
	rep := &VerifyReport{FlagsChecked: !o.IgnoreFlags, KeywordsChecked: !o.IgnoreFlags && !o.IgnoreKeywords, DatesChecked: !o.IgnoreDates}
	srcFlags, srcCount := false, 0
	for _, p := range planFolders(o.Folders, sf, tf) {
		if p.skip != "" {
			continue
		}
		o.Stats.setFolder(p.src.Name)
		want, err := readForVerify(ctx, s, p.src, o.CRLF, o)
		if err != nil {
			return nil, fmt.Errorf("read source folder %q: %w", p.src.Name, err)
		}
		var got []vmsg
		if i, ok := tByName[p.target]; ok {
			got, err = readForVerify(ctx, t, tf[i], false, o)
			if err != nil {
				return nil, fmt.Errorf("read target folder %q: %w", p.target, err)
			}
		}
		for i := range want {
			srcFlags = srcFlags || want[i].meta
		}
		srcCount += len(want)
		fc := compareFolder(p.src.Name, p.target, want, got, o)
		rep.Missing += fc.Missing
		rep.Extra += fc.Extra
		rep.Duplicated += fc.Duplicated
		rep.FlagMismatches += fc.FlagMismatches
		rep.DateMismatches += fc.DateMismatches
		rep.Folders = append(rep.Folders, fc)
	}
	if srcCount > 0 && !srcFlags {
		// POP3: no flags to compare, so none were.
		rep.FlagsChecked, rep.KeywordsChecked = false, false
	}
	return rep, nil
}

// vmsg is what Verify keeps of one message: no body.
type vmsg struct {
	id    string
	msgID string
	size  int64
	sum   [32]byte
	flags []string  // shared between messages with the same flags
	date  time.Time // zero: unknown
	// meta: flags and date are the side's own. A source without them
	// (POP3: Meta.Received is zero) has date derived from the headers.
	meta bool
}

// readForVerify reads every message of f once, keeping its fingerprint,
// flags and date. Bodies go through a spool and are dropped.
func readForVerify(ctx context.Context, s source.Source, f source.Folder, crlf bool, o VerifyOptions) ([]vmsg, error) {
	metas, err := s.List(ctx, f)
	var vc *source.ValidityChangedError
	if errors.As(err, &vc) {
		f.Validity = vc.New
		metas, err = s.List(ctx, f)
	}
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(metas))
	for i, m := range metas {
		ids[i] = m.ID
	}
	out := make([]vmsg, 0, len(metas))
	interned := map[string][]string{}
	sp := spool{threshold: defaultSpoolThreshold}
	defer sp.close()
	next := 0             // Fetch delivers in the order of ids, mostly
	var at map[string]int // ID -> index in metas, when not
	err = s.Fetch(ctx, f, ids, func(m source.Meta, r io.Reader) error {
		if err := sp.fill(r, crlf, false); err != nil {
			return err
		}
		// Usually the one after the last; else (a message fetched again
		// alone comes late) look it up.
		k := -1
		for _, c := range []int{next, next + 1} {
			if c < len(metas) && metas[c].ID == m.ID {
				k = c
				break
			}
		}
		if k < 0 {
			if at == nil {
				at = make(map[string]int, len(metas))
				for i, x := range metas {
					at[x.ID] = i
				}
			}
			if i, ok := at[m.ID]; ok {
				k = i
			}
		}
		if k >= 0 {
			next = k
			// As the engine does: what List said stands in for what Fetch left out.
			if m.Flags == nil {
				m.Flags = metas[k].Flags
			}
			if m.Received.IsZero() {
				m.Received = metas[k].Received
			}
		}
		v := vmsg{id: m.ID, msgID: strings.TrimSpace(sp.scan.MessageID()), size: sp.size, sum: sp.sum, meta: !m.Received.IsZero(), date: m.Received}
		if !v.meta {
			// The date migrate stored: the newest Received:, else Date:
			// (else "now", which cannot be checked: left zero).
			v.date = sp.scan.InternalDate(time.Time{})
		}
		if len(m.Flags) > 0 {
			k := strings.Join(m.Flags, "\x00")
			if _, ok := interned[k]; !ok {
				interned[k] = slices.Clip(slices.Clone(m.Flags))
			}
			v.flags = interned[k]
		}
		out = append(out, v)
		o.Stats.DoneMsgs.Add(1)
		o.Stats.DoneBytes.Add(sp.size)
		return nil
	})
	var ve *source.VanishedError
	if errors.As(err, &ve) {
		// Gone while we read (a mail client at work): not there to compare.
		o.Logger.Warn("verify: messages vanished while reading; not compared", "folder", f.Name, "ids", ve.IDs)
		err = nil
	}
	return out, err
}

type verifyKey struct {
	msgID string
	size  int64
	sum   [32]byte // with --deep, or when there is no Message-ID
}

func (o *VerifyOptions) key(v *vmsg) verifyKey {
	k := verifyKey{msgID: v.msgID, size: v.size}
	if o.Deep || v.msgID == "" {
		k.sum = v.sum
	}
	return k
}

// compareFolder matches the source messages of a folder with the target's
// and lists what is wrong. Messages with the same fingerprint (twins, or
// different messages sharing a Message-ID and size) form a group; a group
// is right when the target has as many as the source, and within it each
// source message is paired with the copy most like it (same bytes, then
// same flags and date) before flags and dates are compared.
func compareFolder(srcName, tgtName string, want, got []vmsg, o VerifyOptions) FolderCheck {
	fc := FolderCheck{Source: srcName, Target: tgtName, SourceCount: len(want), TargetCount: len(got)}
	type group struct{ src, tgt []int }
	groups := map[verifyKey]*group{}
	var order []verifyKey // first appearance: source order, then target order
	for i := range want {
		k := o.key(&want[i])
		g := groups[k]
		if g == nil {
			g = new(group)
			groups[k] = g
			order = append(order, k)
		}
		g.src = append(g.src, i)
	}
	for i := range got {
		k := o.key(&got[i])
		g := groups[k]
		if g == nil {
			g = new(group)
			groups[k] = g
			order = append(order, k)
		}
		g.tgt = append(g.tgt, i)
	}
	base := func(kind string, v *vmsg) Problem {
		return Problem{Kind: kind, Folder: srcName, TargetFolder: tgtName, MessageID: v.msgID, Size: v.size}
	}
	var missing, extra, dup, mismatch []Problem
	for _, k := range order {
		g := groups[k]
		if len(g.src) == 0 {
			for _, j := range g.tgt {
				p := base(ProblemExtra, &got[j])
				p.TargetID = got[j].id
				extra = append(extra, p)
			}
			fc.Extra += len(g.tgt)
			continue
		}
		pairs, restS, restT := verifyPair(want, got, g.src, g.tgt, o)
		for _, pr := range pairs {
			s, t := &want[pr[0]], &got[pr[1]]
			if !o.IgnoreFlags && s.meta && t.meta {
				sf, tf := holdableFlags(s.flags, o.IgnoreKeywords), holdableFlags(t.flags, o.IgnoreKeywords)
				if !sameFlagSet(sf, tf) {
					p := base(ProblemFlags, s)
					p.SourceID, p.TargetID = s.id, t.id
					p.ProblemDetail = &ProblemDetail{SourceFlags: sf, TargetFlags: tf}
					mismatch = append(mismatch, p)
					fc.FlagMismatches++
				}
			}
			if !o.IgnoreDates && !dateClose(s, t) {
				p := base(ProblemDate, s)
				p.SourceID, p.TargetID = s.id, t.id
				p.ProblemDetail = &ProblemDetail{SourceDate: s.date, TargetDate: t.date}
				mismatch = append(mismatch, p)
				fc.DateMismatches++
			}
		}
		for _, i := range restS {
			p := base(ProblemMissing, &want[i])
			p.SourceID = want[i].id
			missing = append(missing, p)
		}
		fc.Missing += len(restS)
		if len(restT) > 0 {
			p := base(ProblemDuplicated, &want[g.src[0]])
			p.SourceID = want[g.src[0]].id
			d := &ProblemDetail{Copies: len(g.tgt)}
			if len(g.src) > 1 {
				for _, i := range g.src {
					d.SourceIDs = append(d.SourceIDs, want[i].id)
				}
			}
			for _, j := range g.tgt {
				d.TargetIDs = append(d.TargetIDs, got[j].id)
			}
			p.ProblemDetail = d
			dup = append(dup, p)
			fc.Duplicated += len(restT)
		}
	}
	fc.Problems = slices.Concat(missing, dup, mismatch, extra)
	return fc
}

// verifyPair pairs the source messages src (indices into want) with the target
// messages tgt (into got) of one fingerprint group: first copies with the
// same bytes, flags and date, then the same bytes, then the same flags and
// date, then in order. What is left over is missing (restS) or a surplus
// copy (restT).
func verifyPair(want, got []vmsg, src, tgt []int, o VerifyOptions) (pairs [][2]int, restS, restT []int) {
	if len(src) == 1 && len(tgt) == 1 {
		return [][2]int{{src[0], tgt[0]}}, nil, nil
	}
	restS, restT = src, tgt
	meta := func(v *vmsg) string {
		var b strings.Builder
		if !o.IgnoreFlags && want[src[0]].meta {
			for _, f := range holdableFlags(v.flags, o.IgnoreKeywords) {
				b.WriteString(strings.ToLower(f))
				b.WriteByte(0)
			}
		}
		if !v.date.IsZero() {
			fmt.Fprint(&b, v.date.Unix())
		}
		return b.String()
	}
	stages := []func(v *vmsg) string{
		func(v *vmsg) string { return string(v.sum[:]) + meta(v) },
		func(v *vmsg) string { return string(v.sum[:]) },
		meta,
	}
	for _, key := range stages {
		if len(restS) == 0 || len(restT) == 0 {
			break
		}
		byKey := map[string][]int{}
		for _, j := range restT {
			k := key(&got[j])
			byKey[k] = append(byKey[k], j)
		}
		used := map[int]bool{}
		var nextS []int
		for _, i := range restS {
			k := key(&want[i])
			if q := byKey[k]; len(q) > 0 {
				pairs = append(pairs, [2]int{i, q[0]})
				used[q[0]] = true
				byKey[k] = q[1:]
			} else {
				nextS = append(nextS, i)
			}
		}
		var nextT []int
		for _, j := range restT {
			if !used[j] {
				nextT = append(nextT, j)
			}
		}
		restS, restT = nextS, nextT
	}
	n := min(len(restS), len(restT))
	for k := range n {
		pairs = append(pairs, [2]int{restS[k], restT[k]})
	}
	return pairs, restS[n:], restT[n:]
}

var verifySystemFlags = map[string]string{
	`\seen`: `\Seen`, `\answered`: `\Answered`, `\flagged`: `\Flagged`, `\draft`: `\Draft`, `\deleted`: `\Deleted`,
}

// holdableFlags returns the flags an IMAP or Maildir target can store, sorted:
// the five system flags and (unless systemOnly) keywords that are IMAP
// atoms; \Recent and other system flags no target can set are left out.
// Never nil, so that a report shows an empty set as [].
func holdableFlags(flags []string, systemOnly bool) []string {
	out := []string{}
	for _, f := range flags {
		if n, ok := verifySystemFlags[strings.ToLower(f)]; ok {
			out = append(out, n)
			continue
		}
		if systemOnly || strings.HasPrefix(f, `\`) || !message.ValidKeyword(f) {
			continue
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return slices.CompactFunc(out, strings.EqualFold)
}

// sameFlagSet compares two holdableFlags lists; IMAP flags are case-insensitive
// (imapmemserver lower-cases keywords, Dovecot keeps their case).
func sameFlagSet(a, b []string) bool {
	return slices.EqualFunc(a, b, strings.EqualFold)
}

// dateClose reports whether the copy's date is the source's, or cannot be
// checked (a POP3 message with neither Received: nor Date:).
func dateClose(s, t *vmsg) bool {
	if s.date.IsZero() || t.date.IsZero() {
		return true
	}
	d := s.date.Sub(t.date)
	return d <= DateTolerance && d >= -DateTolerance
}

// WriteJSON writes the report as indented JSON, each problem on one line
// (grep-friendly), encoding one problem at a time: a report of 200,000
// missing messages needs no second copy of itself in memory.
func (r *VerifyReport) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriter(w)
	top := *r
	top.Folders = nil
	head, err := marshalJSON(top, "", "  ")
	if err != nil {
		return err
	}
	// head is {"folders": null, ...}: the folders go where the null is.
	before, after, ok := bytes.Cut(head, []byte(`"folders": null`))
	if !ok {
		return errors.New("verify report: unexpected layout")
	}
	bw.Write(before)
	bw.WriteString(`"folders": [`)
	for i := range r.Folders {
		f := r.Folders[i]
		probs := f.Problems
		f.Problems = nil
		fb, err := marshalJSON(f, "    ", "  ")
		if err != nil {
			return err
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		if len(probs) == 0 {
			bw.Write(fb)
			continue
		}
		bw.Write(bytes.TrimSuffix(fb, []byte("\n    }")))
		bw.WriteString(",\n      \"problems\": [")
		for j := range probs {
			pb, err := marshalJSON(&probs[j], "", "")
			if err != nil {
				return err
			}
			if j > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString("\n        ")
			bw.Write(pb)
		}
		bw.WriteString("\n      ]\n    }")
	}
	if len(r.Folders) > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteByte(']')
	bw.Write(after)
	bw.WriteByte('\n')
	return bw.Flush()
}

// marshalJSON is json.MarshalIndent without HTML escapes: Message-IDs read
// as <id@host>, not \u003cid@host\u003e.
func marshalJSON(v any, prefix, indent string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent(prefix, indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
