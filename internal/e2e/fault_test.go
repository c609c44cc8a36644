package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/internal/testkit/faultproxy"
)

// faultOptions plans about `want` faults over `bytes` bytes through one
// proxy: mostly resets, some trickles, few stalls (each stall costs a
// worker the --timeout).
func faultOptions(seed uint64, bytes int64, want int) faultproxy.Options {
	avg := bytes / int64(want)
	return faultproxy.Options{
		Seed:        seed,
		Probability: 1,
		MinOffset:   0,
		MaxOffset:   2 * avg,
		Kinds: []faultproxy.Kind{faultproxy.Reset, faultproxy.Reset, faultproxy.Reset, faultproxy.Reset, faultproxy.Reset,
			faultproxy.Reset, faultproxy.Trickle, faultproxy.Trickle, faultproxy.Trickle, faultproxy.Stall},
		Stall:     3 * time.Second, // longer than --timeout 2s
		Trickle:   200,
		MaxFaults: 2 * want,
	}
}

func proxy(t *testing.T, target string, o faultproxy.Options) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(target, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func totalBytes(msgs []corpus.Message) int64 {
	var n int64
	for _, m := range msgs {
		n += int64(len(m.Body))
	}
	return n
}

// TestMigrationThroughFaults moves 2,000 messages through proxies that
// reset, stall and trickle the connections of both sides at random
// offsets; one run must finish with exit 0 and exactly one copy of each.
func TestMigrationThroughFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dv := dovecottest.Start(t, dovecottest.Options{})
	const n = 2000
	pop := inboxOnly(n, 41)
	imapMsgs := fullCorpus(n, 42)
	dv.Load(t, "pop", pop)
	dv.Load(t, "src", imapMsgs)

	tests := []struct {
		name, user, srcScheme, srcAddr, dst string
		want                                []corpus.Message
		seed                                uint64
	}{
		{"POP3 to IMAP", "pop", "pop3", dv.POP3, "dst", pop3Expect(pop, "INBOX"), 1},
		{"IMAP to IMAP", "src", "imap", dv.IMAP, "u1", imapMsgs, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bytes := totalBytes(tc.want)
			sp := proxy(t, tc.srcAddr, faultOptions(tc.seed, bytes, 35))
			tp := proxy(t, dv.IMAP, faultOptions(tc.seed+100, bytes, 35))
			start := time.Now()
			r := mf(t, secretEnv, "migrate",
				tc.srcScheme+"://"+tc.user+"@"+sp.Addr()+"?tls=none", "imap://"+tc.dst+"@"+tp.Addr()+"?tls=none",
				"--state", t.TempDir(), "--no-progress", "--timeout", "2s", "--workers", "4", "--retries", "20")
			took := time.Since(start)
			faults := sp.Faults() + tp.Faults()
			kinds := map[string]int{}
			for _, f := range append(sp.Log(), tp.Log()...) {
				kinds[f.Kind.String()]++
			}
			t.Logf("%s: %d messages, %d MB, %v, exit %d; faults: source %d (%d connections), target %d (%d connections), %v",
				tc.name, n, bytes>>20, took.Round(time.Millisecond), r.code, sp.Faults(), sp.Conns(), tp.Faults(), tp.Conns(), kinds)
			if r.code != 0 {
				t.Fatalf("one run through %d faults did not end with exit 0:\n%s", faults, tail(r.String(), 60))
			}
			if faults < 50 {
				t.Fatalf("only %d faults injected, want >= 50", faults)
			}
			checkReport(t, tc.name+" through faults", corpus.Compare(tc.want, dv.Dump(t, tc.dst), corpus.CompareOptions{NormalizeCRLF: true, Dates: true, Flags: tc.srcScheme == "imap"}))
		})
	}
}

// tail keeps the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
