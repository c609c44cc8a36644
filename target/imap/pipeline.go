package imap

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/target"
)

var _ target.Pipeliner = (*Target)(nil)

// Send starts a store and returns as soon as the message's bytes are
// written; wait reports the server's answer. Waits must be called in the
// order of the Sends. When the server has LITERAL+, stores go over the
// store session (multiappend.go: pipelined, MULTIAPPEND where offered) and
// the main session is logged out meanwhile. Otherwise they go over the main
// session, pipelined as far as go-imap allows: a refused APPEND may close
// the connection (go-imap beta.8); the APPENDs after it then fail as well
// and are retried by the engine, which first asks Find whether they arrived.
func (t *Target) Send(ctx context.Context, d target.Delivery, body io.Reader) (func() (string, error), error) {
	wait, err := t.send(ctx, d, body)
	if err != nil {
		return nil, err
	}
	return func() (string, error) {
		r, err := wait()
		if err == nil {
			t.noteReceipt(t.names.ToServer(d.Folder), r)
		}
		return r, err
	}, nil
}

func (t *Target) send(ctx context.Context, d target.Delivery, body io.Reader) (func() (string, error), error) {
	if !t.haveNames {
		if _, err := t.conn(ctx); err != nil {
			return nil, err
		}
	}
	server := t.names.ToServer(d.Folder)
	if err := t.ensureServer(ctx, d.Folder); err != nil {
		return nil, err
	}
	flags, err := t.flagsFor(ctx, server, d.Flags)
	if err != nil {
		return nil, err
	}
	p, err := t.appender(ctx)
	if err != nil {
		return nil, err
	}
	if err := t.checkLimit(ctx, server, d, p); err != nil {
		return nil, err
	}
	if p != nil {
		if t.c != nil {
			// The main session idles while the store session works:
			// log it out, so that a worker holds one connection to the
			// server (Dovecot allows 10 per user and address by
			// default). It is dialled again when a folder must be
			// created or searched.
			c := t.c
			t.drop()
			go imapconn.Logout(c)
		}
		return p.send(ctx, server, d, flags, body, func(err error) error { return t.appendErr(ctx, d, err, p.quotaLookup()) })
	}
	if d.Binary {
		return nil, noBinary(d)
	}
	if _, err := t.conn(ctx); err != nil {
		return nil, err
	}
	// APPEND into the selected folder: Dovecot then keeps it open instead
	// of opening and syncing it for every message (about half its CPU per
	// APPEND on the benchmark).
	if _, err := t.selectFolder(ctx, server, false); err != nil {
		return nil, err
	}
	c, err := t.conn(ctx)
	if err != nil {
		return nil, err
	}
	if !c.Caps().Has(imap.CapLiteralPlus) && !c.Caps().Has(imap.CapIMAP4rev2) {
		// Without non-synchronizing literals every APPEND waits for the
		// server's continuation anyway: no gain, use the plain path.
		receipt, err := t.Put(ctx, d, body)
		return func() (string, error) { return receipt, err }, nil
	}
	cmd := c.Append(server, d.Size, &imap.AppendOptions{Flags: flags, Time: d.Date})
	bodyErr, cerr := copyLiteral(cmd, body, d.Size)
	if bodyErr != nil {
		t.drop()
		return nil, fmt.Errorf("append to %q: %w", d.Folder, bodyErr)
	}
	if err := cmd.Close(); err != nil && cerr == nil {
		cerr = err
	}
	if cerr != nil {
		t.drop()
		return nil, imapconn.Classify(fmt.Errorf("append to %q: %w", d.Folder, cerr))
	}
	return func() (string, error) {
		stop := imapconn.CloseOnDone(ctx, c)
		defer stop()
		data, err := cmd.Wait()
		if err != nil {
			if t.c == c && !refusedOnly(ctx, err) {
				t.drop()
			}
			var lookup quotaLookup
			if t.c == c {
				lookup = t.mainQuotaLookup()
			}
			return "", t.appendErr(ctx, d, err, lookup)
		}
		if data == nil || data.UID == 0 {
			return "", nil
		}
		return fmt.Sprintf("%d:%d", data.UIDValidity, data.UID), nil
	}, nil
}

// pipelineDepth says how many Sends may be in flight on this target.
func (t *Target) pipelineDepth() int {
	if t.pipe != nil {
		return t.pipe.depth()
	}
	return singleDepth
}

// appender returns the session for stores, dialling it when needed; nil
// when the server lacks LITERAL+ (stores then go over go-imap).
func (t *Target) appender(ctx context.Context) (*appendPipe, error) {
	if t.noPipe {
		return nil, nil
	}
	if t.pipe != nil {
		if t.pipe.broken() == nil {
			return t.pipe, nil
		}
		t.pipe = nil
	}
	if t.c != nil && !t.c.Caps().Has(imap.CapLiteralPlus) {
		t.noPipe = true // no need to log in again to learn that
		return nil, nil
	}
	s, err := imapconn.DialRaw(ctx, t.cfg)
	if err != nil {
		if failure.IsFatal(err) || ctx.Err() != nil {
			return nil, err
		}
		// The main session works, a second one does not (a limit on
		// connections per user, say): store over the main session.
		t.log().Warn("imap target: no second session for storing; storing over the main one (slower)", "err", err)
		t.noPipe = true
		return nil, nil
	}
	if !s.Has("LITERAL+") {
		s.Close(true)
		t.noPipe = true
		return nil, nil
	}
	// Answers and writes wait long: giving up on a store whose bytes are
	// on their way leaves its outcome unknown (see appendPipe.abandon).
	s.SetIOTimeout(max(2*t.cfg.Timeout, 2*time.Minute))
	t.pipe = newAppendPipe(s)
	t.pipe.onSelect = t.noteMark
	return t.pipe, nil
}
