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
// IMAP and POP3 endpoints of one server are one account when the users are
// equal (case-insensitive) and the hosts are the same after resolving,
// whatever the port and scheme (imap on 143 and imaps on 993 are one
// server). Maildirs are the same directory after following symlinks.
func sameAccount(ctx context.Context, a, b *endpoint) bool {
	if (a.scheme == "maildir") != (b.scheme == "maildir") {
		return false
	}
	if a.scheme == "maildir" {
		return samePath(a.path, b.path)
	}
	if !strings.EqualFold(a.user, b.user) {
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
