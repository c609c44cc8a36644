package pop3conn

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/pop3script"
)

// The scripted fake server lives in internal/testkit/pop3script, shared
// with the other POP3 package's tests.
var (
	scriptServer   = pop3script.Server
	waitScript     = pop3script.Wait
	withPipelining = pop3script.WithPipelining
	concat         = pop3script.Concat
	loginUserPass  = pop3script.LoginUserPass
)

func cfgFor(addr string) Config {
	return Config{Addr: addr, Security: None, User: "bob", Password: "hunter2", Timeout: 2 * time.Second}
}

func dialScript(t *testing.T, cfg Config, steps ...string) (*Client, <-chan error) {
	t.Helper()
	addr, done := scriptServer(t, steps...)
	cfg.Addr = addr
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, done
}

func clip(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}

var errScript = errors.New("script")
