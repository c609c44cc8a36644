package maildir

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/internal/maildirpp"
)

func openJob(t testing.TB, root, job string) *Target {
	t.Helper()
	o := quiet
	o.Job = job
	tg, err := Open(context.Background(), root, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

func tmpFiles(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

// TestCleanTmp: what a Target of job "j1" removes from tmp/ the first time
// it touches a folder, and what it leaves.
func TestCleanTmp(t *testing.T) {
	live := openJob(t, t.TempDir(), "j1") // another open Target of the job in this process
	tests := []struct {
		name   string
		file   string
		dir    bool
		age    time.Duration // how long ago the run that wrote it ended (by ctime)
		remove bool
	}{
		{"own job, killed run", "1700000000.M1P9Q1Rab.host.mferry-j1-0123456789ab", false, 0, true},
		{"own job, killed run, renamed on a collision", "1700000000.M1P9Q1Rab.host.a1b2c3d4e5f6.mferry-j1-0123456789ab", false, 0, true},
		{"own job, a day old", "u1.mferry-j1-0123456789ab", false, 24 * time.Hour, true},
		{"own job, open Target of this process", "u2.mferry-j1-" + live.writer, false, 48 * time.Hour, false},
		{"another job, recent", "u3.mferry-j2-0123456789ab", false, 0, false},
		{"another job, 35 hours", "u4.mferry-j2-0123456789ab", false, 35 * time.Hour, false},
		{"another job, 37 hours", "u5.mferry-j2-0123456789ab", false, 37 * time.Hour, true},
		{"no job, 37 hours", "u6.mferry--0123456789ab", false, 37 * time.Hour, true},
		{"Dovecot's deliver", "1700000000.M1P9Q1.host", false, 0, false},
		{"Dovecot's deliver, old", "1700000000.M2P9Q1.host", false, 100 * time.Hour, false},
		{"a mail client", "1700000000.123_4.client,S=10", false, 100 * time.Hour, false},
		{"tag without writer", "u7.mferry-j1", false, 100 * time.Hour, false},
		{"a directory", "d.mferry-j1-0123456789ab", true, 100 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "tmp", tt.file)
			var err error
			if tt.dir {
				err = os.Mkdir(p, 0o700)
			} else {
				err = os.WriteFile(p, []byte("partial"), 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			// ctime cannot be set back: look at the file from the future.
			n, _, err := cleanTmp(dir, "j1", time.Now().Add(tt.age))
			if err != nil {
				t.Fatal(err)
			}
			_, statErr := os.Lstat(p)
			if removed := os.IsNotExist(statErr); removed != tt.remove || (n == 1) != tt.remove {
				t.Errorf("removed = %v (count %d), want %v", removed, n, tt.remove)
			}
		})
	}
	t.Run("no job", func(t *testing.T) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "tmp"), 0o700)
		p := filepath.Join(dir, "tmp", "u.mferry--0123456789ab")
		os.WriteFile(p, nil, 0o600)
		if n, _, _ := cleanTmp(dir, "", time.Now()); n != 0 {
			t.Errorf("a Target without a job removed a recent file")
		}
	})
	t.Run("missing tmp", func(t *testing.T) {
		if n, _, err := cleanTmp(filepath.Join(t.TempDir(), "none"), "j1", time.Now()); n != 0 || err != nil {
			t.Errorf("cleanTmp of a missing folder = %d, %v", n, err)
		}
	})
}

