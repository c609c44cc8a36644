// Package imapconn holds what the IMAP source and the IMAP target share:
// dialling with implicit TLS, STARTTLS or no TLS, authenticating (PLAIN,
// LOGIN, XOAUTH2, OAUTHBEARER), classing errors into failure kinds, closing
// a client when a context ends (go-imap v2 has no context support), and
// translating folder names between the canonical form (UTF-8, "/"-separated,
// "INBOX") and the server's (its delimiter and personal namespace prefix).
package imapconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/netconn"
)

// Security says how the connection is protected (netconn.Security).
type Security = netconn.Security

const (
	// Implicit TLS from the first byte (imaps://, port 993).
	Implicit = netconn.Implicit
	// STARTTLS, required: fail when the server does not offer it (imap://).
	STARTTLS = netconn.STARTTLS
	// None: plain text (imap://...?tls=none).
	None = netconn.None
)

// DefaultTimeout bounds dialling, the greeting and authentication when
// Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Config describes one IMAP account.
type Config struct {
	Addr      string // host:port
	Security  Security
	TLSConfig *tls.Config // nil: system roots, ServerName from Addr
	User      string
	Password  string
	// OAuth2Token, when set, is used instead of Password: OAUTHBEARER when
	// the server offers it, else XOAUTH2.
	OAuth2Token func(ctx context.Context) (string, error)
	// Timeout bounds dial + greeting + login, and each short command
	// (LIST, SELECT, SEARCH...). Zero means DefaultTimeout.
	Timeout time.Duration
	// Dialer replaces net.Dialer (tests, fault proxy).
	Dialer netconn.DialFunc
	// Options are passed to imapclient (UnilateralDataHandler...). The
	// TLSConfig field is ignored.
	Options *imapclient.Options
	// Limits bound what the server can make us read (zero: DefaultLimits).
	Limits Limits
	// Logger receives the warnings of the IMAP source and target built on
	// this Config; nil discards them.
	Logger *slog.Logger
}

// Log returns cfg.Logger, or a logger that discards when it is nil.
func (cfg *Config) Log() *slog.Logger {
	if cfg.Logger != nil {
		return cfg.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (cfg *Config) timeout() time.Duration {
	if cfg.Timeout > 0 {
		return cfg.Timeout
	}
	return DefaultTimeout
}

// Dial connects, secures the connection and logs in. The returned error is
// classed with failure.Mark (Connect, TLS, Auth, Temporary or Fatal).
func Dial(ctx context.Context, cfg Config) (*imapclient.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	defer cancel()
	conn, stop, err := secure(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer stop()
	opts := imapclient.Options{}
	if cfg.Options != nil {
		opts = *cfg.Options
	}
	opts.TLSConfig = tlsConfig(cfg)
	c := imapclient.New(conn, &opts)
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, ctxErr(ctx, Classify(fmt.Errorf("read greeting from %s: %w", cfg.Addr, err)))
	}
	if err := login(ctx, c, cfg); err != nil {
		c.Close()
		return nil, ctxErr(ctx, err)
	}
	return c, nil
}

// secure dials cfg.Addr and sets up TLS as cfg.Security says. The returned
// connection enforces cfg.Limits on what is read and starts with the
// server's greeting (after a STARTTLS done here, a replayed one). Until stop
// is called, the end of ctx closes the connection.
func secure(ctx context.Context, cfg Config) (net.Conn, func() bool, error) {
	conn, err := netconn.Dial(ctx, cfg.Dialer, cfg.Addr)
	if err != nil {
		return nil, nil, err
	}
	// Everything up to the end of the login is bounded by ctx.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(err error) (net.Conn, func() bool, error) {
		stop()
		conn.Close()
		return nil, nil, err
	}
	tlsCfg := tlsConfig(cfg)
	// The limits apply to the IMAP stream itself, inside TLS: so STARTTLS
	// is done here rather than by imapclient.
	switch cfg.Security {
	case Implicit:
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(ctxErr(ctx, classTLS(cfg.Addr, err)))
		}
		greeting, err := peekGreeting(tc, cfg.Addr)
		if err != nil {
			return fail(ctxErr(ctx, err))
		}
		return newLimitConn(tc, conn, cfg.Addr, cfg.Limits, greeting), stop, nil
	case STARTTLS:
		tc, err := startTLS(ctx, conn, cfg, tlsCfg)
		if err != nil {
			return fail(ctxErr(ctx, err))
		}
		// The client reads a greeting first: replay one without
		// capabilities, so it asks for them again over TLS.
		return newLimitConn(tc, conn, cfg.Addr, cfg.Limits, []byte(tlsGreeting)), stop, nil
	case None:
		greeting, err := peekGreeting(conn, cfg.Addr)
		if err != nil {
			return fail(ctxErr(ctx, err))
		}
		return newLimitConn(conn, conn, cfg.Addr, cfg.Limits, greeting), stop, nil
	}
	return fail(failure.Mark(failure.Config, fmt.Errorf("unknown IMAP security mode %d", cfg.Security)))
}

