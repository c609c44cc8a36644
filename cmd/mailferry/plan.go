package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mailferry/mailferry/checkpoint"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/target"
	imaptgt "github.com/mailferry/mailferry/target/imap"
)

const usagePlan = `Usage: mailferry plan SOURCE TARGET [flags]

Connects to both sides and shows what "mailferry migrate" with the same
arguments would do, without copying anything: per folder the source and
target names, messages, bytes, what the journal already holds and what is
left to copy; the total; an estimate of the time with a range, from a
timed sample of the source (and, for a Maildir target, of storing into a
scratch Maildir beside it, removed after; with --probe-target, of storing
into scratch folders of an IMAP target, deleted after), never below what
--max-rate and --max-bandwidth allow;
the target's quota (RFC 9208 GETQUOTAROOT INBOX) with a warning when the
messages to copy do not fit; a warning with the count and size of the
messages larger than the target's APPENDLIMIT (RFC 7889), which migrate
reports as failed without sending them; and the capabilities that matter.
Takes migrate's flags (those that would change or delete mail are
accepted and ignored); creates neither the target nor a state directory.

Examples:
  mailferry plan pop3s://bob@pop.old.example imaps://bob@imap.new.example
  mailferry plan --include '^(INBOX|Sent)$' --report plan.json imaps://bob@imap.old.example imaps://bob@imap.new.example
`

// planInfo is what plan adds to a dry-run summary.
type planInfo struct {
	Workers int `json:"workers"`
	// The sample fetched from the source to measure the rate.
	SampleMessages int           `json:"sample_messages"`
	SampleBytes    int64         `json:"sample_bytes"`
	SampleTime     time.Duration `json:"sample_ns"`
	SampleSessions int           `json:"sample_sessions,omitempty"`
	SampleFolders  int           `json:"sample_folders,omitempty"`
	RateMeasured   bool          `json:"rate_measured"`
	BytesPerSec    float64       `json:"bytes_per_second"` // per connection
	MsgsPerSec     float64       `json:"messages_per_second"`
	ToCopy         int           `json:"to_copy"`
	ToCopyBytes    int64         `json:"to_copy_bytes"`
	Estimate       time.Duration `json:"estimate_ns"`
	// The range the time is likely in, and the limit that sets it, if one
	// does (--max-rate, --max-bandwidth; LimitFloor: the time it alone takes).
	EstimateLow  time.Duration `json:"estimate_low_ns"`
	EstimateHigh time.Duration `json:"estimate_high_ns"`
	LimitedBy    string        `json:"limited_by,omitempty"`
	LimitFloor   time.Duration `json:"limit_floor_ns,omitempty"`
	Listing      time.Duration `json:"listing_ns"`
	// Storing measured in a scratch Maildir beside a Maildir target, or
	// (--probe-target) into scratch folders of an IMAP target: all the
	// sessions together, and one alone first (IMAP).
	StoreSampleMessages int           `json:"store_sample_messages,omitempty"`
	StoreSampleTime     time.Duration `json:"store_sample_ns,omitempty"`
	StoreSampleSessions int           `json:"store_sample_sessions,omitempty"`
	StoreOneMessages    int           `json:"store_one_messages,omitempty"`
	StoreOneTime        time.Duration `json:"store_one_ns,omitempty"`
	StoreProbeError     string        `json:"store_probe_error,omitempty"`
	MaxRate             float64       `json:"max_rate,omitempty"`
	MaxBandwidth        int64         `json:"max_bandwidth,omitempty"`
	// Quota of the target INBOX, in bytes.
	QuotaKnown bool   `json:"quota_known"`
	QuotaUsed  int64  `json:"quota_used,omitempty"`
	QuotaLimit int64  `json:"quota_limit,omitempty"`
	QuotaError string `json:"quota_error,omitempty"`
	OverQuota  bool   `json:"over_quota"`
	// AppendLimit is the target's APPENDLIMIT in bytes (the smallest of
	// the folders', where they differ; 0: none); OverAppendLimit counts the
	// source messages larger than their folder's.
	AppendLimit          int64    `json:"append_limit,omitempty"`
	OverAppendLimit      int      `json:"over_append_limit"`
	OverAppendLimitBytes int64    `json:"over_append_limit_bytes"`
	AppendLimitError     string   `json:"append_limit_error,omitempty"`
	TargetCaps           []string `json:"target_capabilities,omitempty"`
	SourceCaps           []string `json:"source_capabilities,omitempty"`
	CapsError            string   `json:"capabilities_error,omitempty"`
	NotSupported         []string `json:"warnings,omitempty"`
	// NoSpecialUse are the folders that will be created without the
	// special use of their source folder ("Sent (\\Sent)"): the target
	// cannot give it (no CREATE-SPECIAL-USE).
	NoSpecialUse []string `json:"created_without_special_use,omitempty"`
}

