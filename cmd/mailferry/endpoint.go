package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/source"
	imapsrc "github.com/mailferry/mailferry/source/imap"
	maildirsrc "github.com/mailferry/mailferry/source/maildir"
	mboxsrc "github.com/mailferry/mailferry/source/mbox"
	"github.com/mailferry/mailferry/source/pop3"
	"github.com/mailferry/mailferry/target"
	imaptgt "github.com/mailferry/mailferry/target/imap"
	maildirtgt "github.com/mailferry/mailferry/target/maildir"
)

// endpoint is a parsed SOURCE or TARGET argument.
type endpoint struct {
	raw    string // as given, for messages (never holds a password)
	scheme string // pop3, pop3s, imap, imaps, maildir, mbox
	user   string
	host   string
	port   int
	noTLS  bool   // ?tls=none
	path   string // maildir, mbox
	pass   string // filled in later, never printed
	token  func(context.Context) (string, error)
	mbox   mboxsrc.Options
}

// local reports whether the endpoint is a path, with no login.
func (e *endpoint) local() bool { return e.scheme == "maildir" || e.scheme == "mbox" }

// mboxFlags are the flags that tune an mbox source.
type mboxFlags struct {
	format mboxsrc.Format
	labels string
}

func (m *mboxFlags) register(fs *flag.FlagSet) {
	fs.Func("mbox-format", "read mbox files as `FORMAT` mboxo, mboxrd, mboxcl or mboxcl2 (default: detected per file)", func(s string) (err error) {
		m.format, err = mboxsrc.ParseFormat(s)
		return err
	})
	fs.Func("gmail-labels", "Google Takeout mbox: a copy in `each` labelled folder (default, as Gmail's IMAP shows it), or only in the \"first\" by priority, or \"none\" (one folder)", func(s string) error {
		if s != "each" && s != "first" && s != "none" {
			return fmt.Errorf("want each, first or none")
		}
		m.labels = s
		return nil
	})
}

// setMbox applies the mbox flags and --to-folder (the folder of a single
// mbox file) to an mbox endpoint.
func (e *endpoint) setMbox(m mboxFlags, toFolder string) {
	if e.scheme == "mbox" {
		e.mbox = mboxsrc.Options{Format: m.format, GmailLabels: m.labels, Folder: toFolder}
	}
}

func (e *endpoint) addr() string { return net.JoinHostPort(e.host, strconv.Itoa(e.port)) }

// String is the endpoint without secrets, used for messages and the job id.
func (e *endpoint) String() string {
	if e.local() {
		return e.scheme + ":" + e.path
	}
	s := e.scheme + "://" + e.user + "@" + e.addr()
	if e.noTLS {
		s += "?tls=none"
	}
	return s
}

var defaultPorts = map[string]int{"pop3": 110, "pop3s": 995, "imap": 143, "imaps": 993}

// parseEndpoint parses pop3s://USER@HOST[:PORT], pop3://…, imaps://…,
// imap://… (optionally ?tls=none), maildir:PATH and mbox:PATH.
func parseEndpoint(s string) (*endpoint, error) {
	for _, scheme := range []string{"maildir", "mbox"} {
		if rest, ok := strings.CutPrefix(s, scheme+":"); ok {
			rest = strings.TrimPrefix(rest, "//")
			if rest == "" {
				return nil, fmt.Errorf("%q: %s needs a path, as in %s:/backup/mail", s, scheme, scheme)
			}
			// The shell expands ~ only at the start of a word, not after
			// "maildir:": do it here rather than create a directory named ~.
			if rest == "~" || strings.HasPrefix(rest, "~/") {
				home, err := os.UserHomeDir()
				if err != nil {
					return nil, fmt.Errorf("%q: %w", s, err)
				}
				rest = filepath.Join(home, strings.TrimPrefix(rest, "~"))
			}
			abs, err := filepath.Abs(rest)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", s, err)
			}
			return &endpoint{raw: s, scheme: scheme, path: abs}, nil
		}
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return nil, fmt.Errorf("%q is not an endpoint: use pop3s://USER@HOST, imaps://USER@HOST, maildir:PATH or mbox:PATH", s)
	}
	scheme = strings.ToLower(scheme)
	port, known := defaultPorts[scheme]
	if !known {
		return nil, fmt.Errorf("%q: unknown scheme %q (use pop3, pop3s, imap, imaps or maildir)", s, scheme)
	}
	e := &endpoint{scheme: scheme, port: port}
	rest, query, _ := strings.Cut(rest, "?")
	rest = strings.TrimSuffix(rest, "/")
	if query != "" {
		for _, kv := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			switch {
			case k == "tls" && v == "none":
				if scheme == "pop3s" || scheme == "imaps" {
					return nil, fmt.Errorf("%q: ?tls=none makes no sense with %s (implicit TLS)", redactURL(s), scheme)
				}
				e.noTLS = true
			default:
				return nil, fmt.Errorf("%q: unknown option %q (only ?tls=none is known)", redactURL(s), kv)
			}
		}
	}
	// The user name may itself hold an @ (bob@example.com@mail.example.com).
	i := strings.LastIndex(rest, "@")
	if i <= 0 {
		return nil, fmt.Errorf("%q: the user is missing, as in %s://USER@HOST", s, scheme)
	}
	user, hostport := rest[:i], rest[i+1:]
	if strings.Contains(user, ":") {
		return nil, fmt.Errorf("%s://%s@…: do not put the password in the URL; use MAILFERRY_SOURCE_PASSWORD / MAILFERRY_TARGET_PASSWORD or --source-password-file / --target-password-file", scheme, strings.SplitN(user, ":", 2)[0])
	}
	if u, err := urlUnescape(user); err == nil {
		user = u
	}
	e.user = user
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
	} else {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("%q: bad port %q", s, p)
		}
		e.port = n
	}
	if host == "" {
		return nil, fmt.Errorf("%q: the host is missing", s)
	}
	e.host = host
	e.raw = e.String()
	return e, nil
}

func urlUnescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", err
			}
			b.WriteByte(byte(n))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

// redactURL drops anything between :// and @ that looks like a password.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	i := strings.LastIndex(rest, "@")
	if i < 0 {
		return s
	}
	user, _, _ := strings.Cut(rest[:i], ":")
	return scheme + "://" + user + rest[i:]
}

// tlsConfig builds the TLS settings: system roots plus --ca-file.
func tlsConfig(host, caFile string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, failure.Mark(failure.Config, fmt.Errorf("read --ca-file: %w", err))
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, failure.Mark(failure.Config, fmt.Errorf("--ca-file %s holds no PEM certificate", caFile))
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

type connOptions struct {
	caFile  string
	timeout time.Duration
	folder  string // POP3: the name of its one folder
	job     string // Maildir target: the job id, set only where the journal is held
	log     *slog.Logger
}

func (e *endpoint) imapConfig(o connOptions) (imapconn.Config, error) {
	cfg := imapconn.Config{Addr: e.addr(), User: e.user, Password: e.pass, OAuth2Token: e.token, Timeout: o.timeout, Logger: o.log}
	switch {
	case e.scheme == "imaps":
		cfg.Security = imapconn.Implicit
	case e.noTLS:
		cfg.Security = imapconn.None
	default:
		cfg.Security = imapconn.STARTTLS
	}
	t, err := tlsConfig(e.host, o.caFile)
	cfg.TLSConfig = t
	return cfg, err
}

func (e *endpoint) pop3Config(o connOptions) (pop3.Config, error) {
	cfg := pop3.Config{Addr: e.addr(), User: e.user, Password: e.pass, OAuth2Token: e.token, Timeout: o.timeout, Folder: o.folder}
	switch {
	case e.scheme == "pop3s":
		cfg.Security = pop3.Implicit
	case e.noTLS:
		cfg.Security = pop3.None
	default:
		cfg.Security = pop3.STARTTLS
	}
	t, err := tlsConfig(e.host, o.caFile)
	cfg.TLSConfig = t
	return cfg, err
}

// sourceOpener returns an opener for reading from the endpoint.
func (e *endpoint) sourceOpener(o connOptions) (source.Opener, error) {
	switch e.scheme {
	case "pop3", "pop3s":
		cfg, err := e.pop3Config(o)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (source.Source, error) {
			s, err := pop3.Open(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return s, nil
		}, nil
	case "imap", "imaps":
		cfg, err := e.imapConfig(o)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (source.Source, error) {
			s, err := imapsrc.Open(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return s, nil
		}, nil
	case "maildir":
		if _, err := os.Stat(e.path); err != nil {
			return nil, failure.Mark(failure.Config, fmt.Errorf("source Maildir %s: %w", e.path, err))
		}
		return func(ctx context.Context) (source.Source, error) {
			s, err := maildirsrc.Open(ctx, e.path, maildirsrc.WithLogger(o.log))
			if err != nil {
				return nil, err
			}
			return s, nil
		}, nil
	case "mbox":
		if _, err := os.Stat(e.path); err != nil {
			return nil, failure.Mark(failure.Config, fmt.Errorf("source mbox %s: %w", e.path, err))
		}
		return func(ctx context.Context) (source.Source, error) {
			mo := e.mbox
			mo.Logger = o.log
			s, err := mboxsrc.Open(ctx, e.path, mo)
			if err != nil {
				return nil, err
			}
			return s, nil
		}, nil
	}
	return nil, failure.Mark(failure.Config, errors.New(e.scheme+" cannot be read from"))
}

// targetOpener returns an opener for writing to the endpoint.
func (e *endpoint) targetOpener(o connOptions) (target.Opener, error) {
	switch e.scheme {
	case "imap", "imaps":
		cfg, err := e.imapConfig(o)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (target.Target, error) {
			t, err := imaptgt.Open(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return t, nil
		}, nil
	case "maildir":
		return func(ctx context.Context) (target.Target, error) {
			t, err := maildirtgt.Open(ctx, e.path, maildirtgt.Options{Job: o.job, Logger: o.log})
			if err != nil {
				return nil, err
			}
			return t, nil
		}, nil
	}
	return nil, failure.Mark(failure.Config, fmt.Errorf("%s cannot be a target (use imap, imaps or maildir)", e.scheme))
}
