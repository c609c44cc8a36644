package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/source/pop3"
	"github.com/mailferry/mailferry/target"
	imaptgt "github.com/mailferry/mailferry/target/imap"
)

const usagePlan = `Usage: mailferry plan SOURCE TARGET [flags]

Connects to both sides and shows what "mailferry migrate" with the same
arguments would do, without copying anything: per folder the source and
target names, messages, bytes, what the journal already holds and what is
left to copy; the total; an estimate of the time with a range, from a
timed sample of the source (and, for a Maildir target, of storing into a
scratch Maildir beside it, removed after), never below what --max-rate
and --max-bandwidth allow;
the target's quota (RFC 9208 GETQUOTAROOT INBOX) with a warning when the
messages to copy do not fit; a warning with the count and size of the
messages larger than the target's APPENDLIMIT (RFC 7889), which migrate
reports as failed without sending them; and the capabilities that matter.
Takes the same flags as migrate.
`

// runFlags are the flags of migrate beyond the common ones. plan and batch
// rows accept them too. (cmdMigrate could use it; it defines its own.)
type runFlags struct {
	syncFlags, dryRun, fixLF, stripNUL, deleteSource bool
	maxSize, maxBW                                   int64
	maxRate                                          float64
	retries                                          int
}

func addRunFlags(fs *flag.FlagSet) *runFlags {
	r := new(runFlags)
	fs.BoolVar(&r.syncFlags, "sync-flags", false, "also bring flag changes of already copied messages to the target")
	fs.BoolVar(&r.dryRun, "dry-run", false, "list what would be copied, copy nothing")
	fs.Int64Var(&r.maxSize, "max-size", 0, "skip (and list) messages larger than `BYTES`")
	fs.Float64Var(&r.maxRate, "max-rate", 0, "store at most `MSGS` messages per second (0: no limit)")
	fs.Int64Var(&r.maxBW, "max-bandwidth", 0, "send at most `BYTES` per second to the target (0: no limit)")
	fs.BoolVar(&r.fixLF, "fix-bare-lf", false, "convert bare LF line ends to CRLF for every target")
	fs.BoolVar(&r.stripNUL, "strip-nul", false, "remove NUL bytes from messages")
	fs.IntVar(&r.retries, "retries", 6, "retry a failed operation this many times on a new connection")
	fs.BoolVar(&r.deleteSource, "delete-source", false, "delete each source message once it is safely in the target")
	return r
}

func (r *runFlags) options(workers int, rules migrate.FolderRules) migrate.Options {
	return migrate.Options{
		Workers: workers, Folders: rules, SyncFlags: r.syncFlags, MaxSize: r.maxSize, DryRun: r.dryRun,
		MaxRate: r.maxRate, MaxBandwidth: r.maxBW, FixBareLF: r.fixLF, StripNUL: r.stripNUL,
		Retries: r.retries, DeleteSource: r.deleteSource,
	}
}

// planInfo is what plan adds to a dry-run summary.
type planInfo struct {
	Workers int `json:"workers"`
	// The sample fetched from the source to measure the rate (estimate.go).
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
	// Storing measured in a scratch Maildir beside a Maildir target.
	StoreSampleMessages int           `json:"store_sample_messages,omitempty"`
	StoreSampleTime     time.Duration `json:"store_sample_ns,omitempty"`
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
	Source  string           `json:"source"`
	Target  string           `json:"target"`
	Plan    *planInfo        `json:"plan"`
	Summary *migrate.Summary `json:"summary"`
}

type quotaer interface {
	Quota(ctx context.Context) (used, limit int64, ok bool, err error)
}

type appendLimiter interface {
	AppendLimit(ctx context.Context, folder string) (int64, error)
}

type capser interface {
	Capabilities(ctx context.Context) ([]string, error)
}

type specialUseCreator interface {
	CreatesSpecialUse(ctx context.Context) (bool, error)
}