// planReport is the JSON --report of plan.
type planReport struct {
	reportHead
	Plan    *planInfo        `json:"plan"`
	Summary *migrate.Summary `json:"summary"`
}

// planLimits are what the estimate needs beyond the summary: the run's
// workers and limits, and how long the listing took.
type planLimits struct {
	workers      int
	maxRate      float64
	maxBandwidth int64
	listing      time.Duration
	maildirRoot  string // a Maildir target's root: its file system is probed
	probeTarget  bool   // --probe-target: store into scratch folders of an IMAP target
}

// gatherPlan is gatherPlanFor without a store probe (migrate --dry-run).
func gatherPlan(ctx context.Context, sum *migrate.Summary, srcOpen source.Opener, tgtOpen target.Opener, l planLimits) *planInfo {
	l.maildirRoot = ""
	return gatherPlanFor(ctx, sum, srcOpen, tgtOpen, l)
}

// gatherPlanFor measures the source rate on a sample, asks the target for
// its quota and capabilities, and estimates the time the copy will take.
// Any failure is recorded, never fatal: the plan is advice.
func gatherPlanFor(ctx context.Context, sum *migrate.Summary, srcOpen source.Opener, tgtOpen target.Opener, l planLimits) *planInfo {
	p := &planInfo{Workers: l.workers, MaxRate: l.maxRate, MaxBandwidth: l.maxBandwidth, Listing: l.listing}
	in := estimateInput{Workers: l.workers, MaxRate: l.maxRate, MaxBandwidth: l.maxBandwidth, Listing: l.listing}
	for _, f := range sum.Folders {
		p.ToCopy += f.ToCopy
		p.ToCopyBytes += f.ToCopyBytes
		in.Folders = append(in.Folders, folderWork{Msgs: f.ToCopy, Bytes: f.ToCopyBytes})
	}
	var rs *readSample
	if s, err := srcOpen(ctx); err == nil {
		p.SourceCaps = sourceCaps(ctx, s)
		if p.ToCopy > 0 {
			rs, _ = sampleSource(ctx, s, srcOpen, sum, l.workers)
		}
		s.Close()
	}
	if rs.ok() {
		p.RateMeasured = true
		p.SampleMessages, p.SampleBytes, p.SampleTime = rs.Msgs+rs.OneMsgs, rs.Bytes+rs.OneBytes, rs.Time+rs.OneTime
		if rs.Sessions == 1 {
			p.SampleMessages, p.SampleBytes, p.SampleTime = rs.Msgs, rs.Bytes, rs.Time
		}
		p.SampleSessions, p.SampleFolders = rs.Sessions, rs.Folders
		m, b := rs.rate(rs.Sessions)
		p.MsgsPerSec, p.BytesPerSec = m/float64(rs.Sessions), b/float64(rs.Sessions)
	} else {
		p.BytesPerSec, p.MsgsPerSec = defaultBytesPerSec, defaultMsgsPerSec
	}
	if l.maildirRoot != "" && p.ToCopy > 0 && rs.ok() {
		if ss, err := probeMaildirStore(ctx, l.maildirRoot, l.workers, p.ToCopy, p.ToCopyBytes/int64(p.ToCopy)); err == nil && ss.ok() {
			in.Store = ss
			p.StoreSampleMessages, p.StoreSampleTime = ss.Msgs, ss.Time
		}
	}
	srcFolders := sourceFolders(ctx, sum, srcOpen)
	estimate := func() {
		e := estimateRun(in, rs)
		p.Estimate, p.EstimateLow, p.EstimateHigh, p.LimitedBy, p.LimitFloor = e.Mid, e.Low, e.High, e.LimitedBy, e.Floor
	}

	t, err := tgtOpen(ctx)
	if err != nil {
		p.CapsError = err.Error()
		estimate()
		return p
	}
	defer t.Close()
	// One worker per folder at a time on such a target, as the engine does.
	in.IMAPTarget = t.Features().ExclusiveFolders
	estimate()
	p.NoSpecialUse = withoutSpecialUse(ctx, sum, srcFolders, t)
	if len(p.NoSpecialUse) > 0 {
		p.NotSupported = append(p.NotSupported, fmt.Sprintf("the target has no CREATE-SPECIAL-USE: %d folder(s) will be created without their special use: %s",
			len(p.NoSpecialUse), strings.Join(p.NoSpecialUse, ", ")))
	}
	feat := t.Features()
	if feat.Quota {
		used, limit, known, err := t.(target.Quotaer).Quota(ctx)
		switch {
		case err != nil:
			p.QuotaError = err.Error()
		case known:
			p.QuotaKnown, p.QuotaUsed, p.QuotaLimit = true, used, limit
			p.OverQuota = p.ToCopyBytes > limit-used
		}
	}
	if feat.AppendLimit {
		overAppendLimit(ctx, p, sum, srcOpen, t.(target.AppendLimiter))
	}
	if l.probeTarget && in.IMAPTarget && p.ToCopy > 0 {
		probeTarget(ctx, p, &in, tgtOpen, l.workers)
		estimate()
	}
	if feat.Capabilities {
		caps, err := t.(target.CapabilityLister).Capabilities(ctx)
		if err != nil {
			p.CapsError = err.Error()
		}
		p.TargetCaps = caps
		has := strings.Join(caps, " ") + " "
		if !strings.Contains(has, "UIDPLUS ") {
			p.NotSupported = append(p.NotSupported, "the target has no UIDPLUS: an interrupted APPEND is found again by a search, slower")
		}
	}
	return p
}

