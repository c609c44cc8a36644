package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailferry/mailferry/checkpoint"
)

const usageJobs = `Usage:
  mailferry jobs [--state DIR] [--json]       list the jobs in the state directory
  mailferry jobs forget [--state DIR] ID...   remove the state of these jobs

A job is one SOURCE TARGET pair (with its --to-folder); its state is a
directory named by its ID under the state directory, holding the journal of
what was copied. The list shows each job's source and target (never a
password), when it last ran, how many messages the journal records as
copied (done) and as begun but not confirmed (pending), and whether a run
is using it now (with that run's PID).

"forget" removes a job's state: the next run of that job starts without a
journal and asks the target about every message (nothing is copied twice).
It refuses while a run is using the job.
`

// jobInfo is one line of "mailferry jobs".
type jobInfo struct {
	ID       string    `json:"id"`
	Source   string    `json:"source,omitempty"`
	Target   string    `json:"target,omitempty"`
	ToFolder string    `json:"to_folder,omitempty"`
	LastRun  time.Time `json:"last_run"`
	Running  bool      `json:"running"`
	PID      int       `json:"pid,omitempty"`
	Done     int       `json:"done"`
	Pending  int       `json:"pending"`
	Bytes    int64     `json:"journal_bytes"`
	Error    string    `json:"error,omitempty"`
}

var jobIDPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// journalPath is where the journal of the job made of parts lives.
func journalPath(stateDir string, parts ...string) string {
	if stateDir == "" {
		stateDir = checkpoint.DefaultDir()
	}
	return filepath.Join(stateDir, checkpoint.JobID(parts...), "journal")
}

// runJobs is "mailferry jobs": list the jobs of the state directory, or
// forget some.
func runJobs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	forget := len(args) > 0 && args[0] == "forget"
	if forget {
		args = args[1:]
	}
	fs := flag.NewFlagSet("jobs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	state := fs.String("state", "", "state `DIR` (default $XDG_STATE_HOME/mailferry)")
	asJSON := fs.Bool("json", false, "print the list as JSON")
	var ids []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, usageJobs)
				fmt.Fprintln(stdout, "\nFlags:")
				fs.SetOutput(stdout)
				fs.PrintDefaults()
				return exitOK
			}
			fmt.Fprintf(stderr, "mailferry jobs: %v\n", err)
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		ids = append(ids, fs.Arg(0))
		args = fs.Args()[1:]
	}
	dir := *state
	if dir == "" {
		dir = checkpoint.DefaultDir()
	}
	if forget {
		return forgetJobs(ctx, dir, ids, stdout, stderr)
	}
	if len(ids) > 0 {
		fmt.Fprintf(stderr, "mailferry jobs: unexpected argument %q (did you mean \"mailferry jobs forget\"?)\n", ids[0])
		return exitUsage
	}
	jobs, err := listJobs(ctx, dir)
	if err != nil {
		fmt.Fprintf(stderr, "mailferry jobs: %v\n", err)
		return exitUsage
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jobs == nil {
			jobs = []jobInfo{}
		}
		if err := enc.Encode(jobs); err != nil {
			fmt.Fprintf(stderr, "mailferry jobs: %v\n", err)
			return exitUsage
		}
		return exitOK
	}
	if len(jobs) == 0 {
		fmt.Fprintf(stdout, "no jobs in %s\n", dir)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tLAST RUN\tDONE\tPENDING\tSOURCE -> TARGET")
	for _, j := range jobs {
		st := "idle"
		switch {
		case j.Running && j.PID > 0:
			st = fmt.Sprintf("running (pid %d)", j.PID)
		case j.Running:
			st = "running"
		case j.Error != "":
			st = "unreadable"
		}
		last := "-"
		if !j.LastRun.IsZero() {
			last = j.LastRun.Local().Format("2006-01-02 15:04")
		}
		route := j.Source + " -> " + j.Target
		if j.ToFolder != "" {
			route += " (into " + j.ToFolder + ")"
		}
		if j.Source == "" && j.Target == "" {
			route = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", j.ID, st, last, j.Done, j.Pending, route)
	}
	tw.Flush()
	for _, j := range jobs {
		if j.Error != "" {
			fmt.Fprintf(stderr, "mailferry jobs: %s: %s\n", j.ID, j.Error)
		}
	}
	return exitOK
}

// listJobs reads every job directory under dir, oldest run first. The
// journals are opened read-only: a running job is listed as it stands.
func listJobs(ctx context.Context, dir string) ([]jobInfo, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the state directory: %w", err)
	}
	var out []jobInfo
	for _, e := range ents {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if !e.IsDir() || !jobIDPattern.MatchString(e.Name()) {
			continue
		}
		jdir := filepath.Join(dir, e.Name())
		path := filepath.Join(jdir, "journal")
		fi, err := os.Stat(path)
		if err != nil {
			continue // not a job directory (or one being forgotten)
		}
		j := jobInfo{ID: e.Name(), LastRun: fi.ModTime(), Bytes: fi.Size()}
		// The note a run writes when it opens the journal: source, target,
		// --to-folder (no secrets).
		if b, err := os.ReadFile(filepath.Join(jdir, "job")); err == nil {
			lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			if len(lines) > 0 {
				j.Source = lines[0]
			}
			if len(lines) > 1 {
				j.Target = lines[1]
			}
			if len(lines) > 2 {
				j.ToFolder = lines[2]
			}
			if ni, err := os.Stat(filepath.Join(jdir, "job")); err == nil && ni.ModTime().After(j.LastRun) {
				j.LastRun = ni.ModTime()
			}
		}
		if pid, locked, err := checkpoint.Holder(path); err == nil {
			j.Running, j.PID = locked, pid
		}
		jr, err := checkpoint.OpenReadOnly(path)
		if err != nil {
			j.Error = err.Error()
		} else {
			jr.Keys(func(_ string, done bool) bool {
				if done {
					j.Done++
				} else {
					j.Pending++
				}
				return true
			})
			jr.Close()
		}
		out = append(out, j)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].LastRun.Before(out[b].LastRun) })
	return out, nil
}

// forgetJobs removes the state directories of ids, each under its
// journal's lock.
func forgetJobs(_ context.Context, dir string, ids []string, stdout, stderr io.Writer) int {
	if len(ids) == 0 {
		fmt.Fprintln(stderr, `mailferry jobs forget: which job? Give one or more IDs (see "mailferry jobs")`)
		return exitUsage
	}
	code := exitOK
	for _, id := range ids {
		if !jobIDPattern.MatchString(id) {
			fmt.Fprintf(stderr, "mailferry jobs forget: %q is not a job ID (16 hex digits, see \"mailferry jobs\")\n", id)
			code = exitUsage
			continue
		}
		jdir := filepath.Join(dir, id)
		if _, err := os.Stat(filepath.Join(jdir, "journal")); err != nil {
			fmt.Fprintf(stderr, "mailferry jobs forget: no job %s in %s\n", id, dir)
			code = exitUsage
			continue
		}
		if err := checkpoint.Remove(filepath.Join(jdir, "journal")); err != nil {
			fmt.Fprintf(stderr, "mailferry jobs forget: %s: %v\n", id, err)
			code = exitUsage
			continue
		}
		if err := os.RemoveAll(jdir); err != nil {
			fmt.Fprintf(stderr, "mailferry jobs forget: %s: %v\n", id, err)
			code = exitUsage
			continue
		}
		fmt.Fprintf(stdout, "forgot job %s\n", id)
	}
	return code
}
