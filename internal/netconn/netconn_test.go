package netconn

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
)

func TestXOAuth2(t *testing.T) {
	mech, ir, err := NewXOAuth2Client("me@x", "tok").Start()
	if err != nil || mech != "XOAUTH2" || string(ir) != "user=me@x\x01auth=Bearer tok\x01\x01" {
		t.Fatalf("Start = %q %q %v", mech, ir, err)
	}
	if r, err := NewXOAuth2Client("me@x", "tok").Next([]byte(`{"status":"401"}`)); err != nil || len(r) != 0 {
		t.Errorf("Next = %q, %v", r, err)
	}
	if mech, _, _ := OAuth2Client("me@x", "tok", "mail.example:993", true).Start(); mech != "OAUTHBEARER" {
		t.Fatalf("bearer mechanism %q", mech)
	}
}

func TestTLSConfig(t *testing.T) {
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	c := TLSConfig(base, "mail.example:993", "imap")
	if c.ServerName != "mail.example" || c.NextProtos[0] != "imap" || c.MinVersion != tls.VersionTLS12 {
		t.Fatalf("got %+v", c)
	}
	if base.ServerName != "" {
		t.Fatal("base modified")
	}
	if c := TLSConfig(&tls.Config{InsecureSkipVerify: true}, "h:1"); c.ServerName != "" || c.NextProtos != nil {
		t.Fatalf("insecure: %+v", c)
	}
}

func TestDialFailureIsConnect(t *testing.T) {
	refuse := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, errors.New("connection refused")
	}
	_, err := Dial(context.Background(), refuse, "127.0.0.1:1")
	if failure.KindOf(err) != failure.Connect {
		t.Fatalf("kind of %v = %v", err, failure.KindOf(err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	hang := func(ctx context.Context, network, addr string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if _, err := Dial(ctx, hang, "127.0.0.1:1"); failure.KindOf(err) != failure.Connect && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
}