// probeTarget runs plan --probe-target's store probe into an IMAP target
// (probeIMAPStore), unless the target's quota is too tight for it, and
// notes what it did in p. A folder it could not delete is a warning.
func probeTarget(ctx context.Context, p *planInfo, in *estimateInput, tgtOpen target.Opener, workers int) {
	if p.QuotaKnown && p.QuotaLimit-p.QuotaUsed < 2*imapProbeMaxBytes {
		p.StoreProbeError = "not probed: the target's quota has too little room"
		return
	}
	ss, err := probeIMAPStore(ctx, tgtOpen, workers, p.ToCopy, p.ToCopyBytes/int64(p.ToCopy))
	if ss != nil && len(ss.Left) > 0 {
		p.NotSupported = append(p.NotSupported, fmt.Sprintf("--probe-target could not delete its scratch folder(s) %s: delete them by hand", strings.Join(ss.Left, ", ")))
	}
	if err != nil {
		p.StoreProbeError = err.Error()
		return
	}
	if ss.ok() {
		in.IMAPStore = ss
		p.StoreSampleMessages, p.StoreSampleTime, p.StoreSampleSessions = ss.Msgs, ss.Time, ss.Sessions
		p.StoreOneMessages, p.StoreOneTime = ss.OneMsgs, ss.OneTime
	}
}

