// Command bench measures mailferry beside the tools users would otherwise
// pick (mbsync, getmail6), on the same private loopback Dovecot and the same
// deterministic corpus, in one run, and prints one table with mailferry's
// ratio to the anchor of each path. See BENCHMARKS.md.
//
//	go run ./cmd/mailferry-bench                       # 5,000 messages, seed 1
//	go run ./cmd/mailferry-bench --messages 50000 --only mailferry-i2i --rerun
//
// It drives the shell harness in ../shared/bench (dovecot-up.sh,
// make-corpus.py, load-corpus.sh, reset-user.sh, maildir-tool.py): every run
// is timed with /usr/bin/time -v (wall clock, peak RSS, CPU) under a
// timeout, and its result is counted against the corpus manifest (a fast run
// that loses or duplicates mail shows it in the table). Everything talks to
// 127.0.0.1 only; Dovecot is stopped at the end unless --keep.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	shared, work, repo string
	messages, seed     int
	big, bigMB         int
	portbase           int
	trashN             int
	only               []string
	sweep              []int
	rerun, keep        bool
	timeout            time.Duration
	log                *slog.Logger
}

// job is one measured run.
type job struct {
	name      string // selects it with --only
	tool      string
	path      string // IMAP->IMAP ...
	anchorOf  string // the path whose anchor this row is compared with ("" = it is an anchor)
	target    string // count.sh TARGET
	countArgs []string
	reset     func(c *config) error
	cmd       func(c *config) []string
	onlyInbox bool // the corpus part it copies (POP3: INBOX)
}

// result is one row of the table.
type result struct {
	tool, path                    string
	msgs                          int
	bytes                         int64
	wall, cpu, boxCPU             float64
	rssMB                         float64
	rc                            int
	found, missing, dups, changed int
	flagMismatch                  int
	load                          float64 // 1-minute load average before the run
	ratio                         string
	note                          string
}

func run(args []string, stdout, stderr io.Writer) int {
	c := &config{log: slog.New(slog.NewTextHandler(stderr, nil))}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.shared, "shared", "", "the shell harness `DIR` (default: ../shared/bench from the repository root)")
	fs.StringVar(&c.work, "work", filepath.Join(os.TempDir(), "mailferry-bench"), "scratch `DIR` (Dovecot, corpus, targets, logs)")
	fs.IntVar(&c.messages, "messages", 5000, "corpus size")
	fs.IntVar(&c.seed, "seed", 1, "corpus seed")
	fs.IntVar(&c.big, "big", 0, "number of big messages in the corpus (make-corpus.py --big)")
	fs.IntVar(&c.bigMB, "big-mb", 37, "attachment MB of a big message (make-corpus.py --big-mb)")
	fs.IntVar(&c.portbase, "portbase", 15000, "Dovecot ports: PORTBASE+143 IMAP, +110 POP3")
	only := fs.String("only", "", "comma list of runs (default all): "+strings.Join(jobNames(), ","))
	sweep := fs.String("sweep", "1,2,4,8", "--workers values to measure for mailferry IMAP->IMAP (empty: none)")
	fs.BoolVar(&c.rerun, "rerun", true, "also time a re-run with nothing to copy after each mailferry run")
	fs.BoolVar(&c.keep, "keep", false, "leave Dovecot running at the end")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Minute, "bound on each measured run")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *only != "" {
		c.only = strings.Split(*only, ",")
	}
	for _, s := range strings.Split(*sweep, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "bench: bad --sweep value %q\n", s)
			return 2
		}
		c.sweep = append(c.sweep, n)
	}
	if err := c.setup(); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	if !c.keep {
		defer c.down()
	}
	// Targets of the runs are moved aside (see aside) and deleted at the end.
	defer os.RemoveAll(filepath.Join(c.work, "trash"))
	res, err := c.measure(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
	}
	printTable(stdout, res)
	if err != nil {
		return 1
	}
	return 0
}