// planLimits are what the estimate needs beyond the summary: the run's
// workers and limits, and how long the listing took.
type planLimits struct {
	workers      int
	maxRate      float64
	maxBandwidth int64
	listing      time.Duration
	maildirRoot  string // a Maildir target's root: its file system is probed
}

// gatherPlan is gatherPlanFor without limits (migrate --dry-run).
func gatherPlan(ctx context.Context, sum *migrate.Summary, srcOpen source.Opener, tgtOpen target.Opener, workers int) *planInfo {
	return gatherPlanFor(ctx, sum, srcOpen, tgtOpen, planLimits{workers: workers, listing: sum.Elapsed})
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
		p.SourceCaps = sourceCaps(s)
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
		if ss, err := probeMaildirStore(ctx, l.maildirRoot, l.workers, p.ToCopyBytes/int64(p.ToCopy)); err == nil && ss.ok() {
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
	if c, ok := t.(target.CRLFRequired); ok && c.RequiresCRLF() {
		in.IMAPTarget = true // as the engine decides it
	}
	estimate()
	p.NoSpecialUse = withoutSpecialUse(ctx, sum, srcFolders, t)
	if len(p.NoSpecialUse) > 0 {
		p.NotSupported = append(p.NotSupported, fmt.Sprintf("the target has no CREATE-SPECIAL-USE: %d folder(s) will be created without their special use: %s",
			len(p.NoSpecialUse), strings.Join(p.NoSpecialUse, ", ")))
	}
	if q, ok := t.(quotaer); ok {
		used, limit, known, err := q.Quota(ctx)
		switch {
		case err != nil:
			p.QuotaError = err.Error()
		case known:
			p.QuotaKnown, p.QuotaUsed, p.QuotaLimit = true, used, limit
			p.OverQuota = p.ToCopyBytes > limit-used
		}
	}
	if al, ok := t.(appendLimiter); ok {
		overAppendLimit(ctx, p, sum, srcOpen, al)
	}
	if c, ok := t.(capser); ok {
		caps, err := c.Capabilities(ctx)
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
	sl, ok := s.(source.SkipLister)
	if !ok {
		return folders
	}
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
	sc, ok1 := t.(specialUseCreator)
	fl, ok2 := t.(target.FolderLister)
	if !ok1 || !ok2 {
		return nil
	}
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
func overAppendLimit(ctx context.Context, p *planInfo, sum *migrate.Summary, srcOpen source.Opener, al appendLimiter) {
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

// sourceCaps lists what matters of a POP3 server's CAPA.
func sourceCaps(s source.Source) []string {
	ps, ok := s.(*pop3.Source)
	if !ok || ps.Client() == nil {
		return nil
	}
	var out []string
	for k, v := range ps.Client().Capabilities() {
		switch k {
		case "PIPELINING", "UIDL", "TOP", "RESP-CODES", "AUTH-RESP-CODE", "SASL", "STLS", "USER", "EXPIRE", "LOGIN-DELAY":
			if len(v) > 0 {
				k += " " + strings.Join(v, " ")
			}
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// printPlanFull prints the plan: the folder table, the total, the time
// estimate, the quota (with a warning when the copy will not fit) and the
// capabilities. migrate --dry-run can call it with the same arguments.
func printPlanFull(w io.Writer, sum *migrate.Summary, p *planInfo, src, tgt fmt.Stringer) {
	fmt.Fprintf(w, "Plan: %s → %s (nothing copied)\n", src, tgt)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "FOLDER\tTARGET\tMESSAGES\tBYTES\tDONE\tTO COPY\tTO COPY BYTES\t")
	var listed, done, fails int
	var listedBytes int64
	for _, f := range sum.Folders {
		if f.Skipped != "" {
			fmt.Fprintf(tw, "%s\t(skipped: %s)\t\t\t\t\t\t\n", f.Source, f.Skipped)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\t\n", f.Source, f.Target, f.Listed, humanBytes(f.ListedBytes), f.AlreadyThere, f.ToCopy, humanBytes(f.ToCopyBytes))
		listed += f.Listed
		listedBytes += f.ListedBytes
		done += f.AlreadyThere
		fails += f.Failed
	}
	fmt.Fprintf(tw, "TOTAL\t\t%d\t%s\t%d\t%d\t%s\t\n", listed, humanBytes(listedBytes), done, p.ToCopy, humanBytes(p.ToCopyBytes))
	tw.Flush()
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
	if p.StoreSampleMessages > 0 {
		how += fmt.Sprintf("; storing %d message(s) in %s", p.StoreSampleMessages, p.StoreSampleTime.Round(time.Millisecond))
	}
	rng := ""
	if lo, hi := roundEstimate(p.EstimateLow), roundEstimate(p.EstimateHigh); lo != hi {
		rng = fmt.Sprintf(" (likely %s to %s)", lo, hi)
	}
	fmt.Fprintf(w, "Estimate: %s%s with %d worker(s) (%s/s and %.0f messages/s per connection, %s; listing %s)\n",
		roundEstimate(p.Estimate), rng, p.Workers, humanBytes(int64(p.BytesPerSec)), p.MsgsPerSec, how, roundEstimate(p.Listing))
	switch p.LimitedBy {
	case "--max-rate":
		fmt.Fprintf(w, "  set by --max-rate %g: %d messages take at least %s\n", p.MaxRate, p.ToCopy, roundEstimate(p.LimitFloor))
	case "--max-bandwidth":
		fmt.Fprintf(w, "  set by --max-bandwidth %s/s: %s take at least %s\n", humanBytes(p.MaxBandwidth), humanBytes(p.ToCopyBytes), roundEstimate(p.LimitFloor))
	}
}

func cmdPlan(args []string, stdout, stderr io.Writer) int {
	c := newCommon("plan", usagePlan, stderr)
	rf := addRunFlags(c.fs)
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
	co := connOptions{caFile: c.caFile, timeout: c.timeout, folder: "INBOX"}
	srcOpen, err := c.src.sourceOpener(co)
	if err != nil {
		return fail(exitUsage, err)
	}
	tgtOpen, err := c.tgt.targetOpener(co)
	if err != nil {
		return fail(exitUsage, err)
	}
	journal, err := openJournal(c.state, c.src.String(), c.tgt.String(), rules.ToFolder)
	if err != nil {
		return fail(exitUsage, err)
	}
	defer journal.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := rf.options(c.workers, rules)
	o.DryRun, o.DeleteSource, o.SyncFlags = true, false, false
	o.Logger = c.logger
	listStart := time.Now()
	sum, err := migrate.Run(ctx, srcOpen, tgtOpen, journal, o)
	listing := time.Since(listStart)
	if jerr := journal.Close(); jerr != nil && err == nil {
		err = jerr
	}
	if err != nil || sum == nil {
		return finish(stderr, "plan", err, false, c)
	}
	p := gatherPlanFor(ctx, sum, srcOpen, tgtOpen, planLimits{workers: c.workers, maxRate: rf.maxRate, maxBandwidth: rf.maxBW, listing: listing, maildirRoot: maildirRoot(c.tgt)})
	p.QuotaError, p.CapsError = c.redact(p.QuotaError), c.redact(p.CapsError)
	p.AppendLimitError = c.redact(p.AppendLimitError)
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
	if c.report != "" {
		if werr := writeJSON(c.report, planReport{Source: c.src.String(), Target: c.tgt.String(), Plan: p, Summary: sum}); werr != nil {
			fmt.Fprintf(stderr, "mailferry plan: %v\n", werr)
		}
	}
	return finish(stderr, "plan", ctx.Err(), false, c)
}

// maildirRoot is the root of a Maildir endpoint, "" for another.
func maildirRoot(e *endpoint) string {
	if e.scheme == "maildir" {
		return e.path
	}
	return ""
}