// sourceFolders lists the source's folders and adds those the source
// leaves out (shared, other users', \Noselect: source.SkipLister) to the
// summary as skipped, unless the engine already did.
func sourceFolders(ctx context.Context, sum *migrate.Summary, srcOpen source.Opener) []source.Folder {
	s, err := srcOpen(ctx)
	if err != nil {
		return nil
	}
	defer s.Close()
	folders, err := s.Folders(ctx)
	if err != nil {
		return nil
	}
	if !s.Features().Skipped {
		return folders
	}
	sl := s.(source.SkipLister)
	have := map[string]bool{}
	for _, f := range sum.Folders {
		have[f.Source] = true
	}
	for _, sk := range sl.Skipped() {
		if !have[sk.Name] {
			have[sk.Name] = true
			sum.Folders = append(sum.Folders, &migrate.FolderSummary{Source: sk.Name, Skipped: sk.Reason})
		}
	}
	return folders
}

// withoutSpecialUse lists the folders the run will create for a source
// folder with a special use the target has no folder for, when the target
// cannot create a folder with its special use.
func withoutSpecialUse(ctx context.Context, sum *migrate.Summary, srcFolders []source.Folder, t target.Target) []string {
	if feat := t.Features(); !feat.SpecialUseCreate || !feat.Folders {
		return nil
	}
	sc, fl := t.(target.SpecialUseCreator), t.(target.FolderLister)
	if can, err := sc.CreatesSpecialUse(ctx); err != nil || can {
		return nil
	}
	existing, err := fl.Folders(ctx)
	if err != nil {
		return nil
	}
	exists, hasUse := map[string]bool{"INBOX": true}, map[string]bool{}
	for _, f := range existing {
		exists[f.Name] = true
		hasUse[f.SpecialUse] = true
	}
	use := map[string]string{}
	for _, f := range srcFolders {
		use[f.Name] = migrate.SpecialUse(f)
	}
	var out []string
	for _, f := range sum.Folders {
		u := use[f.Source]
		if f.Skipped != "" || exists[f.Target] || strings.EqualFold(f.Target, "INBOX") || !imaptgt.CreatableUse(u) || hasUse[u] {
			continue
		}
		out = append(out, fmt.Sprintf("%s (%s)", f.Target, u))
	}
	return out
}

// overAppendLimit counts the messages to copy that are larger than their
// target folder's APPENDLIMIT. Only when there is a limit does it list the
// source folders again, for the sizes.
func overAppendLimit(ctx context.Context, p *planInfo, sum *migrate.Summary, srcOpen source.Opener, al target.AppendLimiter) {
	limits := map[string]int64{}
	for _, f := range sum.Folders {
		if f.Skipped != "" || f.ToCopy == 0 {
			continue
		}
		l, err := al.AppendLimit(ctx, f.Target)
		if err != nil {
			p.AppendLimitError = err.Error()
			return
		}
		if l > 0 {
			limits[f.Source] = l
			if p.AppendLimit == 0 || l < p.AppendLimit {
				p.AppendLimit = l
			}
		}
	}
	if len(limits) == 0 {
		return
	}
	s, err := srcOpen(ctx)
	if err != nil {
		p.AppendLimitError = err.Error()
		return
	}
	defer s.Close()
	folders, err := s.Folders(ctx)
	if err != nil {
		p.AppendLimitError = err.Error()
		return
	}
	for _, f := range folders {
		l, ok := limits[f.Name]
		if !ok {
			continue
		}
		metas, err := s.List(ctx, f)
		if err != nil {
			p.AppendLimitError = err.Error()
			continue
		}
		for _, m := range metas {
			if m.Size > l {
				p.OverAppendLimit++
				p.OverAppendLimitBytes += m.Size
			}
		}
	}
}

// sourceCaps lists what matters of the source server's capabilities.
func sourceCaps(ctx context.Context, s source.Source) []string {
	if !s.Features().Capabilities {
		return nil
	}
	caps, _ := s.(source.CapabilityLister).Capabilities(ctx)
	return caps
}

