package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/internal/testkit/faultproxy"
)

// kindsOptions plans faults of every kind in both directions, placed by the
// upload's bytes (0..upMax), the download's (0..downMax) or both together.
// A stall outlasts --timeout 2s, so the client gives up and the held-back
// bytes still arrive afterwards.
func kindsOptions(seed uint64, upMax, downMax int64, maxFaults int) faultproxy.Options {
	return faultproxy.Options{
		Seed:        seed,
		Probability: 1,
		MaxOffset:   upMax + downMax,
		Offsets:     map[faultproxy.Direction][2]int64{faultproxy.Up: {0, upMax}, faultproxy.Down: {0, downMax}},
		Kinds: []faultproxy.Kind{faultproxy.Reset, faultproxy.Reset, faultproxy.Close, faultproxy.Close,
			faultproxy.HalfClose, faultproxy.HalfClose, faultproxy.Cut, faultproxy.Cut, faultproxy.Cut,
			faultproxy.Trickle, faultproxy.Trickle, faultproxy.Stall},
		Directions: []faultproxy.Direction{faultproxy.Up, faultproxy.Down, faultproxy.Down, faultproxy.Both},
		Stall:      3 * time.Second,
		Trickle:    300,
		Drain:      3 * time.Second,
		MaxFaults:  maxFaults,
	}
}

// faultSummary counts faults by kind and by kind/direction-hit.
func faultSummary(log []faultproxy.Fault) string {
	kinds := map[string]int{}
	for _, f := range log {
		kinds[f.Kind.String()]++
		kinds[f.Kind.String()+"/"+f.Hit.String()]++
	}
	keys := make([]string, 0, len(kinds))
	for k := range kinds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, kinds[k])
	}
	return strings.TrimSpace(b.String())
}

// blame names, for each stored copy that differs from its source message,
// the faults whose last forwarded bytes lie in the source's body: the fault
// the wrong copy came from.
func blame(want, got []corpus.Message, log []faultproxy.Fault) []string {
	fps := map[string]bool{}
	for _, m := range want {
		fps[corpus.Fingerprint(bytes.ReplaceAll(m.Body, []byte("\r\n"), []byte("\n")))] = true
	}
	var out []string
	for _, g := range got {
		if fps[corpus.Fingerprint(bytes.ReplaceAll(g.Body, []byte("\r\n"), []byte("\n")))] {
			continue
		}
		line := fmt.Sprintf("altered copy %s in %q, %d bytes", g.MessageID, g.Folder, len(g.Body))
		// The fault that ended the copy: its last bytes end it.
		for _, f := range log {
			if len(f.Before) > 0 && bytes.HasSuffix(g.Body, f.Before) {
				line += "\n    ends where this fault struck: " + f.String()
			}
		}
		for _, w := range want {
			if w.MessageID == "" || w.MessageID != g.MessageID || w.Folder != g.Folder {
				continue
			}
			line += fmt.Sprintf(" (source %d bytes", len(w.Body))
			if bytes.HasPrefix(w.Body, g.Body) {
				line += ", a prefix of it"
			}
			line += ")"
			for _, f := range log {
				if len(f.Before) >= 32 && bytes.Contains(w.Body, f.Before) && !bytes.HasSuffix(g.Body, f.Before) {
					line += "\n    also struck inside its source: " + f.String()
				}
			}
			break // the corpus's exact twins would repeat the same lines
		}
		out = append(out, line)
	}
	return out
}

