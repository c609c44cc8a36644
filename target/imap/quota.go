package imap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/target"
)

// Quota asks the server for the storage quota of INBOX (RFC 9208
// GETQUOTAROOT) and returns its usage and limit in bytes. ok is false when
// the server has no QUOTA extension or INBOX has no storage limit.
func (t *Target) Quota(ctx context.Context) (used, limit int64, ok bool, err error) {
	c, err := t.conn(ctx)
	if err != nil {
		return 0, 0, false, err
	}
	if !c.Caps().Has(imap.CapQuota) {
		return 0, 0, false, nil
	}
	var data []imapclient.QuotaData
	err = t.short(ctx, "GETQUOTAROOT INBOX", func(c *imapclient.Client) error {
		var err error
		data, err = c.GetQuotaRoot(t.names.ToServer("INBOX")).Wait()
		return err
	})
	if err != nil {
		return 0, 0, false, err
	}
	// Several roots may apply: the tightest free space counts.
	free := int64(-1)
	for _, d := range data {
		r, has := d.Resources[imap.QuotaResourceStorage]
		if !has || r.Limit <= 0 {
			continue
		}
		// STORAGE is in units of 1024 octets.
		u, l := r.Usage*1024, r.Limit*1024
		if f := l - u; free < 0 || f < free {
			free, used, limit, ok = f, u, l, true
		}
	}
	return used, limit, ok, nil
}

// plannedCaps are the capabilities that change how a migration behaves.
var plannedCaps = []imap.Cap{
	imap.CapUIDPlus, imap.CapSpecialUse, imap.CapCreateSpecialUse, imap.CapQuota,
	imap.CapLiteralPlus, imap.CapLiteralMinus, imap.CapMultiAppend, imap.CapAppendLimit,
	imap.CapMove, imap.CapCondStore, imap.CapUTF8Accept, imap.CapIMAP4rev2, imap.CapNamespace,
	imap.CapIdle,
}

// Capabilities returns the capabilities of the server that matter to a
// migration (UIDPLUS, SPECIAL-USE, QUOTA, LITERAL+, APPENDLIMIT, …), in a
// fixed order, and the SASL mechanisms it offers (AUTH=…).
func (t *Target) Capabilities(ctx context.Context) (caps []string, err error) {
	c, err := t.conn(ctx)
	if err != nil {
		return nil, err
	}
	set := c.Caps()
	for _, cp := range plannedCaps {
		if set.Has(cp) {
			s := string(cp)
			if cp == imap.CapAppendLimit {
				if l, ok := set.AppendLimit(); ok && l != nil {
					s += "=" + strconv.FormatUint(uint64(*l), 10)
				}
			}
			caps = append(caps, s)
		}
	}
	mechs := set.AuthMechanisms()
	slices.Sort(mechs)
	for _, m := range mechs {
		caps = append(caps, "AUTH="+strings.ToUpper(m))
	}
	return caps, nil
}

// quotaRoot is a storage quota that applies to a folder, in bytes.
type quotaRoot struct {
	name        string
	used, limit int64
}

// quotaLookup asks which storage quotas apply to a server folder
// (GETQUOTAROOT).
type quotaLookup func(ctx context.Context, server string) ([]quotaRoot, error)

func storageRoots(data []imapclient.QuotaData) []quotaRoot {
	var out []quotaRoot
	for _, d := range data {
		r, has := d.Resources[imap.QuotaResourceStorage]
		if !has || r.Limit <= 0 {
			continue
		}
		out = append(out, quotaRoot{name: d.Root, used: r.Usage * 1024, limit: r.Limit * 1024})
	}
	return out
}

// mainQuotaLookup asks over the main session; nil when the server has no
// QUOTA or the session is gone (a lookup is never worth a new login).
func (t *Target) mainQuotaLookup() quotaLookup {
	c := t.c
	if c == nil || !c.Caps().Has(imap.CapQuota) {
		return nil
	}
	return func(ctx context.Context, server string) ([]quotaRoot, error) {
		if t.c != c {
			return nil, errors.New("the session is gone")
		}
		var data []imapclient.QuotaData
		err := imapconn.Do(ctx, &t.cfg, c, t.drop, "GETQUOTAROOT", func(c *imapclient.Client) error {
			var err error
			data, err = c.GetQuotaRoot(server).Wait()
			return err
		})
		return storageRoots(data), err
	}
}

// quotaLookup asks over the store session; nil without QUOTA.
func (p *appendPipe) quotaLookup() quotaLookup {
	if !p.s.Has("QUOTA") {
		return nil
	}
	return func(ctx context.Context, server string) ([]quotaRoot, error) {
		var roots []quotaRoot
		st, err := p.command(ctx, func(tag string) {
			p.s.W().WriteString(tag + " GETQUOTAROOT ")
			p.s.WriteMailbox(server)
			p.s.W().WriteString("\r\n")
		}, func(line string) {
			if r, ok := parseQuota(line); ok {
				roots = append(roots, r)
			}
		})
		if err != nil {
			return nil, err
		}
		if err := st.Err(); err != nil {
			return nil, err
		}
		return roots, nil
	}
}