func (c *config) dovecotDir() string { return filepath.Join(c.work, "dovecot") }
func (c *config) corpusDir() string {
	return filepath.Join(c.work, fmt.Sprintf("corpus-%d-s%d-b%d", c.messages, c.seed, c.big))
}
func (c *config) bin() string            { return filepath.Join(c.work, "mailferry") }
func (c *config) targets() string        { return filepath.Join(c.work, "targets") }
func (c *config) imapPort() int          { return c.portbase + 143 }
func (c *config) pop3Port() int          { return c.portbase + 110 }
func (c *config) script(s string) string { return filepath.Join(c.shared, s) }

// sh runs a harness command, its output into the log file.
func (c *config) sh(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Output to a file, not a pipe: dovecot-up.sh leaves a daemon holding
	// its stdout, and a pipe would never reach EOF.
	logf, err := os.CreateTemp(c.work, "sh-*.log")
	if err != nil {
		return err
	}
	defer os.Remove(logf.Name())
	defer logf.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logf.Name())
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, tail(out))
	}
	return nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// setup starts Dovecot, builds and loads the corpus, builds mailferry.
func (c *config) setup() error {
	var err error
	if c.repo, err = repoRoot(); err != nil {
		return err
	}
	if c.shared == "" {
		c.shared = filepath.Join(filepath.Dir(c.repo), "shared", "bench")
	}
	if _, err := os.Stat(c.script("dovecot-up.sh")); err != nil {
		return fmt.Errorf("the shell harness is missing (--shared): %w", err)
	}
	if err := os.MkdirAll(c.targets(), 0o755); err != nil {
		return err
	}
	c.log.Info("starting Dovecot", "dir", c.dovecotDir(), "imap", c.imapPort(), "pop3", c.pop3Port())
	if err := c.sh(c.script("dovecot-up.sh"), c.dovecotDir(), strconv.Itoa(c.portbase)); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(c.corpusDir(), "summary.txt")); err != nil {
		c.log.Info("building the corpus", "dir", c.corpusDir())
		if err := c.sh("python3", c.script("make-corpus.py"), c.corpusDir(), "--messages", strconv.Itoa(c.messages),
			"--seed", strconv.Itoa(c.seed), "--big", strconv.Itoa(c.big), "--big-mb", strconv.Itoa(c.bigMB)); err != nil {
			return err
		}
	}
	c.log.Info("loading the corpus", "src", "all folders", "pop", "INBOX")
	// load-corpus.sh deletes the user's Maildir first: move it aside (see aside).
	c.aside(filepath.Join(c.dovecotDir(), "mail", "src", "Maildir"))
	c.aside(filepath.Join(c.dovecotDir(), "mail", "pop", "Maildir"))
	if err := c.sh(c.script("load-corpus.sh"), c.dovecotDir(), "src", c.corpusDir()); err != nil {
		return err
	}
	if err := c.sh(c.script("load-corpus.sh"), c.dovecotDir(), "pop", c.corpusDir(), "--only", "INBOX"); err != nil {
		return err
	}
	c.log.Info("building mailferry", "bin", c.bin())
	build := exec.Command("go", "build", "-o", c.bin(), "./cmd/mailferry")
	build.Dir = c.repo
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	if err := c.writeConfigs(); err != nil {
		return err
	}
	// Untimed warm-up: Dovecot builds its cache on the first FETCH after a
	// raw load; read both users once so that every tool meets a warm server.
	c.log.Info("warm-up read of src and pop (untimed)")
	for _, w := range []struct{ src, dir string }{
		{c.imapURL("src"), "warm-imap"}, {c.pop3URL(), "warm-pop3"},
	} {
		dir := filepath.Join(c.targets(), w.dir)
		c.aside(dir)
		cmd := exec.Command(c.bin(), "migrate", w.src, "maildir:"+dir, "--state", filepath.Join(c.work, "state", w.dir),
			"--no-progress", "-q")
		cmd.Env = c.env()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("warm-up %s: %w\n%s", w.dir, err, tail(out))
		}
		c.aside(dir)
		os.RemoveAll(filepath.Join(c.work, "state", w.dir))
	}
	return nil
}

func (c *config) down() {
	if err := c.sh(c.script("dovecot-down.sh"), c.dovecotDir()); err != nil {
		c.log.Warn("stop Dovecot", "err", err)
	}
}

// repoRoot is the directory holding go.mod (the module mailferry).
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

