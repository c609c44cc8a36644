// Command mailferry-bench measures mailferry beside the tools users would
// otherwise pick (mbsync, offlineimap, getmail6, doveadm backup) on the
// same private loopback Dovecot and the same deterministic account, in one
// run, and prints one table with each tool's rate and peak memory and how
// many times faster mailferry is. Everything it needs is in the
// repository: the account generator (gen.go), the Dovecot instance
// (internal/testkit/dovecottest with testdata/dovecot), mailferry built
// from ./cmd/mailferry. See BENCHMARKS.md.
//
//	go run ./cmd/mailferry-bench                          # 5,000 messages, all paths and tools
//	go run ./cmd/mailferry-bench --messages 5000,50000 --paths i2m,i2i --tools mailferry,mbsync
//
// Every mailferry run is checked strictly against the generated account
// (each message exactly once, same bytes, flags and internal date); the
// other tools' targets are counted only (they rewrite headers). A tool
// that is not installed is skipped with a note.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `Usage: go run ./cmd/mailferry-bench [flags]

Starts a private Dovecot on 127.0.0.1 (free ports, its own directory under
$TMPDIR, stopped at the end), writes a deterministic account of N messages
over six folders straight into the mail storage of its user "src", builds
./cmd/mailferry, then for each size, path and tool: empties the target,
runs the tool, measures wall time, msgs/s, MB/s, peak RSS (the child's
own: wait4 rusage, or its sampled VmHWM) and CPU, and checks the target. mailferry's targets are
checked strictly (every message exactly once, bytes, flags, dates);
mailferry also gets a "plan" row (its estimate against the measured copy;
plan --probe-target, which on an IMAP target stores into scratch folders),
no-op re-runs and the journal size after them. "load" is the 1-minute load
average before the run (numbers from a busy machine are noisy). The last
column is how many times faster mailferry was than that tool on that path
(msgs/s). The account: six folders (INBOX 40 %), flags, keywords, dates
over five years, ~1.3 KB text messages (--realistic: a mailbox's spread).

Paths: i2m = IMAP -> Maildir, i2i = IMAP -> IMAP (user dst on the same
Dovecot), p2m = POP3 -> Maildir (INBOX of src).
Tools: mailferry; mbsync (i2m, i2i; Debian package isync); offlineimap
(i2m; offlineimap3); getmail6 (p2m); doveadm (i2i: "doveadm backup", a
server-side copy that skips IMAP, for scale). Missing tools are skipped.

Flags:
`

type config struct {
	sizes     []int
	seed      uint64
	realistic bool
	paths     []string
	tools     []string
	workers   int
	reruns    int
	resume    bool
	plan      bool
	warmup    bool
	timeout   time.Duration
	others    time.Duration // --others-timeout
	work      string
	keep      bool
	log       *slog.Logger
	stderr    io.Writer

	repo, bin string
	srv       *dovecottest.Server
	trashN    int
	cleanups  []func() // run by cleanup, last first
	acct      genOptions
	exp       *expected
	bytes     int64
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &config{stderr: stderr}
	fs := flag.NewFlagSet("mailferry-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	sizes := fs.String("messages", "5000", "account sizes to measure, each a fresh account: `N[,N...]`")
	seed := fs.Uint64("seed", 1, "account generator seed: the same seed and size give the same bytes")
	fs.BoolVar(&c.realistic, "realistic", false, "spread message sizes like a mailbox (text ~8 KB log-normal, 5 % with a 200 KB-2 MB attachment) instead of ~1.3 KB text messages")
	paths := fs.String("paths", "i2m,i2i,p2m", "paths to measure, comma-separated: i2m (IMAP->Maildir), i2i (IMAP->IMAP), p2m (POP3->Maildir)")
	tools := fs.String("tools", "mailferry,mbsync,offlineimap,getmail6,doveadm", "tools to run, comma-separated (missing ones are skipped)")
	fs.IntVar(&c.workers, "workers", 0, "mailferry --workers (0: mailferry's default)")
	fs.IntVar(&c.reruns, "reruns", 2, "no-op re-runs timed after each mailferry copy (the journal size is reported after them)")
	fs.BoolVar(&c.resume, "resume", false, "after each mailferry copy, copy again into an empty target, kill -9 it halfway (by the first copy's time), resume it, and report the resume's start-up (until its first message is copied) and the exactness of the result")
	fs.BoolVar(&c.plan, "plan", true, "run \"mailferry plan\" before each mailferry copy and report its estimate against the measured time")
	fs.BoolVar(&c.warmup, "warmup", true, "read the account once, untimed, before the measured runs (Dovecot builds its cache on the first FETCH)")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Minute, "bound on each measured run (a run over it is killed and reported)")
	fs.DurationVar(&c.others, "others-timeout", 0, "bound on each run of a tool other than mailferry (0: --timeout); a killed run's rate is reported from the messages it had copied")
	fs.StringVar(&c.work, "work", filepath.Join(os.TempDir(), "mailferry-bench"), "scratch `DIR`: Maildir targets, journals, tool configs, logs (log-*.txt)")
	fs.BoolVar(&c.keep, "keep", false, "leave Dovecot running at the end (until Enter is pressed) to look at it")
	verbose := fs.Bool("v", false, "log more (each step)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mailferry-bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	c.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	c.seed = *seed
	for _, s := range splitList(*sizes) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "mailferry-bench: bad --messages value %q\n", s)
			return 2
		}
		c.sizes = append(c.sizes, n)
	}
	c.paths, c.tools = splitList(*paths), splitList(*tools)
	for _, p := range c.paths {
		if _, ok := pathNames[p]; !ok {
			fmt.Fprintf(stderr, "mailferry-bench: unknown path %q (i2m, i2i, p2m)\n", p)
			return 2
		}
	}
	for _, t := range c.tools {
		if !slices.Contains(allTools, t) {
			fmt.Fprintf(stderr, "mailferry-bench: unknown tool %q (%s)\n", t, strings.Join(allTools, ", "))
			return 2
		}
	}
	res, err := c.runAll(ctx)
	// The table before the clean-up: deleting a big account's files takes
	// minutes.
	printTable(stdout, res)
	c.cleanup()
	if err != nil {
		fmt.Fprintf(stderr, "mailferry-bench: %v\n", err)
		return 1
	}
	for _, r := range res {
		if r.failed {
			return 1
		}
	}
	return 0
}

// cleanup stops Dovecot and deletes the scratch files, last set up first.
func (c *config) cleanup() {
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
	c.cleanups = nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

var pathNames = map[string]string{"i2m": "IMAP->Maildir", "i2i": "IMAP->IMAP", "p2m": "POP3->Maildir"}

var allTools = []string{"mailferry", "mbsync", "offlineimap", "getmail6", "doveadm"}

func (c *config) runAll(ctx context.Context) ([]result, error) {
	// Readable by all: getmail6 delivers as the mail account when run as
	// root (mailferry's Maildir target would create it 0700).
	for _, d := range []string{c.work, filepath.Join(c.work, "targets")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return nil, err
		}
	}
	c.cleanups = append(c.cleanups, func() { os.RemoveAll(filepath.Join(c.work, "trash")) })
	var err error
	if c.repo, err = repoRoot(); err != nil {
		return nil, err
	}
	c.bin = filepath.Join(c.work, "mailferry")
	c.log.Info("building mailferry", "bin", c.bin)
	build := exec.CommandContext(ctx, "go", "build", "-o", c.bin, "./cmd/mailferry")
	build.Dir = c.repo
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/mailferry: %w\n%s", err, out)
	}
	c.log.Info("starting a private Dovecot")
	srv, stop, err := dovecottest.StartStandalone(dovecottest.Options{Users: []string{"src", "dst"}},
		func(f string, a ...any) { c.log.Info(fmt.Sprintf(f, a...)) })
	if err != nil {
		return nil, fmt.Errorf("start Dovecot: %w", err)
	}
	c.srv = srv
	c.cleanups = append(c.cleanups, func() {
		if c.keep {
			fmt.Fprintf(c.stderr, "Dovecot runs in %s (IMAP %s, POP3 %s, users src dst, password %s); press Enter to stop it\n",
				srv.Dir, srv.IMAP, srv.POP3, dovecottest.Password)
			fmt.Fscanln(os.Stdin)
		}
		c.log.Info("stopping Dovecot and deleting its files")
		stop()
	})
	c.log.Info("Dovecot is up", "dir", srv.Dir, "imap", srv.IMAP, "pop3", srv.POP3)
	var all []result
	for _, n := range c.sizes {
		res, err := c.runSize(ctx, n)
		all = append(all, res...)
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

func (c *config) runSize(ctx context.Context, n int) ([]result, error) {
	c.acct = genOptions{Messages: n, Seed: c.seed, Realistic: c.realistic}
	c.log.Info("writing the account", "messages", n, "seed", c.seed, "realistic", c.realistic)
	t0 := time.Now()
	b, err := loadAccount(ctx, c.srv, "src", c.acct, c.aside)
	if err != nil {
		return nil, err
	}
	c.bytes = b
	c.log.Info("account written and indexed", "messages", n, "MB", fmt.Sprintf("%.1f", float64(b)/1e6), "took", time.Since(t0).Round(time.Millisecond))
	c.exp = buildExpected(c.acct)
	if c.warmup {
		c.log.Info("warm-up read of src (untimed)")
		dir := filepath.Join(c.work, "warmup")
		c.aside(dir)
		os.RemoveAll(filepath.Join(c.work, "state", "warmup"))
		if _, err := c.exec(ctx, "warmup", c.mailferryArgs("migrate", "warmup", c.imapURL("src"), "maildir:"+dir), c.timeout); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
		c.aside(dir)
	}
	// The account's files and the warm-up's target are written back by
	// the kernel over the next half minute: flush them now, so that the
	// first measured run does not pay for the setup (a 5,000-message copy
	// takes 1-3 s, and a copy's fsyncs wait for the writeback before them).
	t1 := time.Now()
	if err := exec.CommandContext(ctx, "sync").Run(); err != nil {
		c.log.Warn("sync after the setup failed", "err", err)
	}
	c.log.Debug("setup flushed (sync)", "took", time.Since(t1).Round(time.Millisecond))
	var res []result
	for _, p := range c.paths {
		var pathRes []result
		for _, j := range c.jobs(p) {
			if !slices.Contains(c.tools, j.tool) {
				continue
			}
			if _, err := exec.LookPath(j.argv(c)[0]); err != nil {
				c.log.Warn("not installed; skipped", "tool", j.tool, "path", pathNames[p])
				pathRes = append(pathRes, result{size: n, path: pathNames[p], tool: j.tool, skipped: true,
					note: j.tool + " is not installed: skipped"})
				continue
			}
			rs, err := c.measureJob(ctx, j)
			for _, r := range rs {
				c.log.Info("measured", "msgs", r.msgs, "path", r.path, "tool", r.tool, "run", r.what,
					"wall_s", fmt.Sprintf("%.2f", r.wall), "rss_MB", fmt.Sprintf("%.0f", r.rssMB), "load", r.load, "check", r.check, "note", r.note)
			}
			pathRes = append(pathRes, rs...)
			if err != nil {
				return append(res, pathRes...), err
			}
		}
		ratios(pathRes)
		res = append(res, pathRes...)
	}
	return res, nil
}

// job is one tool on one path.
type job struct {
	path, tool string
	// target is the Maildir++ tree (or tree of folders) the tool writes.
	target string
	reset  func(c *config) error
	argv   func(c *config) []string
	// strict: check exactly-once (mailferry); otherwise count files.
	strict bool
	// inbox: only INBOX is copied (POP3).
	inbox bool
	state string // mailferry's --state name
}

func (c *config) jobs(p string) []job {
	t := func(s string) string { return filepath.Join(c.work, "targets", s) }
	dst := c.srv.Maildir("dst")
	switch p {
	case "i2m":
		return []job{
			{path: p, tool: "mailferry", target: t("mailferry-i2m"), strict: true, state: "i2m",
				reset: c.resetDir(t("mailferry-i2m"), "i2m"),
				argv: func(c *config) []string {
					return c.mailferryArgs("migrate", "i2m", c.imapURL("src"), "maildir:"+t("mailferry-i2m"))
				}},
			{path: p, tool: "mbsync", target: t("mbsync-i2m"), reset: c.resetMbsync(t("mbsync-i2m")),
				argv: func(c *config) []string { return []string{"mbsync", "-c", c.cfg("mbsyncrc"), "-q", "i2m"} }},
			{path: p, tool: "offlineimap", target: t("offlineimap-i2m"), reset: c.resetOfflineimap(t("offlineimap-i2m")),
				argv: func(c *config) []string {
					return []string{"offlineimap", "-c", c.cfg("offlineimaprc"), "-o", "-u", "quiet"}
				}},
		}
	case "i2i":
		return []job{
			{path: p, tool: "mailferry", target: dst, strict: true, state: "i2i", reset: c.resetDst("i2i"),
				argv: func(c *config) []string {
					return c.mailferryArgs("migrate", "i2i", c.imapURL("src"), c.imapURL("dst"))
				}},
			{path: p, tool: "mbsync", target: dst, reset: c.resetDst(""),
				argv: func(c *config) []string { return []string{"mbsync", "-c", c.cfg("mbsyncrc"), "-q", "i2i"} }},
			{path: p, tool: "doveadm", target: dst, reset: c.resetDst(""),
				argv: func(c *config) []string {
					return []string{"doveadm", "-c", c.srv.Conf, "backup", "-R", "-u", "dst", "maildir:" + c.srv.Maildir("src")}
				}},
		}
	case "p2m":
		return []job{
			{path: p, tool: "mailferry", target: t("mailferry-p2m"), strict: true, inbox: true, state: "p2m",
				reset: c.resetDir(t("mailferry-p2m"), "p2m"),
				argv: func(c *config) []string {
					return c.mailferryArgs("migrate", "p2m", c.pop3URL("src"), "maildir:"+t("mailferry-p2m"))
				}},
			{path: p, tool: "getmail6", target: t("getmail-p2m"), inbox: true, reset: c.resetGetmail(t("getmail-p2m")),
				argv: func(c *config) []string {
					return []string{"getmail", "--getmaildir", filepath.Join(c.work, "getmail-state"), "--rcfile", c.cfg("getmailrc")}
				}},
		}
	}
	return nil
}

func (c *config) cfg(name string) string { return filepath.Join(c.work, "config", name) }

func (c *config) imapURL(user string) string {
	return fmt.Sprintf("imap://%s@%s?tls=none", user, c.srv.IMAP)
}

func (c *config) pop3URL(user string) string {
	return fmt.Sprintf("pop3://%s@%s?tls=none", user, c.srv.POP3)
}

func (c *config) mailferryArgs(cmd, state, src, tgt string) []string {
	a := []string{c.bin, cmd, src, tgt, "--state", filepath.Join(c.work, "state", state), "--no-progress", "-q"}
	if c.workers > 0 {
		a = append(a, "--workers", strconv.Itoa(c.workers))
	}
	return a
}

// aside moves a directory out of the way instead of deleting it; the trash
// goes when the benchmark ends. Deleting thousands of files right before a
// run makes every file created in the next minute slow on ext4 (the inode
// allocator skips the just-freed inodes), whichever tool runs next.
func (c *config) aside(dir string) {
	if _, err := os.Lstat(dir); err != nil {
		return
	}
	trash := filepath.Join(c.work, "trash")
	if c.srv != nil && strings.HasPrefix(dir, c.srv.Dir+string(filepath.Separator)) {
		trash = filepath.Join(c.srv.Dir, "trash") // the same file system
	}
	os.MkdirAll(trash, 0o700)
	c.trashN++
	if err := os.Rename(dir, filepath.Join(trash, strconv.Itoa(c.trashN))); err != nil {
		c.log.Warn("move aside failed; deleting", "dir", dir, "err", err)
		os.RemoveAll(dir)
	}
}

func (c *config) resetDir(dir, state string) func(*config) error {
	return func(c *config) error {
		c.aside(dir)
		return os.RemoveAll(filepath.Join(c.work, "state", state))
	}
}

// resetDst empties user dst (kick, its Maildir and indexes moved aside),
// mailferry's state and mbsync's.
func (c *config) resetDst(state string) func(*config) error {
	return func(c *config) error {
		if err := c.srv.Kick("dst"); err != nil {
			return err
		}
		c.aside(c.srv.Maildir("dst"))
		if state != "" {
			os.RemoveAll(filepath.Join(c.work, "state", state))
		}
		os.RemoveAll(filepath.Join(c.work, "mbsync-state"))
		if err := os.MkdirAll(filepath.Join(c.work, "mbsync-state"), 0o755); err != nil {
			return err
		}
		return c.writeConfigs()
	}
}

func (c *config) resetMbsync(dir string) func(*config) error {
	return func(c *config) error {
		c.aside(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return c.writeConfigs()
	}
}

func (c *config) resetOfflineimap(dir string) func(*config) error {
	return func(c *config) error {
		c.aside(dir)
		os.RemoveAll(filepath.Join(c.work, "offlineimap-meta"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return c.writeConfigs()
	}
}

// resetGetmail empties getmail's Maildir and state. As root, getmail
// delivers as the mail account (it refuses root), which must own the
// Maildir.
func (c *config) resetGetmail(dir string) func(*config) error {
	return func(c *config) error {
		c.aside(dir)
		os.RemoveAll(filepath.Join(c.work, "getmail-state"))
		if err := os.MkdirAll(filepath.Join(c.work, "getmail-state"), 0o755); err != nil {
			return err
		}
		uid, gid := c.srv.MailOwner()
		for _, s := range []string{"", "cur", "new", "tmp"} {
			p := filepath.Join(dir, s)
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			if os.Getuid() == 0 {
				if err := os.Chown(p, uid, gid); err != nil {
					return err
				}
			}
		}
		return c.writeConfigs()
	}
}

// writeConfigs writes the configuration files of mbsync, offlineimap and
// getmail6 for this instance (plain IMAP/POP3 on loopback, as mailferry's
// ?tls=none; mbsync and offlineimap read-only on the source side).
func (c *config) writeConfigs() error {
	if err := os.MkdirAll(filepath.Join(c.work, "config"), 0o755); err != nil {
		return err
	}
	host, port, _ := strings.Cut(c.srv.IMAP, ":")
	_, pop3Port, _ := strings.Cut(c.srv.POP3, ":")
	t := filepath.Join(c.work, "targets")
	mb := fmt.Sprintf(`IMAPAccount src
Host %[1]s
Port %[2]s
User src
Pass %[5]s
SSLType None
AuthMechs LOGIN

IMAPStore src
Account src

IMAPAccount dst
Host %[1]s
Port %[2]s
User dst
Pass %[5]s
SSLType None
AuthMechs LOGIN

IMAPStore dst
Account dst

MaildirStore local
Path %[3]s/mbsync-i2m/
Inbox %[3]s/mbsync-i2m/INBOX
SubFolders Verbatim

Channel i2i
Far :src:
Near :dst:
Patterns *
Create Near
Sync Pull
Expunge None
CopyArrivalDate yes
SyncState %[4]s/mbsync-state/

Channel i2m
Far :src:
Near :local:
Patterns *
Create Near
Sync Pull
Expunge None
CopyArrivalDate yes
SyncState *
`, host, port, t, c.work, dovecottest.Password)
	oi := fmt.Sprintf(`[general]
accounts = bench
metadata = %[1]s/offlineimap-meta
ui = quiet
maxsyncaccounts = 1

[Account bench]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = %[2]s/offlineimap-i2m
sep = /

[Repository remote]
type = IMAP
remotehost = %[3]s
remoteport = %[4]s
remoteuser = src
remotepass = %[5]s
ssl = no
starttls = no
readonly = True
maxconnections = 2
`, c.work, t, host, port, dovecottest.Password)
	gmUser := ""
	if os.Getuid() == 0 {
		uid, _ := c.srv.MailOwner()
		u, err := user.LookupId(strconv.Itoa(uid))
		if err != nil {
			return fmt.Errorf("name of uid %d: %w", uid, err)
		}
		gmUser = "user = " + u.Username
	}
	gm := fmt.Sprintf(`[retriever]
type = SimplePOP3Retriever
server = %s
port = %s
username = src
password = %s
timeout = 20

[destination]
type = Maildir
path = %s/getmail-p2m/
%s

[options]
verbose = 0
read_all = false
delete = false
delivered_to = false
received = false
`, host, pop3Port, dovecottest.Password, t, gmUser)
	for name, body := range map[string]string{"mbsyncrc": mb, "offlineimaprc": oi, "getmailrc": gm} {
		if err := os.WriteFile(c.cfg(name), []byte(body), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// result is one row of the table.
type result struct {
	size          int
	path, tool    string
	what          string // "copy", "re-run 1", "plan"
	msgs          int
	bytes         int64
	wall, cpu     float64
	rssMB         float64
	load          float64 // 1-minute load average before the run
	check         string
	ratio         string
	note          string
	failed        bool
	skipped       bool
	copyThroughpt float64 // msgs/s of a copy row, for the ratios
	partial       float64 // msgs/s of a copy killed by its time bound, from what it had copied
}

// took records what a run measured.
func (r *result) took(ru rusage) { r.wall, r.cpu, r.rssMB, r.load = ru.wall, ru.cpu, ru.rssMB, ru.load }

// measureJob runs one tool on one path: reset, (plan,) copy, check, and
// for mailferry the re-runs.
func (c *config) measureJob(ctx context.Context, j job) ([]result, error) {
	if err := j.reset(c); err != nil {
		return nil, fmt.Errorf("reset the target of %s %s: %w", j.tool, j.path, err)
	}
	msgs, bytes := c.acct.Messages, c.bytes
	if j.inbox {
		msgs, bytes = c.inboxStats()
	}
	base := result{size: c.acct.Messages, path: pathNames[j.path], tool: j.tool, msgs: msgs, bytes: bytes}
	tag := fmt.Sprintf("%d-%s-%s", c.acct.Messages, j.path, j.tool)
	var out []result
	var estimate time.Duration
	if c.plan && j.tool == "mailferry" {
		argv := j.argv(c)
		report := filepath.Join(c.work, "plan-"+tag+".json")
		argv[1] = "plan"
		argv = append(argv, "--report", report, "--probe-target")
		r := base
		r.what = "plan"
		ru, err := c.exec(ctx, tag+"-plan", argv, c.timeout)
		if err != nil {
			r.failed, r.note = true, err.Error()
		} else {
			r.took(ru)
			estimate, err = readEstimate(report)
			if err != nil {
				r.failed, r.note = true, err.Error()
			}
		}
		out = append(out, r)
	}
	c.log.Info("run", "size", c.acct.Messages, "path", pathNames[j.path], "tool", j.tool)
	r := base
	r.what = "copy"
	limit := c.timeout
	if j.tool != "mailferry" && c.others > 0 {
		limit = c.others
	}
	ru, err := c.exec(ctx, tag, j.argv(c), limit)
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	// getmail6 loses a SIGCHLD now and then (its child handler runs before
	// the parent waits), stalls for its timeout and gives up: measure it
	// again, up to three times, and say so.
	for try := 2; err != nil && j.tool == "getmail6" && try <= 3 && ctx.Err() == nil; try++ {
		c.log.Warn("getmail6 failed; measuring again", "attempt", try, "err", err)
		r.note = fmt.Sprintf("attempt %d (attempt %d: %v after %.0f s) ", try, try-1, err, ru.wall)
		if rerr := j.reset(c); rerr != nil {
			return out, rerr
		}
		ru, err = c.exec(ctx, fmt.Sprintf("%s-%d", tag, try), j.argv(c), limit)
	}
	r.took(ru)
	if err != nil {
		r.failed, r.note = true, r.note+err.Error()
	}
	c.checkTarget(j, &r)
	if !r.failed {
		r.copyThroughpt = float64(r.msgs) / r.wall
	}
	out = append(out, r)
	if estimate > 0 && len(out) == 2 {
		dev := (estimate.Seconds() - r.wall) / r.wall * 100
		within := "within"
		if dev > 30 || dev < -30 {
			within = "OUTSIDE"
		}
		out[0].note = fmt.Sprintf("plan estimate %.1f s vs measured copy %.1f s: %+.0f %% (%s ±30 %%)", estimate.Seconds(), r.wall, dev, within)
		out[0].check = fmt.Sprintf("est %.1f s (%+.0f %%)", estimate.Seconds(), dev)
	}
	if j.tool != "mailferry" {
		return out, nil
	}
	for k := 1; k <= c.reruns; k++ {
		r := base
		r.what = fmt.Sprintf("re-run %d", k)
		ru, err := c.exec(ctx, fmt.Sprintf("%s-rerun%d", tag, k), j.argv(c), c.timeout)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		r.took(ru)
		if err != nil {
			r.failed, r.note = true, err.Error()
		}
		c.checkTarget(j, &r)
		if k == c.reruns {
			size, err := dirSize(filepath.Join(c.work, "state", j.state))
			if err == nil {
				r.note = fmt.Sprintf("journal after %d runs: %.2f MB (%d bytes/message)", k+1, float64(size)/1e6, size/int64(max(r.msgs, 1)))
			}
		}
		out = append(out, r)
	}
	if c.resume && len(out) > 0 {
		if cp := out[len(out)-1-c.reruns]; cp.what == "copy" && !cp.failed {
			rs, err := c.measureResume(ctx, j, base, tag, cp.wall)
			out = append(out, rs...)
			if err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// measureResume copies again into an empty target, kills the run (SIGKILL)
// after half of copyWall, and resumes it with --log: the resume's row
// holds its wall time and RSS, the strict check of the result, and in its
// note the start-up until the first message was copied (the "first
// message copied" record of the log, against the moment it was started).
func (c *config) measureResume(ctx context.Context, j job, base result, tag string, copyWall float64) ([]result, error) {
	if err := j.reset(c); err != nil {
		return nil, fmt.Errorf("reset the target of %s %s: %w", j.tool, j.path, err)
	}
	half := time.Duration(copyWall / 2 * float64(time.Second))
	killed := base
	killed.what = "killed"
	ru, err := c.exec(ctx, tag+"-killed", j.argv(c), half)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	killed.took(ru)
	killed.check = "-"
	if err == nil {
		killed.note = "finished before it could be killed"
	} else {
		killed.note = "kill -9 after " + half.Round(time.Second).String()
	}
	r := base
	r.what = "resume"
	logPath := filepath.Join(c.work, "log-"+tag+"-resume.jsonl")
	os.Remove(logPath)
	start := time.Now()
	ru, err = c.exec(ctx, tag+"-resume", append(j.argv(c), "--log", logPath), c.timeout)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	r.took(ru)
	if err != nil {
		r.failed, r.note = true, err.Error()
	}
	c.checkTarget(j, &r)
	if first, err := firstCopied(logPath); err != nil {
		r.note = strings.TrimSpace(r.note + " " + err.Error())
	} else {
		r.note = strings.TrimSpace(fmt.Sprintf("resume start-up (start to first message copied): %.2f s %s", first.Sub(start).Seconds(), r.note))
	}
	return []result{killed, r}, nil
}

// firstCopied is the time of the "first message copied" record of a --log
// file.
func firstCopied(path string) (time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "first message copied" {
			return rec.Time, nil
		}
	}
	return time.Time{}, fmt.Errorf("no \"first message copied\" record in %s", path)
}

// checkTarget fills r.check: strict for mailferry, a file count otherwise.
func (c *config) checkTarget(j job, r *result) {
	root := j.target
	if j.strict {
		exp := c.exp
		if j.inbox {
			exp = c.inboxExpected()
		}
		v, err := exp.check(root)
		switch {
		case err != nil:
			r.check, r.failed = "error", true
			r.note = strings.TrimSpace(r.note + " check: " + err.Error())
		case !v.OK():
			r.check, r.failed = "FAIL", true
			r.note = strings.TrimSpace(r.note + " " + v.String() + "\n    " + strings.Join(v.Details, "\n    "))
		default:
			r.check = "exact"
		}
		return
	}
	n, err := countFiles(root)
	if err != nil {
		r.check = "error"
		r.note = strings.TrimSpace(r.note + " count: " + err.Error())
		return
	}
	r.check = fmt.Sprintf("%d files", n)
	if r.failed && strings.Contains(r.note, killedAfter) && n > 0 {
		r.partial = float64(n) / r.wall
		r.note += fmt.Sprintf("; it had copied %d of %d messages: %.0f msgs/s", n, r.msgs, r.partial)
	}
	if n != r.msgs {
		r.check += " (≠)"
	}
}

// inboxStats is the number and size of the account's INBOX messages.
func (c *config) inboxStats() (int, int64) {
	counts := folderCounts(c.acct.Messages)
	var b int64
	for i := 0; i < counts[0]; i++ {
		b += int64(len(generate(c.acct, counts, i).Body))
	}
	return counts[0], b
}

// inboxExpected is the oracle of a POP3 copy: INBOX only, into the
// target's INBOX, flags not carried (POP3 has none), dates from the
// message's Date header (mailferry's POP3 internal date).
func (c *config) inboxExpected() *expected {
	counts := folderCounts(c.acct.Messages)
	e := &expected{index: map[[32]byte]int32{}}
	for i := 0; i < counts[0]; i++ {
		m := generate(c.acct, counts, i)
		e.index[messageKey("INBOX", m.Body)] = int32(i)
		e.msgs = append(e.msgs, expectedMsg{flags: "", date: m.Date.Unix()})
	}
	return e
}

func readEstimate(file string) (time.Duration, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("read the plan report: %w", err)
	}
	var v struct {
		Plan struct {
			Estimate time.Duration `json:"estimate_ns"`
		} `json:"plan"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return 0, fmt.Errorf("read the plan report %s: %w", file, err)
	}
	return v.Plan.Estimate, nil
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			st, err := d.Info()
			if err != nil {
				return err
			}
			n += st.Size()
		}
		return nil
	})
	return n, err
}

