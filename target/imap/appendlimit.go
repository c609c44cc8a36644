package imap

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/target"
)

// appendLimits is what the server said of the size of an APPEND (RFC 7889).
type appendLimits struct {
	known     bool
	global    int64 // APPENDLIMIT=n (0: none)
	perFolder bool  // APPENDLIMIT without a value: ask STATUS per folder
	folder    map[string]int64
}

// limitFor returns the largest message server folder takes (0: no limit).
// A global limit comes from the capabilities; a per-folder one is asked
// once per folder (STATUS APPENDLIMIT), over the store session p when set.
func (t *Target) limitFor(ctx context.Context, server string, p *appendPipe) (int64, error) {
	l := &t.limits
	if !l.known {
		c, err := t.conn(ctx)
		if err != nil {
			return 0, err
		}
		if v, ok := c.Caps().AppendLimit(); ok {
			if v != nil {
				l.global = int64(*v)
			} else {
				l.perFolder = true
			}
		}
		l.known = true
	}
	if l.global > 0 || !l.perFolder {
		return l.global, nil
	}
	if v, ok := l.folder[server]; ok {
		return v, nil
	}
	var v int64
	var err error
	if p != nil {
		v, err = p.statusLimit(ctx, server)
	} else {
		err = t.short(ctx, fmt.Sprintf("STATUS %q APPENDLIMIT", server), func(c *imapclient.Client) error {
			sd, err := c.Status(server, &imap.StatusOptions{AppendLimit: true}).Wait()
			if err == nil && sd.AppendLimit != nil {
				v = int64(*sd.AppendLimit)
			}
			return err
		})
	}
	if err != nil && !imapconn.IsNo(err) {
		return 0, err
	}
	if l.folder == nil {
		l.folder = map[string]int64{}
	}
	l.folder[server] = v // a NO (the server cannot say): no limit
	return v, nil
}

// checkLimit refuses, before a byte is sent, a message the server would
// refuse for its size anyway.
func (t *Target) checkLimit(ctx context.Context, server string, d target.Delivery, p *appendPipe) error {
	l, err := t.limitFor(ctx, server, p)
	if err != nil {
		return err
	}
	if l <= 0 || d.Size <= l {
		return nil
	}
	reason := fmt.Sprintf("larger than the server's APPENDLIMIT (%d > %d bytes)", d.Size, l)
	return failure.Mark(failure.Message, &target.Rejected{Reason: reason,
		Err: fmt.Errorf("append to %q: not sent: %s", d.Folder, reason)})
}

// AppendLimit returns the largest message the server takes into folder
// (canonical name), in bytes; 0 when it states no limit.
func (t *Target) AppendLimit(ctx context.Context, folder string) (int64, error) {
	if _, err := t.conn(ctx); err != nil {
		return 0, err
	}
	return t.limitFor(ctx, t.names.ToServer(folder), nil)
}

// statusLimit asks STATUS APPENDLIMIT over the store session.
func (p *appendPipe) statusLimit(ctx context.Context, server string) (int64, error) {
	var v int64
	st, err := p.command(ctx, func(tag string) {
		p.s.W().WriteString(tag + " STATUS ")
		p.s.WriteMailbox(server)
		p.s.W().WriteString(" (APPENDLIMIT)\r\n")
	}, func(line string) {
		if n, ok := parseStatusLimit(line); ok {
			v = n
		}
	})
	if err != nil {
		return 0, err
	}
	return v, st.Err()
}

// parseStatusLimit reads `* STATUS mailbox (APPENDLIMIT n)`; NIL is no
// limit.
func parseStatusLimit(line string) (int64, bool) {
	rest, ok := cutPrefixFold(line, "* STATUS ")
	if !ok {
		return 0, false
	}
	if _, rest, ok = astring(rest); !ok {
		return 0, false
	}
	rest = strings.Trim(strings.TrimSpace(rest), "()")
	f := strings.Fields(rest)
	for i := 0; i+1 < len(f); i += 2 {
		if strings.EqualFold(f[i], "APPENDLIMIT") {
			n, err := strconv.ParseInt(f[i+1], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