// command runs one short command on the store session, once the commands
// in flight are answered, and returns its tagged answer.
func (p *appendPipe) command(ctx context.Context, write func(tag string), untagged func(line string)) (*imapconn.Status, error) {
	if err := p.broken(); err != nil {
		return nil, err
	}
	stop := p.s.CloseOnDone(ctx)
	defer stop()
	if err := p.end(); err != nil {
		return nil, imapconn.Wrap(ctx, err)
	}
	// Servers answer pipelined commands in order only among commands that
	// touch the mailbox (Dovecot answers a GETQUOTAROOT before the APPEND
	// sent ahead of it): let those in flight be answered first.
	if n := len(p.sent); n > 0 {
		if err := p.wait(p.sent[n-1]); err != nil {
			return nil, imapconn.Wrap(ctx, err)
		}
	}
	c := &appendCmd{tag: p.s.Tag(), other: untagged}
	write(c.tag)
	p.sent = append(p.sent, c)
	if err := p.wait(c); err != nil {
		return nil, imapconn.Wrap(ctx, err)
	}
	return c.st, nil
}

// parseQuota reads `* QUOTA root (STORAGE used limit ...)` (RFC 9208) into
// its storage quota, in bytes.
func parseQuota(line string) (quotaRoot, bool) {
	rest, ok := cutPrefixFold(line, "* QUOTA ")
	if !ok {
		return quotaRoot{}, false
	}
	name, rest, ok := astring(rest)
	if !ok {
		return quotaRoot{}, false
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
		return quotaRoot{}, false
	}
	f := strings.Fields(rest[1 : len(rest)-1])
	for i := 0; i+2 < len(f); i += 3 {
		if !strings.EqualFold(f[i], "STORAGE") {
			continue
		}
		u, err1 := strconv.ParseInt(f[i+1], 10, 64)
		l, err2 := strconv.ParseInt(f[i+2], 10, 64)
		if err1 != nil || err2 != nil || l <= 0 {
			return quotaRoot{}, false
		}
		return quotaRoot{name: name, used: u * 1024, limit: l * 1024}, true
	}
	return quotaRoot{}, false
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// astring reads an IMAP atom or quoted string at the start of s.
func astring(s string) (val, rest string, ok bool) {
	if s == "" {
		return "", "", false
	}
	if s[0] != '"' {
		i := strings.IndexAny(s, " (")
		if i < 0 {
			return s, "", true
		}
		return s[:i], s[i:], true
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", false
}

// overRoot returns the quota root that a store of size bytes exceeds (the
// one with the least room), or nil.
func overRoot(roots []quotaRoot, size int64) *quotaRoot {
	var out *quotaRoot
	for i := range roots {
		r := &roots[i]
		if r.used+size > r.limit && (out == nil || r.limit-r.used < out.limit-out.used) {
			out = r
		}
	}
	return out
}

// tightest is the root with the least room (nil: none).
func tightest(roots []quotaRoot) *quotaRoot {
	return overRoot(roots, 1<<62)
}

// accountWide reports whether quota root covers every folder of the
// account, not only server and its subfolders: "", INBOX (Cyrus shows the
// user's own root so) or a name that is not a folder at all (Dovecot's
// "User quota"). A root naming the folder or one of its parents is the
// folder's own.
func (t *Target) accountWide(root, server string) bool {
	if root == "" || strings.EqualFold(root, "INBOX") {
		return true
	}
	if root == server {
		return false
	}
	if t.names.Delim != 0 && strings.HasPrefix(server, root+string(t.names.Delim)) {
		return false
	}
	return true
}

// quotaErr classifies a refused store by the folder's quotas: over quota
// when a quota root has no room for the message (or when the server said
// so: known), account-wide when that root covers the account. It returns
// nil when the quotas do not explain the refusal.
func (t *Target) quotaErr(ctx context.Context, d target.Delivery, err error, lookup quotaLookup, known bool) error {
	server := t.names.ToServer(d.Folder)
	var roots []quotaRoot
	if r, ok := t.fullRoot[server]; ok && known {
		// The server said over quota again: the root found full before
		// still is (the stores in flight after a refusal need no lookup
		// each).
		roots = []quotaRoot{r}
	} else if lookup != nil && ctx.Err() == nil {
		var lerr error
		roots, lerr = lookup(ctx, server)
		if lerr != nil {
			t.log().Debug("imap target: GETQUOTAROOT after a refused store failed", "folder", server, "err", lerr)
		}
	}
	r := overRoot(roots, d.Size)
	if r == nil && known {
		r = tightest(roots)
	}
	if r == nil {
		if !known {
			return nil
		}
		return failure.Mark(failure.Quota, fmt.Errorf("append to %q: %w (%w)", d.Folder, target.ErrFolderFull, err))
	}
	if t.fullRoot == nil {
		t.fullRoot = map[string]quotaRoot{}
	}
	t.fullRoot[server] = *r
	full := target.ErrFolderFull
	if t.accountWide(r.name, server) {
		full = target.ErrAccountFull
	}
	return failure.Mark(failure.Quota, fmt.Errorf("append to %q: %w (%w; quota root %q: %d of %d KiB used, the message is %d bytes)",
		d.Folder, full, err, r.name, r.used/1024, r.limit/1024, d.Size))
}