// TestCleanOnTouch: Ensure, Send and Put clean the tmp/ of the folder they
// touch, once per Target; the files a Target writes carry its job.
func TestCleanOnTouch(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	openJob(t, root, "j1").Ensure(ctx, mailbox.Folder{Name: "A"})
	openJob(t, root, "j1").Ensure(ctx, mailbox.Folder{Name: "B"})
	stale := func(dir string) string {
		p := filepath.Join(root, dir, "tmp", "u.mferry-j1-0123456789ab")
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gone := func(p string) bool { _, err := os.Stat(p); return os.IsNotExist(err) }

	tg := openJob(t, root, "j1")
	a, b, inbox := stale(".A"), stale(".B"), stale("")
	if _, err := tg.Ensure(ctx, mailbox.Folder{Name: "A"}); err != nil || !gone(a) {
		t.Errorf("Ensure left the stale file (%v)", err)
	}
	if gone(b) || gone(inbox) {
		t.Error("Ensure of A cleaned other folders")
	}
	body := "Subject: x\r\n\r\nx\r\n"
	w, err := tg.Send(ctx, delivery("B", "s1", body), strings.NewReader(body))
	if err != nil || !gone(b) {
		t.Errorf("Send left the stale file (%v)", err)
	}
	if _, err := w(); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Put(ctx, delivery("INBOX", "p1", body), strings.NewReader(body)); err != nil || !gone(inbox) {
		t.Errorf("Put left the stale file (%v)", err)
	}
	// Once per Target and folder: a file appearing later is not looked at.
	later := stale(".A")
	tg.Ensure(ctx, mailbox.Folder{Name: "A"})
	if gone(later) {
		t.Error("a second Ensure cleaned again")
	}
	// A Target of another job leaves it.
	openJob(t, root, "j2").Ensure(ctx, mailbox.Folder{Name: "A"})
	if gone(later) {
		t.Error("a Target of another job removed the file")
	}

	// The names a Target writes carry its job and its writer token.
	tg2 := openJob(t, root, "j1")
	f, tmp, err := tg2.createTmp("C", filepath.Join(root, ".C"), "1700000000.M1P1.host")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if job, writer, ok := parseTag(filepath.Base(tmp)); !ok || job != "j1" || writer != tg2.writer {
		t.Errorf("tmp name %q: job %q writer %q", tmp, job, writer)
	}
	long := strings.Repeat("x", 200)
	if f, tmp, err := tg2.createTmp("C", filepath.Join(root, ".C"), long); err != nil || len(filepath.Base(tmp)) > 255 {
		t.Errorf("tmp name for a 200-byte unique: %d bytes, %v", len(filepath.Base(tmp)), err)
	} else {
		f.Close()
	}
	if _, err := Open(ctx, root, Options{Job: "no/slash"}); err == nil {
		t.Error("Open accepted a job tag with a slash")
	}
}

// gateReader gives its data in two halves and waits on gate between them.
type gateReader struct {
	first, rest []byte
	gate        chan struct{}
	reached     chan struct{}
}

func (g *gateReader) Read(p []byte) (int, error) {
	if len(g.first) > 0 {
		n := copy(p, g.first)
		g.first = g.first[n:]
		return n, nil
	}
	if g.reached != nil {
		close(g.reached)
		g.reached = nil
		<-g.gate
	}
	if len(g.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.rest)
	g.rest = g.rest[n:]
	return n, nil
}

// TestCleanKeepsLiveWrite: a Target of the same job touching the folder
// while another is in the middle of writing a message leaves that file;
// the message arrives whole.
func TestCleanKeepsLiveWrite(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	writer := openJob(t, root, "j1")
	body := strings.Repeat("0123456789abcdef", 64<<10)
	g := &gateReader{first: []byte(body[:len(body)/2]), rest: []byte(body[len(body)/2:]), gate: make(chan struct{}), reached: make(chan struct{})}
	reached := g.reached
	type res struct {
		base string
		err  error
	}
	done := make(chan res, 1)
	go func() {
		base, err := writer.Put(ctx, delivery("F", "live1", body), g)
		done <- res{base, err}
	}()
	<-reached
	dir := filepath.Join(root, ".F")
	if n := len(tmpFiles(t, dir)); n != 1 {
		t.Fatalf("%d files in tmp/ mid-write, want 1", n)
	}
	other := openJob(t, root, "j1")
	if _, err := other.Ensure(ctx, mailbox.Folder{Name: "F"}); err != nil {
		t.Fatal(err)
	}
	if n := len(tmpFiles(t, dir)); n != 1 {
		t.Fatalf("the file being written was removed")
	}
	close(g.gate)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "cur", r.base)); err != nil || fi.Size() != int64(len(body)) {
		t.Fatalf("stored message: %v %v", fi, err)
	}
	if n := len(tmpFiles(t, dir)); n != 0 {
		t.Errorf("%d files left in tmp/", n)
	}
}

