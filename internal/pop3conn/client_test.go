package pop3conn

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/source"
)

func TestListingsAndRetr(t *testing.T) {
	c, done := dialScript(t, cfgFor(""), concat(loginUserPass, []string{
		"C: STAT",
		"S: +OK 2 320",
		"C: UIDL",
		"S: +OK unique-id listing follows",
		"S: 1 whqtswO00WBw418f9t5JxYwZ",
		"S: 2 QhdPYR:00WBw1Ph7x7",
		"S: .",
		"C: LIST",
		"S: +OK 2 messages (320 octets)",
		"S: 1 120",
		"S: 2 200",
		"S: .",
		"C: RETR 1",
		"S: +OK 120 octets",
		"R: Subject: dots\r\n\r\n..leading dot\r\n..\r\nbare\nlf\r\n...\r\n",
		"S: .",
		"C: QUIT",
		"S: +OK bye",
	})...)
	ctx := context.Background()
	if !c.HasCapability("uidl") || c.HasCapability("PIPELINING") {
		t.Errorf("capabilities = %v", c.Capabilities())
	}
	n, size, err := c.Stat(ctx)
	if err != nil || n != 2 || size != 320 {
		t.Fatalf("Stat = %d, %d, %v", n, size, err)
	}
	ids, err := c.UIDL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[1] != (MsgID{2, "QhdPYR:00WBw1Ph7x7"}) {
		t.Errorf("UIDL = %v", ids)
	}
	sizes, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 2 || sizes[1] != (MsgSize{2, 200}) {
		t.Errorf("LIST = %v", sizes)
	}
	r, err := c.Retr(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	want := "Subject: dots\r\n\r\n.leading dot\r\n.\r\nbare\nlf\r\n..\r\n"
	if string(b) != want {
		t.Errorf("RETR body = %q, want %q", b, want)
	}
	if err := c.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	waitScript(t, done)
}

func TestRetrUnreadBodyIsDrained(t *testing.T) {
	c, done := dialScript(t, cfgFor(""), concat(loginUserPass, []string{
		"C: RETR 1",
		"S: +OK",
		"S: line one",
		"S: ..",
		"S: .",
		"C: NOOP",
		"S: +OK",
	})...)
	if _, err := c.Retr(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Noop(context.Background()); err != nil {
		t.Fatalf("NOOP after an unread body: %v", err)
	}
	c.Close()
	waitScript(t, done)
}

func TestLoginErrors(t *testing.T) {
	greet := []string{"S: +OK ready", "C: CAPA", "S: -ERR no CAPA here"}
	userPass := func(reply string) []string {
		return concat(greet, []string{"C: USER bob", "S: +OK", "C: PASS hunter2", "S: " + reply})
	}
	tests := []struct {
		name     string
		steps    []string
		kind     failure.Kind
		single   bool
		contains string
	}{
		{"wrong password", userPass("-ERR [AUTH] Authentication failed."), failure.Auth, false,
			`login failed for "bob": -ERR [AUTH] Authentication failed.`},
		{"wrong password without code", userPass("-ERR invalid password"), failure.Auth, false, "invalid password"},
		{"in use", userPass("-ERR [IN-USE] Mailbox locked"), failure.Temporary, true, "IN-USE"},
		{"login delay", userPass("-ERR [LOGIN-DELAY] wait 5 minutes"), failure.Temporary, false, "LOGIN-DELAY"},
		{"sys temp", userPass("-ERR [SYS/TEMP] backend down"), failure.Temporary, false, "SYS/TEMP"},
		{"sys perm", userPass("-ERR [SYS/PERM] account disabled"), failure.Fatal, false, "SYS/PERM"},
		{"user refused", concat(greet, []string{"C: USER bob", "S: -ERR [AUTH] plaintext disallowed"}), failure.Auth, false, "plaintext"},
		{"greeting refused", []string{"S: -ERR [SYS/TEMP] too many connections"}, failure.Temporary, false, "too many"},
		{"not pop3", []string{"S: * OK IMAP4rev1"}, failure.Fatal, false, "not a POP3 server"},
		{"hangup", []string{"S: +OK ready", "C: CAPA", "CLOSE"}, failure.Temporary, false, "closed the connection"},
		{"auth plain refused", []string{"S: +OK ready", "C: CAPA", "S: +OK", "S: SASL PLAIN", "S: .",
			"C: AUTH PLAIN AGJvYgBodW50ZXIy", "S: -ERR [AUTH] Authentication failed."}, failure.Auth, false, "Authentication failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, done := scriptServer(t, tt.steps...)
			cfg := cfgFor(addr)
			_, err := Dial(context.Background(), cfg)
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			if k := failure.KindOf(err); k != tt.kind {
				t.Errorf("kind = %v, want %v (%v)", k, tt.kind, err)
			}
			if got := errors.Is(err, source.ErrSingleSession); got != tt.single {
				t.Errorf("errors.Is(ErrSingleSession) = %v", got)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not contain %q", err, tt.contains)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %q", err)
			}
			if !strings.HasPrefix(err.Error(), "pop3 "+addr+": ") {
				t.Errorf("error %q does not name the server", err)
			}
			if e, ok := AsError(err); ok {
				if strings.Contains(e.Cmd, "hunter2") || strings.Contains(e.Cmd, "AGJvYgBodW50ZXIy") {
					t.Errorf("Error.Cmd leaks the password: %q", e.Cmd)
				}
				if !strings.HasPrefix(e.Cmd, "PASS") && !strings.HasPrefix(e.Cmd, "USER") && !strings.HasPrefix(e.Cmd, "AUTH") && e.Cmd != "greeting" {
					t.Errorf("Error.Cmd = %q", e.Cmd)
				}
			}
			waitScript(t, done)
		})
	}
}