func (c *config) imapURL(user string) string {
	return fmt.Sprintf("imap://%s@127.0.0.1:%d?tls=none", user, c.imapPort())
}
func (c *config) pop3URL() string {
	return fmt.Sprintf("pop3://pop@127.0.0.1:%d?tls=none", c.pop3Port())
}

func (c *config) env() []string {
	return append(os.Environ(), "MAILFERRY_SOURCE_PASSWORD=secret", "MAILFERRY_TARGET_PASSWORD=secret")
}

func (c *config) mailferry(state, src, tgt string, extra ...string) []string {
	return append([]string{c.bin(), "migrate", src, tgt, "--state", filepath.Join(c.work, "state", state),
		"--no-progress"}, extra...)
}

// resetDst empties the target user and mbsync's state.
func resetDst(c *config) error {
	// reset-user.sh without its rm -rf: kick the user, move the Maildir
	// aside (see aside).
	c.sh("doveadm", "-c", filepath.Join(c.dovecotDir(), "dovecot.conf"), "kick", "dst")
	c.aside(filepath.Join(c.dovecotDir(), "mail", "dst", "Maildir"))
	os.RemoveAll(filepath.Join(c.work, "mbsync-state"))
	return os.MkdirAll(filepath.Join(c.work, "mbsync-state"), 0o755)
}

// aside moves a target of an earlier run out of the way instead of deleting
// it; the trash goes when the benchmark ends. Deleting thousands of files
// right before a run makes every file created in the next minute slow on
// this machine's ext4: perf showed half of the box's CPU in the kernel's
// inode allocator (find_inode_bit -> recently_deleted) skipping the
// just-freed inodes, whichever tool ran next.
func (c *config) aside(dir string) {
	if _, err := os.Stat(dir); err != nil {
		return
	}
	trash := filepath.Join(c.work, "trash")
	os.MkdirAll(trash, 0o755)
	c.trashN++
	if err := os.Rename(dir, filepath.Join(trash, fmt.Sprintf("%d-%d", os.Getpid(), c.trashN))); err != nil {
		c.log.Warn("move aside failed; deleting", "dir", dir, "err", err)
		os.RemoveAll(dir)
	}
}

func resetDir(dir string) func(*config) error {
	return func(c *config) error { c.aside(dir); return nil }
}

func resetState(state string, then func(*config) error) func(*config) error {
	return func(c *config) error {
		os.RemoveAll(filepath.Join(c.work, "state", state))
		return then(c)
	}
}

func jobNames() []string {
	var c config
	var out []string
	for _, j := range c.jobs() {
		out = append(out, j.name)
	}
	return out
}

func (c *config) jobs() []job {
	dst := "dovecot:" + c.dovecotDir() + ":dst"
	pop := []string{"--only", "INBOX", "--ignore-flags"}
	t := func(s string) string { return filepath.Join(c.targets(), s) }
	return []job{
		{name: "mbsync-i2i", tool: "mbsync", path: "IMAP->IMAP", target: dst, reset: resetDst,
			cmd: func(c *config) []string {
				return []string{"mbsync", "-c", filepath.Join(c.work, "mbsyncrc"), "-q", "i2i"}
			}},
		{name: "mailferry-i2i", tool: "mailferry", path: "IMAP->IMAP", anchorOf: "IMAP->IMAP", target: dst,
			reset: resetState("i2i", resetDst),
			cmd:   func(c *config) []string { return c.mailferry("i2i", c.imapURL("src"), c.imapURL("dst")) }},
		{name: "mbsync-i2m", tool: "mbsync", path: "IMAP->Maildir", target: t("mbsync-i2m"),
			reset: func(c *config) error { c.aside(t("mbsync-i2m")); return os.MkdirAll(t("mbsync-i2m"), 0o755) },
			cmd: func(c *config) []string {
				return []string{"mbsync", "-c", filepath.Join(c.work, "mbsyncrc"), "-q", "i2m"}
			}},
		{name: "mailferry-i2m", tool: "mailferry", path: "IMAP->Maildir", anchorOf: "IMAP->Maildir", target: t("mf-i2m"),
			reset: resetState("i2m", resetDir(t("mf-i2m"))),
			cmd:   func(c *config) []string { return c.mailferry("i2m", c.imapURL("src"), "maildir:"+t("mf-i2m")) }},
		{name: "getmail-p2m", tool: "getmail6", path: "POP3->Maildir", target: t("getmail-p2m"), onlyInbox: true,
			countArgs: []string{"--only", "INBOX", "--flat", "INBOX", "--ignore-flags"}, reset: resetGetmail,
			cmd: func(c *config) []string {
				return []string{"getmail", "--getmaildir", filepath.Join(c.work, "getmail-state"), "--rcfile", filepath.Join(c.work, "getmailrc")}
			}},
		{name: "mailferry-p2m", tool: "mailferry", path: "POP3->Maildir", anchorOf: "POP3->Maildir", target: t("mf-p2m"),
			onlyInbox: true, countArgs: pop, reset: resetState("p2m", resetDir(t("mf-p2m"))),
			cmd: func(c *config) []string { return c.mailferry("p2m", c.pop3URL(), "maildir:"+t("mf-p2m")) }},
		{name: "mailferry-p2i", tool: "mailferry", path: "POP3->IMAP", anchorOf: "POP3->Maildir", target: dst,
			onlyInbox: true, countArgs: pop, reset: resetState("p2i", resetDst),
			cmd: func(c *config) []string { return c.mailferry("p2i", c.pop3URL(), c.imapURL("dst")) }},
	}
}

