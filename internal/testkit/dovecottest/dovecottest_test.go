package dovecottest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
)

func TestLoadDump(t *testing.T) {
	tests := []struct {
		name string
		opt  Options
	}{
		{"separator slash", Options{}},
		{"INBOX. prefix with dot", Options{Separator: ".", Prefix: "INBOX."}},
	}
	msgs := corpus.Generate(corpus.Options{Messages: 300, Seed: 1})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			t0 := time.Now()
			s := Start(t, tc.opt)
			t1 := time.Now()
			s.Load(t, "src", msgs)
			t2 := time.Now()
			got := s.Dump(t, "src")
			t.Logf("start %v, load(300) %v, dump %v", t1.Sub(t0), t2.Sub(t1), time.Since(t2))
			rep := corpus.Compare(msgs, got, corpus.CompareOptions{Flags: true, Dates: true})
			if !rep.OK() {
				t.Fatalf("dump differs from the corpus: %s", rep)
			}
			// UIDs follow the order of the corpus within each folder.
			if a, b := order(msgs), order(got); !reflect.DeepEqual(a, b) {
				t.Fatal("UID order differs from the corpus order")
			}
			// The disk layout is the same for both namespace configurations.
			disk := DumpMaildir(t, s.Maildir("src"))
			if rep := corpus.Compare(msgs, disk, corpus.CompareOptions{NormalizeCRLF: true, Flags: true, Dates: true}); !rep.OK() {
				t.Fatalf("Maildir on disk differs from the corpus: %s", rep)
			}
		})
	}
}

func order(msgs []corpus.Message) map[string][]string {
	out := map[string][]string{}
	for _, m := range msgs {
		out[m.Folder] = append(out[m.Folder], corpus.Fingerprint(m.Body))
	}
	return out
}

// pop3 logs in over a raw socket and returns the STAT reply; a failed
// login returns the -ERR line.
func pop3(t *testing.T, addr, user string, hold bool) (string, net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(25 * time.Second)) // [IN-USE] takes ~10 s
	r := bufio.NewReader(c)
	cmd := func(line string) string {
		if line != "" {
			fmt.Fprintf(c, "%s\r\n", line)
		}
		s, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("POP3 %q: %v", line, err)
		}
		return strings.TrimRight(s, "\r\n")
	}
	if g := cmd(""); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("greeting %q", g)
	}
	cmd("USER " + user)
	if reply := cmd("PASS " + Password); !strings.HasPrefix(reply, "+OK") {
		c.Close()
		return reply, nil
	}
	stat := cmd("STAT")
	if hold {
		return stat, c
	}
	cmd("QUIT")
	c.Close()
	return stat, nil
}

func TestPOP3AndReset(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{POP3LockSession: true})
	msgs := corpus.Generate(corpus.Options{Messages: 40, Seed: 3, OnlyInbox: true})
	s.Load(t, "pop", msgs)
	var size int
	for _, m := range msgs {
		size += len(m.Body)
	}
	want := fmt.Sprintf("+OK %d %d", len(msgs), size) // POP3 sizes are the CRLF sizes
	stat, held := pop3(t, s.POP3, "pop", true)
	if stat != want {
		t.Fatalf("STAT = %q, want %q", stat, want)
	}
	// pop3_lock_session = yes: a second session is refused with [IN-USE]
	// (after Dovecot's fixed ~10 s wait for the lock).
	if reply, _ := pop3(t, s.POP3, "pop", false); !strings.Contains(reply, "[IN-USE]") {
		t.Fatalf("second POP3 session: %q, want [IN-USE]", reply)
	}
	held.Close()

	s.Reset(t, "pop")
	if got := s.Dump(t, "pop"); len(got) != 0 {
		t.Fatalf("after Reset the user has %d messages", len(got))
	}
	if stat, _ := pop3(t, s.POP3, "pop", false); stat != "+OK 0 0" {
		t.Fatalf("STAT after Reset = %q", stat)
	}
	// Load replaces what was there.
	s.Load(t, "pop", msgs[:5])
	s.Load(t, "pop", msgs[5:7])
	if got := s.Dump(t, "pop"); !corpus.Compare(msgs[5:7], got, corpus.CompareOptions{Flags: true, Dates: true}).OK() {
		t.Fatalf("second Load did not replace the first: %d messages", len(got))
	}
}

func TestTLSWithCAFile(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Users: []string{"a"}})
	pemData, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatal("CAFile holds no certificate")
	}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		for _, a := range []string{s.IMAPS, s.POP3S} {
			_, port, _ := net.SplitHostPort(a)
			d := &net.Dialer{Timeout: 5 * time.Second}
			c, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort("127.0.0.1", port), &tls.Config{RootCAs: pool, ServerName: host})
			if err != nil {
				t.Fatalf("TLS to %s as %s: %v", a, host, err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err != nil || !(strings.HasPrefix(line, "* OK") || strings.HasPrefix(line, "+OK")) {
				t.Fatalf("greeting over TLS from %s: %q %v", a, line, err)
			}
		}
	}
	// Without the CA the certificate is not trusted.
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.IMAPS, &tls.Config{ServerName: "127.0.0.1"})
	if err == nil {
		c.Close()
		t.Fatal("the self-signed certificate was trusted without the CA file")
	}
}