// printPlanFull prints the plan: the folder table, the total, the time
// estimate, the quota (with a warning when the copy will not fit) and the
// capabilities. migrate --dry-run can call it with the same arguments.
func printPlanFull(w io.Writer, sum *migrate.Summary, p *planInfo, src, tgt fmt.Stringer) {
	fmt.Fprintf(w, "Plan: %s → %s (nothing copied)\n", src, tgt)
	tb := &table{right: []bool{false, false, true, true, true, true, true}}
	tb.row("FOLDER", "TARGET", "MESSAGES", "BYTES", "DONE", "TO COPY", "TO COPY BYTES")
	var listed, done, fails, left int
	var listedBytes int64
	for _, f := range sum.Folders {
		if f.Skipped == "not matched by --include" || f.Skipped == "matched by --exclude" {
			left++ // asked for: no row
			continue
		}
		if f.Skipped != "" {
			tb.row(f.Source, "(skipped: "+f.Skipped+")")
			continue
		}
		tb.row(f.Source, f.Target, strconv.Itoa(f.Listed), humanBytes(f.ListedBytes), strconv.Itoa(f.AlreadyThere), strconv.Itoa(f.ToCopy), humanBytes(f.ToCopyBytes))
		listed += f.Listed
		listedBytes += f.ListedBytes
		done += f.AlreadyThere
		fails += f.Failed
	}
	tb.row("TOTAL", "", strconv.Itoa(listed), humanBytes(listedBytes), strconv.Itoa(done), strconv.Itoa(p.ToCopy), humanBytes(p.ToCopyBytes))
	tb.write(w)
	if left > 0 {
		fmt.Fprintf(w, "Left out by --include/--exclude: %s\n", plural(left, "folder", "folders"))
	}
	for _, warn := range sum.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warn)
	}
	if fails > 0 {
		fmt.Fprintf(w, "Will not be copied: %d message(s) (see the report):\n", fails)
		for i, f := range sum.Failures {
			if i == 10 {
				fmt.Fprintf(w, "  … and %d more\n", len(sum.Failures)-10)
				break
			}
			fmt.Fprintf(w, "  %s %s: %s\n", f.Folder, f.Key, f.Reason)
		}
	}
	printEstimate(w, p)
	switch {
	case p.QuotaKnown:
		free := p.QuotaLimit - p.QuotaUsed
		fmt.Fprintf(w, "Target quota: %s used of %s (%s free)\n", humanBytes(p.QuotaUsed), humanBytes(p.QuotaLimit), humanBytes(max(free, 0)))
		if p.OverQuota {
			fmt.Fprintf(w, "WARNING: %s to copy does not fit in the %s free in the target quota; the copy will stop with [OVERQUOTA]\n", humanBytes(p.ToCopyBytes), humanBytes(max(free, 0)))
		}
	case p.QuotaError != "":
		fmt.Fprintf(w, "Target quota: unknown (%s)\n", p.QuotaError)
	default:
		fmt.Fprintln(w, "Target quota: none reported")
	}
	if p.OverAppendLimit > 0 {
		fmt.Fprintf(w, "WARNING: %s larger than the target's APPENDLIMIT (%s); migrate reports them as failed without sending them\n",
			overLimitText(p), humanBytes(p.AppendLimit))
	} else if p.AppendLimitError != "" {
		fmt.Fprintf(w, "Target APPENDLIMIT: could not count the messages over it (%s)\n", p.AppendLimitError)
	}
	if len(p.TargetCaps) > 0 {
		fmt.Fprintf(w, "Target capabilities: %s\n", strings.Join(p.TargetCaps, " "))
	}
	if len(p.SourceCaps) > 0 {
		fmt.Fprintf(w, "Source capabilities: %s\n", strings.Join(p.SourceCaps, " "))
	}
	for _, s := range p.NotSupported {
		fmt.Fprintf(w, "Note: %s\n", s)
	}
}

func overLimitText(p *planInfo) string {
	return fmt.Sprintf("%d message(s) (%s)", p.OverAppendLimit, humanBytes(p.OverAppendLimitBytes))
}

func roundEstimate(d time.Duration) string {
	switch {
	case d < time.Second:
		return "under a second"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 10*time.Minute:
		return trimZeroSeconds(d.Round(5 * time.Second).String())
	default:
		return trimZeroSeconds(d.Round(time.Minute).String())
	}
}