// usage of one child process.
type rusage struct {
	wall, cpu, rssMB, load float64
}

// exec runs argv (its output into log-TAG.txt under --work) under limit,
// and returns its wall time, CPU time and peak RSS (the child's own, see
// below).
func (c *config) exec(ctx context.Context, tag string, argv []string, limit time.Duration) (rusage, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	logf, err := os.Create(filepath.Join(c.work, "log-"+tag+".txt"))
	if err != nil {
		return rusage{}, err
	}
	defer logf.Close()
	c.log.Debug("exec", "argv", strings.Join(argv, " "))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "MAILFERRY_SOURCE_PASSWORD="+dovecottest.Password, "MAILFERRY_TARGET_PASSWORD="+dovecottest.Password)
	cmd.Stdout, cmd.Stderr = logf, logf
	var ru rusage
	ru.load = loadAvg()
	// wait4's ru_maxrss is the child's peak only when it is above ours:
	// Go starts children with vfork semantics and the kernel carries the
	// parent's RSS high-water mark into the child at exec. Below that
	// floor, the child's own VmHWM, sampled while it runs, is the answer.
	floor := vmHWM("self")
	t0 := time.Now()
	err = cmd.Start()
	var sampled int64
	if err == nil {
		done := make(chan struct{})
		sampler := make(chan int64)
		go func() {
			pid, peak := strconv.Itoa(cmd.Process.Pid), int64(0)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				peak = max(peak, vmHWM(pid))
				select {
				case <-done:
					sampler <- peak
					return
				case <-tick.C:
				}
			}
		}()
		err = cmd.Wait()
		close(done)
		sampled = <-sampler
	}
	ru.wall = max(time.Since(t0).Seconds(), 0.001)
	if ps := cmd.ProcessState; ps != nil {
		ru.cpu = (ps.UserTime() + ps.SystemTime()).Seconds()
		kb := maxRSSKiB(ps)
		if kb <= floor && sampled > 0 {
			kb = sampled
		}
		ru.rssMB = float64(kb) / 1024
	}
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return ru, fmt.Errorf("%s: %s %s (log %s)", filepath.Base(argv[0]), killedAfter, limit, logf.Name())
		}
		return ru, fmt.Errorf("%s: %w (log %s)", filepath.Base(argv[0]), err, logf.Name())
	}
	return ru, nil
}

