package pop3

import (
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
