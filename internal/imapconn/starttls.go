package imapconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/mailferry/mailferry/internal/failure"
)

// tlsGreeting is replayed to imapclient after a STARTTLS done by hand.
const tlsGreeting = "* OK TLS established by mailferry\r\n"

// startTLS reads the greeting of a plain connection, sends STARTTLS and
// runs the TLS handshake. It is done here, not by imapclient, so that the
// limitConn can sit between the TLS layer and imapclient (imapclient
// replaces the connection under its reader when it does STARTTLS itself).
// The plain-text phase is read through a limitConn as well.
func startTLS(ctx context.Context, conn net.Conn, cfg Config, tlsCfg *tls.Config) (*tls.Conn, error) {
	lc := newLimitConn(conn, conn, cfg.Addr, cfg.Limits, nil)
	r := bufio.NewReader(lc)
	line, err := readLine(r)
	if err != nil {
		return nil, Classify(fmt.Errorf("read greeting from %s: %w", cfg.Addr, err))
	}
	switch word(line, 1) {
	case "OK":
	case "PREAUTH":
		return nil, failure.Mark(failure.TLS, fmt.Errorf("%s sent PREAUTH on an unencrypted connection; refusing it (use imaps://)", cfg.Addr))
	case "BYE":
		return nil, failure.Mark(failure.Temporary, fmt.Errorf("%s refuses the connection: %s", cfg.Addr, clip(line)))
	default:
		return nil, notIMAPGreeting(cfg.Addr, line)
	}
	if _, err := fmt.Fprint(conn, "S1 STARTTLS\r\n"); err != nil {
		return nil, Classify(fmt.Errorf("send STARTTLS to %s: %w", cfg.Addr, err))
	}
	for {
		line, err := readLine(r)
		if err != nil {
			return nil, Classify(fmt.Errorf("STARTTLS with %s: %w", cfg.Addr, err))
		}
		if word(line, 0) != "S1" {
			continue // untagged data (CAPABILITY...)
		}
		if word(line, 1) != "OK" {
			return nil, failure.Mark(failure.TLS, fmt.Errorf("%s does not offer STARTTLS (use imaps:// or ?tls=none): %s", cfg.Addr, clip(line)))
		}
		break
	}
	if r.Buffered() > 0 {
		// Bytes sent before TLS that would be read as if they came over
		// it (CVE-2011-0411 style injection).
		return nil, failure.Mark(failure.TLS, fmt.Errorf("%s sent data after its STARTTLS answer, before TLS; refusing it", cfg.Addr))
	}
	tc := tls.Client(conn, tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, classTLS(cfg.Addr, err)
	}
	return tc, nil
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && line != "" {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// word returns the i-th space-separated word of line, in upper case.
func word(line string, i int) string {
	f := strings.Fields(line)
	if i < len(f) {
		return strings.ToUpper(f[i])
	}
	return ""
}

func clip(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return fmt.Sprintf("%q", s)
}