// loadAvg is the 1-minute load average (0 when unknown): on a shared
// machine, the context of a number.
func loadAvg() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	x, _ := strconv.ParseFloat(f[0], 64)
	return x
}

// vmHWM is the peak resident set size in KiB of process pid ("self": this
// one) from /proc (0 when unknown: the process is gone).
func vmHWM(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(ln, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// killedAfter starts the error of a run killed by its time bound.
const killedAfter = "killed after"

// repoRoot is the directory holding go.mod.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run from inside the mailferry module")
	}
	return filepath.Dir(mod), nil
}

// ratios sets, on each copy row of one path, how many times faster
// mailferry's copy was (msgs/s).
func ratios(rs []result) {
	var mf float64
	for _, r := range rs {
		if r.tool == "mailferry" && r.what == "copy" {
			mf = r.copyThroughpt
		}
	}
	for i := range rs {
		r := &rs[i]
		switch {
		case r.what != "copy" || mf == 0:
		case r.copyThroughpt > 0:
			r.ratio = fmt.Sprintf("%.2fx", mf/r.copyThroughpt)
		case r.partial > 0:
			r.ratio = fmt.Sprintf("~%.2fx", mf/r.partial)
		}
	}
}

func printTable(w io.Writer, res []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "msgs\tpath\ttool\trun\tMB\twall s\tmsgs/s\tMB/s\tpeak RSS MB\tCPU s\tload\tcheck\tmailferry ×\t")
	for _, r := range res {
		if r.skipped {
			continue
		}
		rate, mbs := "", ""
		switch {
		case r.what == "copy" && r.partial > 0:
			rate = fmt.Sprintf("~%.0f", r.partial)
		case r.what == "copy" && r.wall > 0 && !strings.Contains(r.note, killedAfter):
			rate = fmt.Sprintf("%.0f", float64(r.msgs)/r.wall)
			mbs = fmt.Sprintf("%.1f", float64(r.bytes)/1e6/r.wall)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.1f\t%.2f\t%s\t%s\t%.0f\t%.1f\t%.1f\t%s\t%s\t\n",
			r.msgs, r.path, r.tool, r.what, float64(r.bytes)/1e6, r.wall, rate, mbs, r.rssMB, r.cpu, r.load, r.check, r.ratio)
	}
	tw.Flush()
	for _, r := range res {
		if r.note != "" {
			fmt.Fprintf(w, "note: %d %s %s %s: %s\n", r.size, r.path, r.tool, r.what, r.note)
		}
	}
}