func TestAuthPlain(t *testing.T) {
	// "\x00bob\x00hunter2" in base64
	c, done := dialScript(t, cfgFor(""),
		"S: +OK ready",
		"C: CAPA", "S: +OK", "S: SASL PLAIN", "S: .",
		"C: AUTH PLAIN AGJvYgBodW50ZXIy", "S: +OK",
		"C: CAPA", "S: +OK", "S: SASL PLAIN", "S: .",
		"C: NOOP", "S: +OK")
	if err := c.Noop(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitScript(t, done)
}

func TestSTLSRequiredButNotOffered(t *testing.T) {
	addr, done := scriptServer(t, "S: +OK ready", "C: CAPA", "S: +OK", "S: USER", "S: .")
	cfg := cfgFor(addr)
	cfg.Security = STARTTLS
	_, err := Dial(context.Background(), cfg)
	if !failure.Is(err, failure.TLS) {
		t.Fatalf("err = %v (kind %v), want a TLS error", err, failure.KindOf(err))
	}
	for _, want := range []string{"does not offer STLS", "tls=none"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	waitScript(t, done)
}

func TestStalledServer(t *testing.T) {
	tests := []struct {
		name  string
		steps []string
		op    func(c *Client) error
	}{
		{"greeting", []string{"STALL"}, nil},
		{"in the middle of a body", concat(loginUserPass, []string{"C: RETR 1", "S: +OK", "S: first line", "STALL"}),
			func(c *Client) error {
				r, err := c.Retr(context.Background(), 1)
				if err != nil {
					return err
				}
				_, err = io.ReadAll(r)
				return err
			}},
		{"status line", concat(loginUserPass, []string{"C: NOOP", "STALL"}),
			func(c *Client) error { return c.Noop(context.Background()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := scriptServer(t, tt.steps...)
			cfg := cfgFor(addr)
			cfg.Timeout = 200 * time.Millisecond
			start := time.Now()
			c, err := Dial(context.Background(), cfg)
			if err == nil {
				defer c.Close()
				err = tt.op(c)
			}
			if err == nil {
				t.Fatal("no error from a stalled server")
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v", el)
			}
			if !failure.Is(err, failure.Temporary) || !strings.Contains(err.Error(), "did not answer within 200ms") {
				t.Errorf("err = %v (kind %v)", err, failure.KindOf(err))
			}
		})
	}
}

func TestContextCancelClosesConnection(t *testing.T) {
	addr, _ := scriptServer(t, concat(loginUserPass, []string{"C: NOOP", "STALL"})...)
	cfg := cfgFor(addr)
	cfg.Timeout = 10 * time.Second
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.Noop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("cancel took %v", time.Since(start))
	}
	if err := c.Noop(context.Background()); err == nil {
		t.Error("the connection is still used after a cancel")
	}
}

func TestPipelining(t *testing.T) {
	body := func(n string) []string { return []string{"S: +OK", "S: message " + n, "S: ."} }
	t.Run("batched", func(t *testing.T) {
		// All three RETRs must arrive before the first answer.
		c, done := dialScript(t, cfgFor(""), concat(withPipelining(loginUserPass),
			[]string{"C: RETR 1", "C: RETR 2", "C: RETR 3"}, body("1"), body("2"), body("3"))...)
		var got []string
		err := c.RetrMany(context.Background(), []int{1, 2, 3}, func(n int, r io.Reader) error {
			b, err := io.ReadAll(r)
			got = append(got, string(b))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "|") != "message 1\r\n|message 2\r\n|message 3\r\n" {
			t.Errorf("bodies = %q", got)
		}
		c.Close()
		waitScript(t, done)
	})
	t.Run("one at a time without PIPELINING", func(t *testing.T) {
		c, done := dialScript(t, cfgFor(""), concat(loginUserPass,
			[]string{"C: RETR 1"}, body("1"), []string{"C: RETR 2"}, body("2"))...)
		n := 0
		err := c.RetrMany(context.Background(), []int{1, 2}, func(int, io.Reader) error { n++; return nil })
		if err != nil || n != 2 {
			t.Fatalf("RetrMany: n=%d err=%v", n, err)
		}
		c.Close()
		waitScript(t, done)
	})
	t.Run("error drains the outstanding answers", func(t *testing.T) {
		c, done := dialScript(t, cfgFor(""), concat(withPipelining(loginUserPass),
			[]string{"C: RETR 1", "C: RETR 2", "C: RETR 3", "S: -ERR [SYS/TEMP] try later"}, body("2"), body("3"),
			[]string{"C: NOOP", "S: +OK"})...)
		n := 0
		err := c.RetrMany(context.Background(), []int{1, 2, 3}, func(int, io.Reader) error { n++; return nil })
		if !failure.Is(err, failure.Temporary) || !strings.Contains(err.Error(), "RETR 1") {
			t.Fatalf("err = %v (kind %v)", err, failure.KindOf(err))
		}
		if n != 0 {
			t.Errorf("fn called %d times after the error", n)
		}
		if err := c.Noop(context.Background()); err != nil {
			t.Errorf("session unusable after a drained error: %v", err)
		}
		c.Close()
		waitScript(t, done)
	})
	t.Run("fn error", func(t *testing.T) {
		c, done := dialScript(t, cfgFor(""), concat(withPipelining(loginUserPass),
			[]string{"C: RETR 1", "C: RETR 2"}, body("1"), body("2"), []string{"C: NOOP", "S: +OK"})...)
		err := c.RetrMany(context.Background(), []int{1, 2}, func(int, io.Reader) error { return errScript })
		if !errors.Is(err, errScript) {
			t.Fatalf("err = %v", err)
		}
		if err := c.Noop(context.Background()); err != nil {
			t.Errorf("session unusable: %v", err)
		}
		c.Close()
		waitScript(t, done)
	})
}

func TestSTLSRefused(t *testing.T) {
	addr, done := scriptServer(t, "S: +OK ready", "C: CAPA", "S: +OK", "S: STLS", "S: .", "C: STLS", "S: -ERR TLS not available now")
	cfg := cfgFor(addr)
	cfg.Security = STARTTLS
	_, err := Dial(context.Background(), cfg)
	if !failure.Is(err, failure.TLS) || !strings.Contains(err.Error(), "refused STLS") {
		t.Fatalf("err = %v (kind %v)", err, failure.KindOf(err))
	}
	waitScript(t, done)
}

func TestCancelDuringRetrMany(t *testing.T) {
	addr, _ := scriptServer(t, concat(withPipelining(loginUserPass), []string{"C: RETR 1", "C: RETR 2", "S: +OK", "S: part", "STALL"})...)
	cfg := cfgFor(addr)
	cfg.Timeout = 10 * time.Second
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	err = c.RetrMany(ctx, []int{1, 2}, func(n int, r io.Reader) error {
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := io.ReadAll(r)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("cancel took %v", time.Since(start))
	}
}