// trimZeroSeconds makes "3m0s" "3m" and "1h5m0s" "1h5m".
func trimZeroSeconds(s string) string {
	if strings.HasSuffix(s, "m0s") {
		return strings.TrimSuffix(s, "0s")
	}
	return s
}

// printEstimate prints the time estimate: the likely time and its range,
// the rate measured (or assumed), and the limit that decides, if one does.
func printEstimate(w io.Writer, p *planInfo) {
	how := fmt.Sprintf("measured on %d message(s), %s in %s", p.SampleMessages, humanBytes(p.SampleBytes), p.SampleTime.Round(time.Millisecond))
	if p.SampleSessions > 0 {
		how += fmt.Sprintf(" with %d session(s) from %d folder(s)", p.SampleSessions, p.SampleFolders)
	}
	if !p.RateMeasured {
		how = "no sample: assumed default rate"
	}
	switch {
	case p.StoreOneMessages > 0:
		how += fmt.Sprintf("; storing into the target %d message(s) in %s with one session, %d in %s with %d",
			p.StoreOneMessages, p.StoreOneTime.Round(time.Millisecond), p.StoreSampleMessages, p.StoreSampleTime.Round(time.Millisecond), p.StoreSampleSessions)
	case p.StoreSampleMessages > 0:
		how += fmt.Sprintf("; storing %d message(s) in %s", p.StoreSampleMessages, p.StoreSampleTime.Round(time.Millisecond))
	case p.StoreProbeError != "":
		how += "; target not probed (" + p.StoreProbeError + ")"
	}
	rng := ""
	if lo, hi := roundEstimate(p.EstimateLow), roundEstimate(p.EstimateHigh); lo != hi {
		rng = fmt.Sprintf(" (likely %s to %s)", lo, hi)
	}
	fmt.Fprintf(w, "Estimate: %s%s with %s (%s/s and %.0f messages/s per connection, %s; listing %s)\n",
		roundEstimate(p.Estimate), rng, plural(p.Workers, "worker", "workers"), humanBytes(int64(p.BytesPerSec)), p.MsgsPerSec, how, roundEstimate(p.Listing))
	switch p.LimitedBy {
	case "--max-rate":
		fmt.Fprintf(w, "  set by --max-rate %g: %d messages take at least %s\n", p.MaxRate, p.ToCopy, roundEstimate(p.LimitFloor))
	case "--max-bandwidth":
		fmt.Fprintf(w, "  set by --max-bandwidth %s/s: %s take at least %s\n", humanBytes(p.MaxBandwidth), humanBytes(p.ToCopyBytes), roundEstimate(p.LimitFloor))
	}
}

// newPlanFlags defines plan's flags: migrate's, with those a plan ignores
// accepted but not listed.
func newPlanFlags(out io.Writer) (*common, *runFlags) {
	c := newCommon("plan", usagePlan, out)
	rf := addRunFlags(c.fs)
	c.hidden["dry-run"], c.hidden["delete-source"], c.hidden["sync-flags"] = true, true, true
	c.fs.BoolVar(&rf.probeTarget, "probe-target", false, "measure storing into an IMAP target for the estimate: a few seconds of APPENDs into scratch folders, deleted after (a Maildir target is always probed, beside it)")
	return c, rf
}