// ctxErr reports a cancellation or a timeout of ctx instead of the
// "use of closed connection" error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return failure.Mark(failure.Temporary, fmt.Errorf("timed out: %w", err))
	}
	return fmt.Errorf("%w: %w", ctx.Err(), err)
}

func tlsConfig(cfg Config) *tls.Config {
	return netconn.TLSConfig(cfg.TLSConfig, cfg.Addr, "imap")
}

func classTLS(addr string, err error) error {
	if perr := plainGreetingOnTLS(addr, err); perr != nil {
		return perr
	}
	if isTLSError(err) {
		return failure.Mark(failure.TLS, fmt.Errorf("TLS with %s failed (use --ca-file for a private CA): %w", addr, err))
	}
	return Classify(fmt.Errorf("TLS with %s: %w", addr, err))
}

func isTLSError(err error) bool {
	var (
		ua  x509UnknownAuthority
		ve  *tls.CertificateVerificationError
		rh  tls.RecordHeaderError
		ae  tls.AlertError
		he  x509Hostname
		cie x509CertInvalid
	)
	return errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &rh) || errors.As(err, &ae) ||
		errors.As(err, &he) || errors.As(err, &cie) || strings.Contains(err.Error(), "tls: ")
}

func login(ctx context.Context, c *imapclient.Client, cfg Config) error {
	caps := c.Caps()
	if cfg.OAuth2Token != nil {
		tok, err := cfg.OAuth2Token(ctx)
		if err != nil {
			return failure.Mark(failure.Auth, fmt.Errorf("get an OAuth2 token for %s: %w", cfg.User, err))
		}
		sc := netconn.OAuth2Client(cfg.User, tok, cfg.Addr, caps.Has(imap.Cap("AUTH=OAUTHBEARER")))
		if err := c.Authenticate(sc); err != nil {
			return authErr(cfg, err)
		}
		return nil
	}
	if caps.Has(imap.AuthCap(sasl.Plain)) {
		if err := c.Authenticate(sasl.NewPlainClient("", cfg.User, cfg.Password)); err != nil {
			return authErr(cfg, err)
		}
		return nil
	}
	if caps.Has(imap.CapLoginDisabled) {
		return failure.Mark(failure.Auth, fmt.Errorf("server %s allows neither AUTHENTICATE PLAIN nor LOGIN here (is TLS required?)", cfg.Addr))
	}
	if err := c.Login(cfg.User, cfg.Password).Wait(); err != nil {
		return authErr(cfg, err)
	}
	return nil
}

func authErr(cfg Config, err error) error {
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
		if ie.Code == imap.ResponseCodeUnavailable || ie.Code == "THROTTLED" || ie.Code == imap.ResponseCodeLimit {
			return failure.Mark(failure.Temporary, fmt.Errorf("log in as %q on %s: %w", cfg.User, cfg.Addr, err))
		}
		return failure.Mark(failure.Auth, fmt.Errorf("authentication as %q on %s failed: %w", cfg.User, cfg.Addr, err))
	}
	return Classify(fmt.Errorf("log in as %q on %s: %w", cfg.User, cfg.Addr, err))
}