func (c *config) want(name string) bool {
	return len(c.only) == 0 || slices.Contains(c.only, name)
}

// resetGetmail empties getmail's Maildir (owned by the mail user when run
// as root: getmail refuses to deliver as root) and its state.
func resetGetmail(c *config) error {
	d := filepath.Join(c.targets(), "getmail-p2m")
	c.aside(d)
	os.RemoveAll(filepath.Join(c.work, "getmail-state"))
	for _, s := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(d, s), 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(c.work, "getmail-state"), 0o755); err != nil {
		return err
	}
	if os.Getuid() == 0 {
		owner, err := os.ReadFile(filepath.Join(c.dovecotDir(), "mailowner"))
		if err != nil {
			return err
		}
		return c.sh("chown", "-R", strings.TrimSpace(string(owner)), d)
	}
	return nil
}

// writeConfigs writes mbsyncrc and getmailrc as ../shared/bench/anchors.sh does.
func (c *config) writeConfigs() error {
	mb := fmt.Sprintf(`IMAPAccount src
Host 127.0.0.1
Port %[1]d
User src
Pass secret
SSLType None
AuthMechs LOGIN

IMAPStore src
Account src

IMAPAccount dst
Host 127.0.0.1
Port %[1]d
User dst
Pass secret
SSLType None
AuthMechs LOGIN

IMAPStore dst
Account dst

MaildirStore local
Path %[2]s/mbsync-i2m/
Inbox %[2]s/mbsync-i2m/INBOX
SubFolders Verbatim

Channel i2i
Far :src:
Near :dst:
Patterns *
Create Near
Sync Pull
Expunge None
CopyArrivalDate yes
SyncState %[3]s/mbsync-state/

Channel i2m
Far :src:
Near :local:
Patterns *
Create Near
Sync Pull
Expunge None
CopyArrivalDate yes
SyncState *
`, c.imapPort(), c.targets(), c.work)
	if err := os.WriteFile(filepath.Join(c.work, "mbsyncrc"), []byte(mb), 0o600); err != nil {
		return err
	}
	user := ""
	if os.Getuid() == 0 { // getmail refuses to deliver as root
		owner, err := os.ReadFile(filepath.Join(c.dovecotDir(), "mailowner"))
		if err != nil {
			return err
		}
		uid := strings.Split(strings.TrimSpace(string(owner)), ":")[0]
		out, err := exec.Command("id", "-nu", uid).Output()
		if err != nil {
			return fmt.Errorf("name of uid %s: %w", uid, err)
		}
		user = "user = " + strings.TrimSpace(string(out))
	}
	gm := fmt.Sprintf(`[retriever]
type = SimplePOP3Retriever
server = 127.0.0.1
port = %d
username = pop
password = secret

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
`, c.pop3Port(), c.targets(), user)
	return os.WriteFile(filepath.Join(c.work, "getmailrc"), []byte(gm), 0o600)
}

