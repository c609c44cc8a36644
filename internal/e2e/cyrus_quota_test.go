package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/cyrustest"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

// countProxy forwards TCP connections to a server and counts them, the
// bytes the client sends, and its SEARCH commands (lookups for a message).
type countProxy struct {
	ln       net.Listener
	target   string
	conns    atomic.Int32
	upstream atomic.Int64
	searches atomic.Int32
	mu       sync.Mutex
	open     []net.Conn
}

func startCountProxy(t *testing.T, target string) *countProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.open {
			c.Close()
		}
	})
	return p
}

func (p *countProxy) addr() string { return p.ln.Addr().String() }

func (p *countProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			client.Close()
			continue
		}
		p.conns.Add(1)
		p.mu.Lock()
		p.open = append(p.open, client, server)
		p.mu.Unlock()
		go func() {
			n, _ := io.Copy(server, io.TeeReader(client, &searchCounter{n: &p.searches}))
			p.upstream.Add(n)
			server.Close()
		}()
		go func() {
			io.Copy(client, server)
			client.Close()
		}()
	}
}

// searchCounter counts " SEARCH " in what passes (a command split across
// two reads may be missed: the count is a measurement, not a check).
type searchCounter struct{ n *atomic.Int32 }

func (s *searchCounter) Write(p []byte) (int, error) {
	s.n.Add(int32(bytes.Count(p, []byte(" SEARCH "))))
	return len(p), nil
}

type quotaReport struct {
	Copied       int `json:"copied"`
	AlreadyThere int `json:"already_there"`
	Failed       int `json:"failed"`
	Failures     []struct {
		Folder string `json:"folder"`
		Reason string `json:"reason"`
	} `json:"failures"`
}

// oncePerSource checks that every message in the target is a distinct copy
// of a source message (the corpus has byte-identical twins: counted per
// fingerprint) and returns how many there are.
func oncePerSource(t *testing.T, src, got []corpus.Message) int {
	t.Helper()
	left := map[string]int{}
	for _, m := range src {
		left[corpus.Fingerprint(m.Body)]++
	}
	for _, m := range got {
		fp := corpus.Fingerprint(m.Body)
		if left[fp] == 0 {
			t.Errorf("stored message %q is not a source message, or is stored twice", m.MessageID)
		}
		left[fp]--
	}
	return len(got)
}

// TestCyrusOverQuota is issue 11 item 1: Cyrus refuses over quota with "NO
// Over quota" (no response code). The run stops the target within seconds
// on a few connections, exits 1 with every message either stored once or
// reported; after the quota is raised a re-run completes exactly once.
func TestCyrusOverQuota(t *testing.T) {
	msgs := cyrustest.Unchanged(inboxOnly(250, 111))
	var total int64
	for _, m := range msgs {
		total += int64(len(m.Body))
	}
	quotaKB := total / 3 / 1024
	dv := dovecottest.Start(t, dovecottest.Options{})
	dv.Load(t, "src", msgs)
	cy := cyrustest.Start(t, cyrustest.Options{Users: []string{"full", "fresh"}, QuotaKB: map[string]int64{"full": quotaKB}})
	src := "imap://src@" + dv.IMAP
	run := func(user, addr, state, report string) (result, time.Duration) {
		start := time.Now()
		r := mf(t, secretEnv, "migrate", src, "imap://"+user+"@"+addr+"?tls=none", "--ca-file", dv.CAFile,
			"--state", state, "--no-progress", "--report", report)
		return r, time.Since(start)
	}

	// A fresh run into an account without a quota: the reference speed.
	r, fresh := run("fresh", cy.IMAP, t.TempDir(), filepath.Join(t.TempDir(), "fresh.json"))
	if r.code != 0 {
		t.Fatal(r)
	}
	freshRate := float64(len(msgs)) / fresh.Seconds()

	p := startCountProxy(t, cy.IMAP)
	state := t.TempDir()
	report := filepath.Join(t.TempDir(), "report.json")
	r, el := run("full", p.addr(), state, report)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r)
	}
	var sum quotaReport
	readJSON(t, report, &sum)
	got := cy.Dump(t, "full")
	stored := oncePerSource(t, msgs, got)
	t.Logf("%d messages (%d KiB) into a %d KiB quota: %d copied, %d reported, in %s over %d connections, %d SEARCH",
		len(msgs), total/1024, quotaKB, sum.Copied, sum.Failed, el.Round(time.Millisecond), p.conns.Load(), p.searches.Load())
	if sum.Copied == 0 || sum.Copied+sum.Failed != len(msgs) || stored != sum.Copied {
		t.Fatalf("copied %d + failed %d != %d, or the target holds %d\n%s", sum.Copied, sum.Failed, len(msgs), stored, tail(r.String(), 30))
	}
	for _, f := range sum.Failures {
		if !strings.Contains(f.Reason, "quota") && !strings.Contains(f.Reason, "full") {
			t.Errorf("a failure that does not say over quota: %+v", f)
			break
		}
	}
	if el > time.Minute {
		t.Errorf("the over-quota run took %s", el)
	}
	// Each of the 4 workers holds a session for its stores, and one
	// for folders and lookups while it needs it; before, every refused
	// store cost a new login.
	if n := p.conns.Load(); n > 10 {
		t.Errorf("%d connections to the target", n)
	}

	// Raise the quota and run again: the rest arrives, each message once.
	c, err := cy.Login(cyrustest.Admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetQuota("user"+cy.Sep()+"full", map[imap.QuotaResourceType]int64{imap.QuotaResourceStorage: 4 * total / 1024}).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	// The same job (same address, same state): its journal knows what
	// the first run did. (Through another address it is another job,
	// whose first run reconciles with the target: also exactly once.)
	report2 := filepath.Join(t.TempDir(), "report2.json")
	conns0, searches0 := p.conns.Load(), p.searches.Load()
	r, resume := run("full", p.addr(), state, report2)
	if r.code != 0 {
		t.Fatalf("re-run after raising the quota:\n%s", r)
	}
	var sum2 quotaReport
	readJSON(t, report2, &sum2)
	got = cy.Dump(t, "full")
	if n := oncePerSource(t, msgs, got); n != len(msgs) {
		t.Fatalf("the target holds %d of %d messages after the re-run", n, len(msgs))
	}
	resumeRate := float64(sum2.Copied+sum2.AlreadyThere) / resume.Seconds()
	t.Logf("fresh run: %d msgs in %s (%.0f msgs/s); re-run after the quota: %d copied, %d already there in %s (%.0f msgs/s, %d connections, %d SEARCH)",
		len(msgs), fresh.Round(time.Millisecond), freshRate, sum2.Copied, sum2.AlreadyThere, resume.Round(time.Millisecond), resumeRate, p.conns.Load()-conns0, p.searches.Load()-searches0)
	if n := p.searches.Load() - searches0; n != 0 {
		t.Errorf("the re-run searched the target %d times for messages refused with a definite answer", n)
	}
}

