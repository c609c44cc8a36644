package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// sameAccount reports whether a and b are the same mailbox, so that a
// migration would copy an account into itself (every message doubled).
// Two IMAP endpoints are one account when the users are equal
// (case-insensitive), the hosts are the same after resolving, and the ports
// are equal or the standard pair (imap on 143 and imaps on 993 are one
// server). Two servers on other ports of one host are taken as different
// servers (tests and demos run several on 127.0.0.1), and so are a POP3
// and an IMAP endpoint. Maildirs are the same directory after following
// symlinks.
func sameAccount(ctx context.Context, a, b *endpoint) bool {
	if (a.scheme == "maildir") != (b.scheme == "maildir") {
		return false
	}
	if a.scheme == "maildir" {
		return samePath(a.path, b.path)
	}
	imapScheme := func(s string) bool { return s == "imap" || s == "imaps" }
	if !imapScheme(a.scheme) || !imapScheme(b.scheme) || !strings.EqualFold(a.user, b.user) {
		return false
	}
	standard := func(p int) bool { return p == 143 || p == 993 }
	if a.port != b.port && !(standard(a.port) && standard(b.port)) {
		return false
	}
	if strings.EqualFold(a.host, b.host) {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	as, err1 := addrsOf(ctx, a.host)
	bs, err2 := addrsOf(ctx, b.host)
	if err1 != nil || err2 != nil {
		return false // a host that does not resolve fails later, with its own message
	}
	for x := range as {
		if bs[x] {
			return true
		}
	}
	return false
}

// addrsOf resolves host to its set of addresses; "localhost" and the
// loopback addresses are one machine.
func addrsOf(ctx context.Context, host string) (map[string]bool, error) {
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, ip := range ips {
		if ip.IP.IsLoopback() {
			out["loopback"] = true
			continue
		}
		out[ip.IP.String()] = true
	}
	return out, nil
}

func samePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	if err1 != nil || err2 != nil {
		return false
	}
	if ra == rb {
		return true
	}
	sa, err1 := os.Stat(ra)
	sb, err2 := os.Stat(rb)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