// TestFaultKindsPerPath runs one migration per path through a proxy that
// resets, closes, half-closes, cuts, stalls and trickles its connections
// in both directions, at least 50 times; each must end with exit 0 and
// every message stored once, byte for byte. A failure lists the faults and,
// for each altered copy, the fault it ends at. MAILFERRY_FAULT_SEED=n tries
// other fault plans; MAILFERRY_FAULT_OUTPUT=dir keeps each run's output.
func TestFaultKindsPerPath(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dv := dovecottest.Start(t, dovecottest.Options{})
	imapMsgs := fullCorpus(400, 71)
	popMsgs := inboxOnly(400, 73)
	dv.Load(t, "src", imapMsgs)
	dv.Load(t, "pop", popMsgs)

	type path struct {
		name string
		// src and dst given the proxy's address; dump reads the result.
		src, dst func(proxy string) string
		// the proxied server, and the fault offsets for its upload and download
		server         string
		upMax, downMax int64
		want           []corpus.Message
		dump           func(t *testing.T) []corpus.Message
		opt            corpus.CompareOptions
		seed           uint64
	}
	imapSrcDir := filepath.Join(t.TempDir(), "imap-source")
	popDir := filepath.Join(t.TempDir(), "pop3-source")
	paths := []path{
		{
			name:   "IMAP source",
			src:    func(p string) string { return "imap://src@" + p + "?tls=none" },
			dst:    func(string) string { return "maildir:" + imapSrcDir },
			server: dv.IMAP, upMax: 200, downMax: 48 << 10,
			want: imapMsgs,
			dump: func(t *testing.T) []corpus.Message { return dovecottest.DumpMaildir(t, imapSrcDir) },
			opt:  compareAll, seed: 11,
		},
		{
			name:   "IMAP target",
			src:    func(string) string { return "imap://src@" + dv.IMAP + "?tls=none" },
			dst:    func(p string) string { return "imap://dst@" + p + "?tls=none" },
			server: dv.IMAP, upMax: 96 << 10, downMax: 1500,
			want: imapMsgs,
			dump: func(t *testing.T) []corpus.Message { return dv.Dump(t, "dst") },
			opt:  compareAll, seed: 12,
		},
		{
			name:   "POP3 source",
			src:    func(p string) string { return "pop3://pop@" + p + "?tls=none" },
			dst:    func(string) string { return "maildir:" + popDir },
			server: dv.POP3, upMax: 300, downMax: 96 << 10,
			want: pop3Expect(popMsgs, "INBOX"),
			dump: func(t *testing.T) []corpus.Message { return dovecottest.DumpMaildir(t, popDir) },
			// A Maildir keeps the bytes exactly as the POP3 server sent them.
			opt: corpus.CompareOptions{Dates: true}, seed: 13,
		},
	}
	for _, pc := range paths {
		t.Run(pc.name, func(t *testing.T) {
			// Most of a run is spent in timeouts and backoff: the paths
			// share the time.
			t.Parallel()
			seed := pc.seed
			if v := os.Getenv("MAILFERRY_FAULT_SEED"); v != "" { // to explore other plans
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					t.Fatalf("MAILFERRY_FAULT_SEED: %v", err)
				}
				seed += n * 100
			}
			p := proxy(t, pc.server, kindsOptions(seed, pc.upMax, pc.downMax, 70))
			start := time.Now()
			r := mf(t, secretEnv, "migrate", pc.src(p.Addr()), pc.dst(p.Addr()),
				"--state", t.TempDir(), "--no-progress", "--timeout", "2s", "--workers", "4", "--retries", "20")
			took := time.Since(start)
			log := p.Log()
			up, down := p.Bytes()
			t.Logf("%s (seed %d): %d messages, %d KiB, %v, exit %d; %d faults over %d connections (%d KiB up, %d KiB down): %s",
				pc.name, seed, len(pc.want), totalBytes(pc.want)>>10, took.Round(time.Millisecond), r.code, len(log), p.Conns(),
				up>>10, down>>10, faultSummary(log))
			if dir := os.Getenv("MAILFERRY_FAULT_OUTPUT"); dir != "" { // to study a run
				os.WriteFile(filepath.Join(dir, strings.ReplaceAll(pc.name, " ", "_")+".out"), []byte(r.String()), 0o644)
			}
			got := pc.dump(t)
			rep := corpus.Compare(pc.want, got, pc.opt)
			bad := r.code != 0 || !rep.OK() || rep.Found != rep.Expected
			if bad {
				for _, f := range log {
					t.Log("  ", f)
				}
				for _, b := range blame(pc.want, got, log) {
					t.Log(b)
				}
			}
			if r.code != 0 {
				t.Errorf("one run through %d faults ended with exit %d, want 0:\nstdout:\n%s\nstderr:\n%s", len(log), r.code, tail(r.stdout, 15), tail(r.stderr, 30))
			}
			if len(log) < 50 {
				t.Errorf("only %d faults injected, want >= 50", len(log))
			}
			checkReport(t, pc.name+" through faults", rep)
		})
	}
}
