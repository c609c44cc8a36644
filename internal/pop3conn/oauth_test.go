package pop3conn

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/netconn"
	"github.com/mailferry/mailferry/internal/testkit/pop3test"
)

func startOAuthServer(t *testing.T, o pop3test.Options) *pop3test.Server {
	t.Helper()
	if o.Messages == nil {
		o.Messages = [][]byte{[]byte("Subject: x\r\n\r\nbody\r\n")}
	}
	s, err := pop3test.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOAuth2(t *testing.T) {
	for _, tt := range []struct {
		name, token string
		xoauth2     bool
		ok          bool
	}{
		{"oauthbearer", "tok-123", false, true},
		{"oauthbearer wrong token", "bad", false, false},
		{"xoauth2", "tok-123", true, true},
		{"xoauth2 wrong token", "bad", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startOAuthServer(t, pop3test.Options{OAuth2Token: "tok-123"})
			cfg := Config{Addr: srv.Addr(), Security: None, User: "user", Password: "secret", Timeout: 5 * time.Second}
			cfg.Password = ""
			cfg.OAuth2Token = func(context.Context) (string, error) { return tt.token, nil }
			var c *Client
			var err error
			if tt.xoauth2 {
				c, err = dialXOAuth2(t, cfg)
			} else {
				c, err = Dial(context.Background(), cfg)
			}
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				return
			}
			if !failure.Is(err, failure.Auth) || strings.Contains(err.Error(), tt.token+"\x01") {
				t.Fatalf("err = %v (kind %v)", err, failure.KindOf(err))
			}
		})
	}
}

// dialXOAuth2 logs in with XOAUTH2 even though the server also offers
// OAUTHBEARER.
func dialXOAuth2(t *testing.T, cfg Config) (*Client, error) {
	tok, _ := cfg.OAuth2Token(context.Background())
	cfg.OAuth2Token = nil
	cfg.User = "" // avoid USER/PASS fallback: we authenticate ourselves below
	c := &Client{cfg: cfg}
	conn, err := net.Dial("tcp", cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.raw = conn
	c.cfg.Timeout = 5 * time.Second
	c.setConn(&deadlineConn{Conn: conn, timeout: c.cfg.Timeout})
	ctx := context.Background()
	if _, err := c.readLine(); err != nil {
		t.Fatal(err)
	}
	if err := c.auth(ctx, netconn.NewXOAuth2Client("user", tok)); err != nil {
		conn.Close()
		return nil, err
	}
	return c, c.Noop(ctx)
}
