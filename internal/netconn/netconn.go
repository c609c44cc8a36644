// Package netconn is what the IMAP and POP3 clients share below their
// protocols: the Security modes, the TCP dial (classed as a Connect
// failure), the TLS configuration derived from the address, and the SASL
// clients for OAuth2 (XOAUTH2, which go-sasl lacks, and OAUTHBEARER).
package netconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/emersion/go-sasl"

	"github.com/mailferry/mailferry/internal/failure"
)

// Security says how a connection is protected.
type Security int

const (
	// Implicit TLS from the first byte (imaps://, pop3s://).
	Implicit Security = iota
	// STARTTLS (IMAP STARTTLS, POP3 STLS), required: the connection fails
	// when the server does not offer it.
	STARTTLS
	// None: plain text (?tls=none).
	None
)

func (s Security) String() string {
	switch s {
	case Implicit:
		return "implicit TLS"
	case STARTTLS:
		return "STARTTLS"
	case None:
		return "no TLS"
	}
	return "security?"
}

// DialFunc opens a TCP connection (net.Dialer.DialContext, or a test's).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dial opens a TCP connection to addr with dial (nil: a net.Dialer) under
// ctx. A failure is marked failure.Connect, and says so when ctx's
// deadline cut it short.
func Dial(ctx context.Context, dial DialFunc, addr string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			return nil, failure.Mark(failure.Connect, fmt.Errorf("connect to %s: timed out: %w", addr, err))
		}
		return nil, failure.Mark(failure.Connect, fmt.Errorf("connect to %s: %w", addr, err))
	}
	return conn, nil
}

// TLSConfig returns a copy of base (nil: system roots) with ServerName
// taken from addr when unset (and verification on), and NextProtos set to
// protos when unset.
func TLSConfig(base *tls.Config, addr string, protos ...string) *tls.Config {
	var t *tls.Config
	if base != nil {
		t = base.Clone()
	} else {
		t = &tls.Config{}
	}
	if t.ServerName == "" && !t.InsecureSkipVerify {
		t.ServerName = Host(addr)
	}
	if t.NextProtos == nil && len(protos) > 0 {
		t.NextProtos = protos
	}
	return t
}

// Host returns the host part of a host:port address (addr itself when it
// has no port).
func Host(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// OAuth2Client returns the SASL client for an OAuth2 token: OAUTHBEARER
// (RFC 7628) when the server offers it, else XOAUTH2.
func OAuth2Client(user, token, addr string, bearer bool) sasl.Client {
	if bearer {
		host, portStr, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(portStr)
		return sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: user, Token: token, Host: host, Port: port})
	}
	return NewXOAuth2Client(user, token)
}

// xoauth2 is Google's and Microsoft's SASL mechanism, missing from go-sasl.
type xoauth2 struct{ user, token string }

// NewXOAuth2Client returns a sasl.Client for the XOAUTH2 mechanism.
func NewXOAuth2Client(user, token string) sasl.Client { return &xoauth2{user, token} }

func (x *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

// Next answers the server's error challenge (a JSON document) with an empty
// response, after which the server sends its NO (IMAP) or -ERR (POP3).
func (x *xoauth2) Next(challenge []byte) ([]byte, error) { return []byte{}, nil }