const (
	killChildEnv = "MAILFERRY_MAILDIR_KILL_CHILD"
	killMsgSize  = 1 << 20
)

// killBody is message i: a header and a body of killMsgSize bytes in all.
func killBody(i int) string {
	h := fmt.Sprintf("Message-ID: <%d@kill>\r\nSubject: %d\r\n\r\n", i, i)
	line := fmt.Sprintf("message %06d\r\n", i)
	return h + strings.Repeat(line, (killMsgSize-len(h))/len(line)+1)[:killMsgSize-len(h)]
}

// slowReader gives 32 KB every 2 ms.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(2 * time.Millisecond)
	return s.r.Read(p[:min(len(p), 32<<10)])
}

// TestKill9LeavesNoTmp: a process writing large messages slowly into a
// Maildir is SIGKILLed mid-write, three times; each new process of the job
// removes the partial file of the one before, and a new Target of the job
// leaves tmp/ empty (a foreign file aside) and cur/ holding only whole
// messages, every acknowledged one among them.
func TestKill9LeavesNoTmp(t *testing.T) {
	if root := os.Getenv(killChildEnv); root != "" {
		killChild(root)
		return
	}
	root := t.TempDir()
	dir := filepath.Join(root, ".Big")
	foreign := filepath.Join(dir, "tmp", "1700000000.M1P1Q1.otherhost")
	var acked []string
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9LeavesNoTmp$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+root, "MAILFERRY_MAILDIR_KILL_ROUND="+strconv.Itoa(round))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		if !sc.Scan() { // one whole message stored
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: the child stored nothing", round)
		}
		acked = append(acked, sc.Text())
		if round == 0 {
			os.WriteFile(foreign, []byte("being delivered by someone else"), 0o600)
		}
		// Kill while a file of the next message is half written.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if partial(dir, round) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no partial file in tmp/", round)
			}
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() {
			acked = append(acked, sc.Text())
		}
		cmd.Wait()
		// The kill left its partial file; the round before's was removed
		// by this round's first Put.
		if got := tmpFiles(t, dir); len(got) != 2 {
			t.Fatalf("round %d: tmp/ holds %q after the kill, want the foreign file and one partial", round, got)
		}
	}

	tg := openJob(t, root, "kill9job")
	if _, err := tg.Ensure(context.Background(), mailbox.Folder{Name: "Big"}); err != nil {
		t.Fatal(err)
	}
	if got := tmpFiles(t, dir); !slices.Equal(got, []string{filepath.Base(foreign)}) {
		t.Errorf("tmp/ holds %q, want only the foreign file", got)
	}
	cur, err := os.ReadDir(filepath.Join(dir, "cur"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range cur {
		names = append(names, de.Name())
		_, size, _ := maildirpp.ParseFileName(de.Name())
		fi, err := de.Info()
		if err != nil || size != killMsgSize || fi.Size() != killMsgSize {
			t.Errorf("cur/%s: %d bytes, name says %d, want %d (%v)", de.Name(), fi.Size(), size, killMsgSize, err)
		}
	}
	for _, a := range acked {
		if !slices.Contains(names, a) {
			t.Errorf("acknowledged message %s not in cur/", a)
		}
	}
}

// partial reports whether tmp/ holds some bytes of a message of round.
func partial(dir string, round int) bool {
	des, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	for _, de := range des {
		if _, _, ok := parseTag(de.Name()); !ok || !strings.Contains(de.Name(), fmt.Sprintf(".M%dP", round)) {
			continue
		}
		if fi, err := de.Info(); err == nil && fi.Size() > 0 {
			return true
		}
	}
	return false
}

// killChild stores messages into root's folder Big until it is killed,
// printing each receipt once Put returned.
func killChild(root string) {
	o := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Job: "kill9job"}
	tg, err := Open(context.Background(), root, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	round := os.Getenv("MAILFERRY_MAILDIR_KILL_ROUND")
	for i := 0; ; i++ {
		body := killBody(i)
		d := delivery("Big", fmt.Sprintf("1700000000.M%sP%dQ%d.kill", round, os.Getpid(), i), body)
		base, err := tg.Put(context.Background(), d, slowReader{strings.NewReader(body)})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(base)
	}
}