func cmdPlan(args []string, stdout, stderr io.Writer) int {
	c, rf := newPlanFlags(stdout)
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "mailferry plan: %s\n", c.redact(err.Error()))
		return code
	}
	if err := c.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return fail(exitUsage, err)
	}
	if sameAccount(context.Background(), c.src, c.tgt) {
		return fail(exitUsage, fmt.Errorf("source and target are the same account (%s and %s): every message would be copied into itself", c.src, c.tgt))
	}
	rules, err := c.rules()
	if err == nil {
		err = c.setupLog(stderr)
	}
	if err != nil {
		return fail(exitUsage, err)
	}
	defer c.closeLog()
	if err := c.passwords(stderr); err != nil {
		return fail(exitUsage, err)
	}
	if err := c.checkPrompted(context.Background(), stderr, connOptions{log: c.logger, caFile: c.caFile, timeout: c.timeout, folder: "INBOX"}); err != nil {
		return finish(stderr, "plan", err, false, c)
	}
	co := connOptions{log: c.logger, caFile: c.caFile, timeout: c.timeout, folder: "INBOX"}
	srcOpen, err := c.src.sourceOpener(co)
	if err != nil {
		return fail(exitUsage, err)
	}
	tgtOpen, cleanup, err := dryTargetOpener(c.tgt, co)
	if err != nil {
		return fail(exitUsage, err)
	}
	defer cleanup()
	// Read-only and without the lock: a plan may run beside the job's run,
	// and a job that never ran leaves no state directory behind.
	journal, err := checkpoint.OpenReadOnly(journalPath(c.state, c.src.String(), c.tgt.String(), rules.ToFolder))
	if err != nil {
		return fail(exitUsage, err)
	}
	ctx, stop := signalContext()
	defer stop()
	started := c.logStart("plan")
	o := rf.options(c.workers, rules)
	o.DryRun, o.DeleteSource, o.SyncFlags = true, false, false
	o.Logger = c.logger
	listStart := time.Now()
	sum, err := migrate.Run(ctx, srcOpen, tgtOpen, journal, o)
	listing := time.Since(listStart)
	if jerr := journal.Close(); jerr != nil && err == nil {
		err = jerr
	}
	if err == nil {
		err = ctx.Err()
	}
	head := reportHead{Version: buildVersion(), Source: c.src.String(), Target: c.tgt.String(), Started: started,
		Status: statusOf(err, false), ExitCode: exitCodeOf(err, false)}
	if err != nil || sum == nil {
		c.logEnd("plan", head.Status, head.ExitCode, started, errString(err))
		return finish(stderr, "plan", err, false, c)
	}
	p := gatherPlanFor(ctx, sum, srcOpen, tgtOpen, planLimits{workers: c.workers, maxRate: rf.maxRate, maxBandwidth: rf.maxBW, listing: listing, maildirRoot: maildirRoot(c.tgt), probeTarget: rf.probeTarget})
	p.QuotaError, p.CapsError = c.redact(p.QuotaError), c.redact(p.CapsError)
	p.AppendLimitError, p.StoreProbeError = c.redact(p.AppendLimitError), c.redact(p.StoreProbeError)
	printPlanFull(stdout, sum, p, c.src, c.tgt)
	if p.OverQuota {
		fmt.Fprintf(stderr, "mailferry plan: warning: %s to copy exceeds the free target quota (%s)\n",
			humanBytes(p.ToCopyBytes), humanBytes(max(p.QuotaLimit-p.QuotaUsed, 0)))
		c.logger.Warn("target quota too small", "to_copy_bytes", p.ToCopyBytes, "quota_used", p.QuotaUsed, "quota_limit", p.QuotaLimit)
	}
	if p.OverAppendLimit > 0 {
		fmt.Fprintf(stderr, "mailferry plan: warning: %s larger than the target's APPENDLIMIT (%s)\n", overLimitText(p), humanBytes(p.AppendLimit))
		c.logger.Warn("messages over the target's APPENDLIMIT", "count", p.OverAppendLimit, "bytes", p.OverAppendLimitBytes, "append_limit", p.AppendLimit)
	}
	logFolders(c.logger, sum)
	if c.report != "" {
		head.Ended = time.Now()
		if werr := writeJSON(c.report, planReport{reportHead: head, Plan: p, Summary: sum}); werr != nil {
			fmt.Fprintf(stderr, "mailferry plan: %v\n", werr)
		}
	}
	c.logEnd("plan", head.Status, head.ExitCode, started, "", "to_copy", p.ToCopy, "to_copy_bytes", p.ToCopyBytes,
		"estimate", p.Estimate.Round(time.Second).String())
	return finish(stderr, "plan", nil, false, c)
}

// maildirRoot is the root of a Maildir endpoint, "" for another.
func maildirRoot(e *endpoint) string {
	if e.scheme == "maildir" {
		return e.path
	}
	return ""
}
