package e2e

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/internal/testkit/pop3test"
)

// planJSON is the part of plan's --report the tests read.
type planJSON struct {
	Plan struct {
		ToCopy      int   `json:"to_copy"`
		ToCopyBytes int64 `json:"to_copy_bytes"`
		QuotaKnown  bool  `json:"quota_known"`
		QuotaLimit  int64 `json:"quota_limit"`
		OverQuota   bool  `json:"over_quota"`
	} `json:"plan"`
	Summary struct {
		Folders []struct {
			Source string `json:"source"`
			ToCopy int    `json:"to_copy"`
		} `json:"folders"`
	} `json:"summary"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
}

// TestPlanQuota: plan warns when the target quota is smaller than what is
// to copy, and its counts and bytes are what migrate then copies.
func TestPlanQuota(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{Users: []string{"src", "dst", "small"}, QuotaBytes: map[string]int64{"small": 20000}})
	msgs := corpus.Generate(corpus.Options{Messages: 60, Seed: 61})
	dv.Load(t, "src", msgs)
	dir := t.TempDir()
	src := "imap://src@" + dv.IMAP
	common := []string{"--ca-file", dv.CAFile, "--state", filepath.Join(dir, "state")}

	small := filepath.Join(dir, "small.json")
	r := mf(t, secretEnv, append([]string{"plan", src, "imap://small@" + dv.IMAP, "--report", small}, common...)...)
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, r.stdout, "WARNING", "does not fit", "Target quota:", "QUOTA", "UIDPLUS", "Estimate:", "TOTAL")
	mustContain(t, r.stderr, "exceeds the free target quota")
	var ps planJSON
	readJSON(t, small, &ps)
	if !ps.Plan.QuotaKnown || ps.Plan.QuotaLimit != 20480 || !ps.Plan.OverQuota || ps.Plan.ToCopy != len(msgs) {
		t.Fatalf("plan against the small quota: %+v", ps.Plan)
	}

	planFile, sumFile := filepath.Join(dir, "plan.json"), filepath.Join(dir, "migrate.json")
	r = mf(t, secretEnv, append([]string{"plan", src, "imap://dst@" + dv.IMAP, "--report", planFile}, common...)...)
	if r.code != 0 || strings.Contains(r.stdout, "WARNING") {
		t.Fatalf("plan without quota: %s", r)
	}
	var p planJSON
	readJSON(t, planFile, &p)
	if got := dv.Dump(t, "dst"); len(got) != 0 {
		t.Fatalf("plan copied %d messages", len(got))
	}
	r = mf(t, secretEnv, append([]string{"migrate", src, "imap://dst@" + dv.IMAP, "--report", sumFile}, common...)...)
	if r.code != 0 {
		t.Fatal(r)
	}
	var sum struct {
		Copied int   `json:"copied"`
		Bytes  int64 `json:"bytes"`
	}
	readJSON(t, sumFile, &sum)
	if p.Plan.ToCopy != len(msgs) || p.Plan.ToCopy != sum.Copied || p.Plan.ToCopyBytes != sum.Bytes {
		t.Fatalf("plan: %d messages, %d bytes; migrate copied %d messages, %d bytes (corpus %d)",
			p.Plan.ToCopy, p.Plan.ToCopyBytes, sum.Copied, sum.Bytes, len(msgs))
	}
	// Planned again: everything is done.
	r = mf(t, secretEnv, append([]string{"plan", src, "imap://dst@" + dv.IMAP, "--report", planFile}, common...)...)
	readJSON(t, planFile, &p)
	if r.code != 0 || p.Plan.ToCopy != 0 {
		t.Fatalf("plan after migrate: to copy %d\n%s", p.Plan.ToCopy, r)
	}
}

// TestDeleteSourceCrash moves a Dovecot POP3 mailbox into IMAP with
// --delete-source, SIGKILLed at random points: after every kill each
// message is in the source or the target (never lost); at the end the
// source is empty and the target holds each message exactly once.
func TestDeleteSourceCrash(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{Users: []string{"pop", "dst"}})
	msgs := inboxOnly(300, 77)
	dv.Load(t, "pop", msgs)
	want := pop3Expect(msgs, "INBOX")
	args := []string{"migrate", "pop3://pop@" + dv.POP3, "imap://dst@" + dv.IMAP, "--delete-source",
		"--ca-file", dv.CAFile, "--state", t.TempDir(), "--no-progress", "--workers", "3"}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	for i := 0; i < 5; i++ {
		kill, done := startKill(t, secretEnv, args...)
		time.Sleep(time.Duration(100+rng.IntN(700)) * time.Millisecond)
		finished := done()
		kill()
		// Nothing is lost: source ∪ target holds every message.
		have := map[string]bool{}
		for _, m := range dv.Dump(t, "pop") {
			have[corpus.Fingerprint(m.Body)] = true
		}
		for _, m := range dv.Dump(t, "dst") {
			have[corpus.Fingerprint(m.Body)] = true
		}
		for _, m := range msgs {
			if !have[corpus.Fingerprint(m.Body)] {
				t.Fatalf("after kill %d: message %s is in neither the source nor the target", i+1, m.MessageID)
			}
		}
		if finished {
			break
		}
	}
	r := mf(t, secretEnv, args...)
	if r.code != 0 {
		t.Fatal(r)
	}
	if left := dv.Dump(t, "pop"); len(left) != 0 {
		t.Fatalf("the source still holds %d messages", len(left))
	}
	checkReport(t, "POP3 move after kill -9", corpus.Compare(want, dv.Dump(t, "dst"), corpus.CompareOptions{NormalizeCRLF: true, Dates: true}))
}

// --- OAuth2 --------------------------------------------------------------

type nopLog struct{}

func (nopLog) Printf(string, ...any) {}

// startOAuthIMAP starts an in-memory IMAP server that accepts only the SASL
// mechanism mech (XOAUTH2 or OAUTHBEARER) with the given token.
func startOAuthIMAP(t *testing.T, mech, token string) (addr string) {
	t.Helper()
	const user, pw = "alice", "internal-only-pw"
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(user, pw)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			inner := mem.NewSession().(imapserver.SessionIMAP4rev2)
			return &oauthSession{SessionIMAP4rev2: inner, mech: mech, token: token, user: user, pw: pw}, nil, nil
		},
		// LITERAL+: the target stores over its own session (imapconn.Raw),
		// which then logs in with OAuth2 too.
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapLiteralPlus: {}, imap.Cap("AUTH=" + mech): {}},
		InsecureAuth: true,
		Logger:       nopLog{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

type oauthSession struct {
	imapserver.SessionIMAP4rev2
	mech, token, user, pw string
}

func (s *oauthSession) Login(string, string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "use OAuth2"}
}

func (s *oauthSession) AuthenticateMechanisms() []string { return []string{s.mech} }

func (s *oauthSession) Authenticate(mech string) (sasl.Server, error) {
	if mech != s.mech {
		return nil, errors.New("mechanism not offered")
	}
	return bearerServer(func(tok string) error {
		if tok != s.token {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "invalid token"}
		}
		return s.SessionIMAP4rev2.Login(s.user, s.pw)
	}), nil
}

// bearerServer reads "…auth=Bearer TOKEN\x01…" (XOAUTH2 and OAUTHBEARER
// share it) from the initial response.
type bearerServer func(token string) error

func (b bearerServer) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil {
		return []byte{}, false, nil
	}
	for _, f := range strings.Split(string(resp), "\x01") {
		if tok, ok := strings.CutPrefix(f, "auth=Bearer "); ok {
			return nil, true, b(tok)
		}
	}
	return nil, true, errors.New("no bearer token")
}

func TestOAuth2(t *testing.T) {
	const (
		popTok   = "ya29.pop-token-5f1c2a"
		xoTok    = "ya29.xoauth2-token-9b77e0"
		bearTok  = "ya29.oauthbearer-token-31d4ab"
		wrongTok = "ya29.wrong-token-000000"
	)
	msgs := inboxOnly(12, 5)
	var bodies [][]byte
	for _, m := range msgs {
		bodies = append(bodies, m.Body)
	}
	pop, err := pop3test.Start(pop3test.Options{User: "bob", Password: "unused-pop-pw-x", Messages: bodies, OAuth2Token: popTok})
	if err != nil {
		t.Fatal(err)
	}
	defer pop.Close()
	xo := startOAuthIMAP(t, "XOAUTH2", xoTok)
	bear := startOAuthIMAP(t, "OAUTHBEARER", bearTok)
	dir := t.TempDir()
	tokFile := func(name, tok string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(tok+"\n"), 0o600)
		return "cat " + p
	}
	state := filepath.Join(dir, "state")
	popURL := "pop3://bob@" + pop.Addr() + "?tls=none"

	// POP3 (SASL) → IMAP with XOAUTH2.
	r := mf(t, nil, "migrate", popURL, "imap://alice@"+xo+"?tls=none", "--state", state, "--no-progress",
		"--source-oauth2-token-command", tokFile("pop", popTok), "--target-oauth2-token-command", tokFile("xo", xoTok))
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, r.stdout, "copied         12 messages")
	// IMAP with XOAUTH2 as a source → IMAP with OAUTHBEARER.
	r = mf(t, nil, "migrate", "imap://alice@"+xo+"?tls=none", "imap://alice@"+bear+"?tls=none", "--state", state, "--no-progress",
		"--source-oauth2-token-command", tokFile("xo", xoTok), "--target-oauth2-token-command", tokFile("bear", bearTok))
	if r.code != 0 {
		t.Fatal(r)
	}
	mustContain(t, r.stdout, "copied         12 messages")

	// A wrong token: exit 3, on each server, and the token is not shown.
	for _, tc := range []struct{ name, src, tgt, side string }{
		{"POP3", popURL, "maildir:" + filepath.Join(dir, "md"), "source"},
		{"XOAUTH2", "maildir:" + filepath.Join(dir, "md"), "imap://alice@" + xo + "?tls=none", "target"},
		{"OAUTHBEARER", "imap://alice@" + bear + "?tls=none", "maildir:" + filepath.Join(dir, "md2"), "source"},
	} {
		os.MkdirAll(filepath.Join(dir, "md", "cur"), 0o700)
		r := mf(t, nil, "migrate", tc.src, tc.tgt, "--state", state, "--no-progress",
			"--"+tc.side+"-oauth2-token-command", tokFile("wrong", wrongTok))
		if r.code != 3 {
			t.Errorf("%s with a wrong token: want exit 3\n%s", tc.name, r)
		}
		if strings.Contains(r.stdout+r.stderr, wrongTok) {
			t.Errorf("%s: the token is printed\n%s", tc.name, r)
		}
	}
}

// TestNoSecretsAnywhere runs migrate, plan, verify and batch, succeeding
// and failing (wrong password, wrong token), with --log and --report, and
// finds none of the passwords and tokens in any output or file written.
func TestNoSecretsAnywhere(t *testing.T) {
	const (
		popPW    = "Pop-Pa55-7c1e9f"
		wrongPW  = "Wrong-Pa55-44aa01"
		imapTok  = "ya29.token-secret-b8e2d1"
		wrongTok = "ya29.token-wrong-6f00c3"
	)
	msgs := inboxOnly(8, 9)
	var bodies [][]byte
	for _, m := range msgs {
		bodies = append(bodies, m.Body)
	}
	pop, err := pop3test.Start(pop3test.Options{User: "bob", Password: popPW, Messages: bodies})
	if err != nil {
		t.Fatal(err)
	}
	defer pop.Close()
	imapAddr := startOAuthIMAP(t, "XOAUTH2", imapTok)
	dir := t.TempDir()
	out := filepath.Join(dir, "out") // everything the runs write
	os.MkdirAll(out, 0o700)
	sec := filepath.Join(dir, "secrets") // the token files (they hold secrets by design)
	os.MkdirAll(sec, 0o700)
	write := func(name, s string) string {
		p := filepath.Join(sec, name)
		os.WriteFile(p, []byte(s+"\n"), 0o600)
		return p
	}
	goodTok, badTok := "cat "+write("tok", imapTok), "cat "+write("bad", wrongTok)
	popURL := "pop3://bob@" + pop.Addr() + "?tls=none"
	tgt := "imap://alice@" + imapAddr + "?tls=none"
	st := filepath.Join(out, "state")
	n := 0
	next := func(ext string) string { n++; return filepath.Join(out, "f"+string(rune('a'+n))+ext) }
	var outputs []string
	run := func(env []string, wantCode int, args ...string) {
		t.Helper()
		r := mf(t, env, args...)
		if r.code != wantCode {
			t.Errorf("%v: want exit %d\n%s", args, wantCode, r)
		}
		outputs = append(outputs, r.stdout, r.stderr)
	}
	good := []string{"MAILFERRY_SOURCE_PASSWORD=" + popPW}
	bad := []string{"MAILFERRY_SOURCE_PASSWORD=" + wrongPW}
	common := func() []string {
		return []string{"--state", st, "--no-progress", "--log", next(".log"), "--report", next(".json"), "-v"}
	}
	run(good, 0, append([]string{"plan", popURL, tgt, "--target-oauth2-token-command", goodTok}, common()...)...)
	run(good, 0, append([]string{"migrate", popURL, tgt, "--target-oauth2-token-command", goodTok}, common()...)...)
	run(good, 0, append([]string{"verify", popURL, tgt, "--target-oauth2-token-command", goodTok}, common()...)...)
	run(bad, 3, append([]string{"migrate", popURL, tgt, "--target-oauth2-token-command", goodTok}, common()...)...)
	run(good, 3, append([]string{"migrate", popURL, tgt, "--target-oauth2-token-command", badTok}, common()...)...)
	run(bad, 3, append([]string{"plan", popURL, tgt, "--target-oauth2-token-command", badTok}, common()...)...)
	csv := "source,target,source_password,target_password,flags\n" +
		popURL + "," + tgt + ",env:GOOD,,--target-oauth2-token-command '" + goodTok + "'\n" +
		popURL + "," + "maildir:" + filepath.Join(out, "md") + ",env:BAD,,\n" +
		popURL + "," + "maildir:" + filepath.Join(out, "md2") + ",cmd:echo " + wrongPW + ",,\n" +
		popURL + "," + tgt + ",env:GOOD,,--target-oauth2-token-command '" + badTok + "'\n" +
		popURL + ",maildir:" + filepath.Join(out, "md3") + "," + wrongPW + ",,\n"
	csvFile := filepath.Join(sec, "batch.csv") // holds a password by mistake (line 6): must not be echoed
	os.WriteFile(csvFile, []byte(csv), 0o600)
	run([]string{"GOOD=" + popPW, "BAD=" + wrongPW}, 1, "batch", csvFile, "--state", st, "--no-progress", "--log", next(".log"),
		"--log-dir", filepath.Join(out, "logs"), "--report", next(".json"), "-v")

	secrets := []string{popPW, wrongPW, imapTok, wrongTok}
	for i, s := range outputs {
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("output %d shows a secret:\n%s", i, s)
			}
		}
	}
	grepTree(t, out, secrets...)
	// The test looked at something: logs, reports and journals exist.
	for _, glob := range []string{"*.log", "*.json", "logs/*.log", "state/*/journal"} {
		if m, _ := filepath.Glob(filepath.Join(out, glob)); len(m) == 0 {
			t.Errorf("no %s written", glob)
		}
	}
}

// grepTree fails when any file under root holds one of the secrets.
func grepTree(t *testing.T, root string, secrets ...string) {
	t.Helper()
	files := 0
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		files++
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s holds a secret", p)
			}
		}
		return nil
	})
	if files == 0 {
		t.Errorf("grepTree: no files under %s", root)
	}
}