// TestCyrusAppendLimit is issue 11 item 4: Cyrus announces
// APPENDLIMIT=1048576; plan warns of the 17 MB message, migrate reports it
// failed having sent under 1 MB of it, and copies the others.
func TestCyrusAppendLimit(t *testing.T) {
	const limit = 1 << 20
	msgs := cyrustest.Unchanged(inboxOnly(30, 112))
	var small int64
	for _, m := range msgs {
		if len(m.Body) > limit {
			t.Fatalf("corpus message of %d bytes", len(m.Body))
		}
		small += int64(len(m.Body))
	}
	var big bytes.Buffer
	fmt.Fprintf(&big, "From: a@example.com\r\nTo: b@example.org\r\nSubject: big\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <big@mailferry.test>\r\n\r\n")
	line := strings.Repeat("0123456789abcdef", 4) + "\r\n"
	for big.Len() < 17<<20 {
		big.WriteString(line)
	}
	all := append(append([]corpus.Message{}, msgs...), corpus.Message{Folder: "INBOX", Body: big.Bytes(), MessageID: "<big@mailferry.test>",
		Date: time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)})
	dv := dovecottest.Start(t, dovecottest.Options{})
	dv.Load(t, "src", all)
	cy := cyrustest.Start(t, cyrustest.Options{Users: []string{"dst"}, MaxMessageSize: limit})
	src := "imap://src@" + dv.IMAP

	planRep := filepath.Join(t.TempDir(), "plan.json")
	r := mf(t, secretEnv, "plan", src, "imap://dst@"+cy.IMAP+"?tls=none", "--ca-file", dv.CAFile,
		"--state", t.TempDir(), "--report", planRep)
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, r.stdout, "1 message(s)", "larger than the target's APPENDLIMIT (1.0 MB)")
	var pj struct {
		Plan struct {
			AppendLimit          int64 `json:"append_limit"`
			OverAppendLimit      int   `json:"over_append_limit"`
			OverAppendLimitBytes int64 `json:"over_append_limit_bytes"`
		} `json:"plan"`
	}
	readJSON(t, planRep, &pj)
	if pj.Plan.AppendLimit != limit || pj.Plan.OverAppendLimit != 1 || pj.Plan.OverAppendLimitBytes < 17<<20 {
		t.Errorf("plan report: %+v", pj.Plan)
	}

	p := startCountProxy(t, cy.IMAP)
	report := filepath.Join(t.TempDir(), "report.json")
	r = mf(t, secretEnv, "migrate", src, "imap://dst@"+p.addr()+"?tls=none", "--ca-file", dv.CAFile,
		"--state", t.TempDir(), "--no-progress", "--report", report)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r)
	}
	var sum quotaReport
	readJSON(t, report, &sum)
	if sum.Copied != len(msgs) || sum.Failed != 1 || !strings.Contains(sum.Failures[0].Reason, "APPENDLIMIT") {
		t.Errorf("copied %d of %d, failed %d: %+v", sum.Copied, len(msgs), sum.Failed, sum.Failures)
	}
	// Everything the client sent beyond the small messages (commands,
	// login) is far below the 1 MB bound.
	over := p.upstream.Load() - small
	t.Logf("sent %d bytes for %d bytes of small messages: %d beyond", p.upstream.Load(), small, over)
	if over >= 1<<20 {
		t.Errorf("%d bytes sent beyond the small messages: the big one went (partly) out", over)
	}
	if n := oncePerSource(t, msgs, cy.Dump(t, "dst")); n != len(msgs) {
		t.Errorf("the target holds %d of %d", n, len(msgs))
	}
}