// corpusStats counts the manifest: all folders, or INBOX only.
func (c *config) corpusStats(onlyInbox bool) (int, int64, error) {
	f, err := os.Open(filepath.Join(c.corpusDir(), "manifest.tsv"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	var n int
	var b int64
	for sc.Scan() {
		col := strings.Split(sc.Text(), "\t")
		if len(col) < 4 || (onlyInbox && col[1] != "INBOX") {
			continue
		}
		size, err := strconv.ParseInt(col[3], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("manifest: %w", err)
		}
		n++
		b += size
	}
	return n, b, sc.Err()
}

func (c *config) measure(stderr io.Writer) ([]result, error) {
	var res []result
	anchors := map[string]float64{}
	add := func(r result, anchorOf string) {
		if anchorOf == "" {
			if _, ok := anchors[r.path]; !ok && r.missing == 0 && r.rc == 0 {
				anchors[r.path] = float64(r.msgs) / r.wall
			}
		} else if a := anchors[anchorOf]; a > 0 {
			r.ratio = fmt.Sprintf("%.2fx %s", float64(r.msgs)/r.wall/a, shortPath(anchorOf))
		}
		res = append(res, r)
		fmt.Fprintf(stderr, "   %s %s: %.1f s, %.0f msgs/s, %.0f MB RSS, missing %d, duplicates %d %s\n",
			r.tool, r.path, r.wall, float64(r.msgs)/r.wall, r.rssMB, r.missing, r.dups, r.ratio)
	}
	for _, j := range c.jobs() {
		if !c.want(j.name) {
			continue
		}
		if _, err := exec.LookPath(j.cmd(c)[0]); err != nil {
			c.log.Warn("not installed; skipped", "tool", j.tool)
			continue
		}
		r, err := c.one(j, j.name, j.cmd(c), stderr)
		if err != nil {
			return res, err
		}
		// getmail6 loses a SIGCHLD now and then (its child handler notifies
		// before the parent waits), stalls for its socket timeout and gives
		// up: measure again, and say so.
		for try := 2; j.tool == "getmail6" && r.rc != 0 && try <= 3; try++ {
			fmt.Fprintf(stderr, "   getmail6 failed (rc %d, %.0f s): attempt %d\n", r.rc, r.wall, try)
			prev := fmt.Sprintf("attempt %d; attempt %d: rc %d after %.0f s", try, try-1, r.rc, r.wall)
			if r, err = c.one(j, fmt.Sprintf("%s-%d", j.name, try), j.cmd(c), stderr); err != nil {
				return res, err
			}
			r.note = prev
		}
		add(r, j.anchorOf)
		if c.rerun && j.tool == "mailferry" {
			r, err := c.timed(j, j.name+"-rerun", j.cmd(c), stderr) // same state: nothing to copy
			if err != nil {
				return res, err
			}
			r.path += " re-run"
			add(r, "")
		}
	}
	if c.want("sweep") || len(c.only) == 0 {
		for _, j := range c.jobs() {
			if j.name != "mailferry-i2i" {
				continue
			}
			for _, w := range c.sweep {
				r, err := c.one(j, fmt.Sprintf("%s-w%d", j.name, w), append(j.cmd(c), "--workers", strconv.Itoa(w)), stderr)
				if err != nil {
					return res, err
				}
				r.tool = fmt.Sprintf("mailferry -w%d", w)
				add(r, j.anchorOf)
			}
		}
	}
	return res, nil
}

func shortPath(p string) string {
	switch p {
	case "IMAP->IMAP", "IMAP->Maildir":
		return "mbsync"
	case "POP3->Maildir":
		return "getmail6"
	}
	return p
}

// one resets the target, runs the job and counts.
func (c *config) one(j job, tag string, argv []string, stderr io.Writer) (result, error) {
	if err := j.reset(c); err != nil {
		return result{}, fmt.Errorf("reset for %s: %w", j.name, err)
	}
	return c.timed(j, tag, argv, stderr)
}

// timed runs argv under /usr/bin/time -v; tag names its log files.
func (c *config) timed(j job, tag string, argv []string, stderr io.Writer) (result, error) {
	n, b, err := c.corpusStats(j.onlyInbox)
	if err != nil {
		return result{}, err
	}
	r := result{tool: j.tool, path: j.path, msgs: n, bytes: b}
	tf := filepath.Join(c.work, "time-"+tag+".txt")
	logf, err := os.Create(filepath.Join(c.work, "log-"+tag+".txt"))
	if err != nil {
		return r, err
	}
	defer logf.Close()
	fmt.Fprintf(stderr, "== %s (%s): %s\n", j.tool, j.path, strings.Join(argv, " "))
	full := append([]string{"-v", "-o", tf, "timeout", strconv.Itoa(int(c.timeout.Seconds()))}, argv...)
	cmd := exec.Command("/usr/bin/time", full...)
	cmd.Env = c.env()
	cmd.Stdout, cmd.Stderr = logf, logf
	r.load = loadAvg()
	busy0 := boxBusy()
	err = cmd.Run()
	r.boxCPU = boxBusy() - busy0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.rc = ee.ExitCode()
	case err != nil:
		return r, fmt.Errorf("run %s: %w", j.name, err)
	}
	if err := parseTime(tf, &r); err != nil {
		return r, err
	}
	return r, c.count(j, &r)
}

// boxBusy returns the machine's non-idle CPU seconds so far (/proc/stat):
// the tool, Dovecot, and whatever else runs on the box.
func boxBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy float64
	for i, s := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		v, _ := strconv.ParseFloat(s, 64)
		busy += v
	}
	return busy / 100 // USER_HZ
}