// Classify marks err with its failure kind (unless already marked):
// IMAP NO/BAD responses by their response code, TLS and network errors by
// their type. It returns nil for nil.
func Classify(err error) error {
	if err == nil || failure.KindOf(err) != failure.Unknown {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if strings.Contains(err.Error(), hostile) {
		return failure.Mark(failure.Fatal, err)
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		switch ie.Code {
		case imap.ResponseCodeAuthenticationFailed, imap.ResponseCodeAuthorizationFailed, imap.ResponseCodeExpired:
			return failure.Mark(failure.Auth, err)
		case imap.ResponseCodeUnavailable, imap.ResponseCodeLimit, "THROTTLED", imap.ResponseCodeInUse, "SERVERBUG":
			return failure.Mark(failure.Temporary, err)
		case imap.ResponseCodeOverQuota:
			return failure.Mark(failure.Quota, err)
		case imap.ResponseCodeTooBig:
			return failure.Mark(failure.Message, err)
		}
		if ie.Type == imap.StatusResponseTypeBye {
			return failure.Mark(failure.Temporary, err)
		}
		return err
	}
	if isTLSError(err) && !strings.Contains(err.Error(), "use of closed") {
		return failure.Mark(failure.TLS, err)
	}
	if k := failure.KindOf(err); k != failure.Unknown {
		return failure.Mark(k, err)
	}
	// go-imap formats decode errors with %v, so a connection closed in
	// the middle of a response ends up as text: "... unexpected EOF".
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || strings.HasSuffix(err.Error(), "unexpected EOF") ||
		strings.Contains(err.Error(), "use of closed network connection") || strings.Contains(err.Error(), "connection reset") ||
		strings.Contains(err.Error(), "broken pipe") {
		return failure.Mark(failure.Temporary, err)
	}
	return err
}

// Code returns the response code of an IMAP NO/BAD error, or "".
func Code(err error) imap.ResponseCode {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

// IsNo reports whether err is a tagged NO response from the server.
func IsNo(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo
}

// CloseOnDone closes c when ctx is done, which makes any blocked go-imap
// call return. Call the returned stop function when the operation is over;
// it reports false when c was closed by ctx.
func CloseOnDone(ctx context.Context, c *imapclient.Client) (stop func() bool) {
	return context.AfterFunc(ctx, func() { c.Close() })
}

// Guard is CloseOnDone with a deadline of d added (d <= 0: none). For short
// commands, never for body transfers.
func Guard(ctx context.Context, c *imapclient.Client, d time.Duration) (stop func()) {
	cancel := func() {}
	if d > 0 {
		ctx, cancel = context.WithTimeout(ctx, d)
	}
	s := CloseOnDone(ctx, c)
	return func() { s(); cancel() }
}

// Live returns c when it is still connected, or nil (after drop) when the
// server or a watcher closed it: the IMAP source and target redial then.
func Live(c *imapclient.Client, drop func()) *imapclient.Client {
	if c == nil {
		return nil
	}
	select {
	case <-c.Closed():
		drop()
		return nil
	default:
		return c
	}
}

// DialNames dials, logs in and learns the hierarchy delimiter and the
// personal namespace prefix.
func DialNames(ctx context.Context, cfg Config) (*imapclient.Client, Names, error) {
	c, err := Dial(ctx, cfg)
	if err != nil {
		return nil, Names{}, err
	}
	names, err := LoadNames(ctx, c, cfg)
	if err != nil {
		c.Close()
		return nil, Names{}, err
	}
	return c, names, nil
}

// Do runs one short exchange f on c under the per-operation timeout of
// cfg. On failure the connection is dropped (drop) unless the server just
// said NO and ctx is still live; the error is wrapped with what.
func Do(ctx context.Context, cfg *Config, c *imapclient.Client, drop func(), what string, f func(*imapclient.Client) error) error {
	stop := Guard(ctx, c, cfg.timeout())
	err := f(c)
	stop()
	if err != nil {
		if !IsNo(err) || ctx.Err() != nil {
			drop()
		}
		return Wrap(ctx, fmt.Errorf("%s: %w", what, err))
	}
	return nil
}

// Logout says LOGOUT (waiting at most 2 s for the answer) and closes c.
func Logout(c *imapclient.Client) error {
	done := make(chan struct{})
	go func() {
		c.Logout().Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	return c.Close()
}

// Wrap returns the error of an operation that ran under CloseOnDone/Guard:
// a context error (cancelled: unmarked; deadline: Temporary) when ctx ended,
// else Classify(err).
func Wrap(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	return ctxErr(ctx, Classify(err))
}