func TestQuota(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Users: []string{"q", "free"}, QuotaBytes: map[string]int64{"q": 50000}})
	out := s.Doveadm(t, "quota", "get", "-u", "q")
	limit := ""
	for _, ln := range strings.Split(out, "\n") {
		if f := strings.Fields(ln); len(f) >= 6 && f[2] == "STORAGE" {
			limit = f[4]
		}
	}
	if limit != "49" { // doveadm shows KiB, rounded up: 50000 B
		t.Fatalf("doveadm quota get: storage limit %q, want 49:\n%s", limit, out)
	}
	// Over the quota, APPEND is refused with [OVERQUOTA].
	c, err := imapclient.DialInsecure(s.IMAP, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("q", Password).Wait(); err != nil {
		t.Fatal(err)
	}
	body := []byte("Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef01234567890123\r\n", 1000))
	app := c.Append("INBOX", int64(len(body)), nil)
	app.Write(body)
	app.Close()
	if _, err := app.Wait(); err == nil || !strings.Contains(err.Error(), "OVERQUOTA") {
		t.Fatalf("APPEND of %d bytes over a 50000-byte quota: %v, want [OVERQUOTA]", len(body), err)
	}
	if out := s.Doveadm(t, "quota", "get", "-u", "free"); strings.Contains(out, "STORAGE") && !strings.Contains(out, "-") {
		t.Fatalf("user without quota has one: %s", out)
	}
}

func TestDumpMaildirKeywordsAndNames(t *testing.T) {
	root := t.TempDir()
	write := func(rel, body string, mtime int64) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, time.Unix(mtime, 0), time.Unix(mtime, 0))
	}
	write("cur/1.a,S=3:2,FSa", "a\r\n", 1000)
	write("new/2.b", "b\n", 2000)
	write("dovecot-keywords", "0 $Forwarded\n1 Junk\n", 0)
	write(".R&-D.v1&AC4-2/cur/3.c:2,Rb", "c\r\n", 3000)
	write(".R&-D.v1&AC4-2/dovecot-keywords", "1 Junk\n", 0)
	write("."+mutf7Encode("أرشيف")+"/cur/4.d:2,", "d\r\n", 4000)
	write(".R&-D.v1&AC4-2/tmp/5.torn", "partial", 5000)
	got := DumpMaildir(t, root)
	want := []corpus.Message{
		{Folder: "INBOX", Body: []byte("a\r\n"), Flags: []string{"$Forwarded", `\Flagged`, `\Seen`}, Date: time.Unix(1000, 0)},
		{Folder: "INBOX", Body: []byte("b\n"), Date: time.Unix(2000, 0)},
		{Folder: "R&D/v1.2", Body: []byte("c\r\n"), Flags: []string{"Junk", `\Answered`}, Date: time.Unix(3000, 0)},
		{Folder: "أرشيف", Body: []byte("d\r\n"), Date: time.Unix(4000, 0)},
	}
	if rep := corpus.Compare(want, got, corpus.CompareOptions{Flags: true, Dates: true}); !rep.OK() {
		t.Fatalf("DumpMaildir: %s", rep)
	}
	if got := DumpMaildir(t, filepath.Join(root, "none")); len(got) != 0 {
		t.Fatalf("a missing root gave %d messages", len(got))
	}
	for _, name := range []string{"INBOX", "A/B", "R&D", "أرشيف/الرياض", "Q4 Reports"} {
		if d := FolderDir(name); name != "INBOX" && mutf7Decode(d[1:]) != strings.ReplaceAll(name, "/", ".") {
			t.Errorf("FolderDir(%q) = %q does not decode back", name, d)
		}
	}
}

// TestLoad5000 measures Load with a big corpus (MAILFERRY_DOVECOT_BENCH=1).
func TestLoad5000(t *testing.T) {
	if os.Getenv("MAILFERRY_DOVECOT_BENCH") == "" {
		t.Skip("set MAILFERRY_DOVECOT_BENCH=1 to time Load(5000)")
	}
	msgs := corpus.Generate(corpus.Options{Messages: 5000, Seed: 1})
	t0 := time.Now()
	s := Start(t, Options{})
	t1 := time.Now()
	s.Load(t, "src", msgs)
	t2 := time.Now()
	got := s.Dump(t, "src")
	t.Logf("Start %v, Load(5000) %v, Dump %v", t1.Sub(t0), t2.Sub(t1), time.Since(t2))
	if rep := corpus.Compare(msgs, got, corpus.CompareOptions{Flags: true, Dates: true}); !rep.OK() {
		t.Fatal(rep)
	}
}