func loadAvg() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	x, _ := strconv.ParseFloat(f[0], 64)
	return x
}

func parseTime(file string, r *result) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read time -v output: %w", err)
	}
	var user, sys float64
	for _, ln := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(ln), ": ")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(k, "Elapsed (wall clock)"):
			var s float64
			for _, p := range strings.Split(v, ":") {
				x, _ := strconv.ParseFloat(p, 64)
				s = s*60 + x
			}
			r.wall = max(s, 0.01)
		case k == "Maximum resident set size (kbytes)":
			x, _ := strconv.ParseFloat(v, 64)
			r.rssMB = x / 1024
		case k == "User time (seconds)":
			user, _ = strconv.ParseFloat(v, 64)
		case k == "System time (seconds)":
			sys, _ = strconv.ParseFloat(v, 64)
		}
	}
	r.cpu = user + sys
	return nil
}

// count checks the target against the corpus with maildir-tool.py count.
func (c *config) count(j job, r *result) error {
	args := append([]string{c.script("maildir-tool.py"), "count", j.target, "--expect",
		filepath.Join(c.corpusDir(), "manifest.tsv")}, j.countArgs...)
	out, err := exec.Command("python3", append(args, "--json")...).Output()
	if err != nil && len(out) == 0 {
		return fmt.Errorf("count %s: %w", j.target, err)
	}
	var v struct {
		Total map[string]int `json:"total"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return fmt.Errorf("count %s: %w", j.target, err)
	}
	t := v.Total
	r.found, r.missing = t["found"], t["missing"]
	r.dups = t["found"] - t["expected"] + t["missing"]
	r.changed = t["modified"] + t["unknown"]
	r.flagMismatch = t["flag_mismatch"]
	return nil
}

func printTable(w io.Writer, res []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tool\tpath\tmsgs\tMB\twall s\tmsgs/s\tMB/s\tpeak RSS MB\tCPU s\tbox CPU s\tload\trc\tmissing\tduplicates\tmodified\tflags≠\tratio\t")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.2f\t%.0f\t%.1f\t%.0f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%d\t%s\t\n",
			r.tool, r.path, r.msgs, float64(r.bytes)/1e6, r.wall, float64(r.msgs)/r.wall, float64(r.bytes)/1e6/r.wall,
			r.rssMB, r.cpu, r.boxCPU, r.load, r.rc, r.missing, r.dups, r.changed, r.flagMismatch, r.ratio)
	}
	tw.Flush()
	for _, r := range res {
		if r.note != "" {
			fmt.Fprintf(w, "note: %s %s: %s\n", r.tool, r.path, r.note)
		}
	}
}
