// Package imap is the IMAP target: it stores messages with APPEND (streamed,
// with flags and internal date), creates folders, and finds messages an
// interrupted APPEND may have stored.
//
// A Target is a main session on go-imap (folders, search, flags) and, when
// the server has LITERAL+, a store session of its own (multiappend.go); the
// main one is logged out while the store session works. A store refused
// with a tagged NO leaves its session as it was; go-imap v2 (beta.8)
// closes the connection itself when it refuses a synchronizing literal,
// and the Target then reconnects transparently on the next call, as after
// any other failure.
package imap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/internal/message"
	"github.com/mailferry/mailferry/target"
)

// Target is an IMAP session that stores mail.
type Target struct {
	cfg   imapconn.Config
	c     *imapclient.Client
	names imapconn.Names
	// existing holds the server names known to exist (nil: not listed yet).
	existing map[string]bool
	// perm caches, per server folder, what PERMANENTFLAGS allow.
	perm map[string]permFlags
	// selected is the server name of the selected folder ("" none).
	selected    string
	selValidity uint32
	// pipe is the session stores go over (Send); noPipe: the server
	// cannot take them that way.
	pipe   *appendPipe
	noPipe bool
	// haveNames: names has been loaded (it outlives the connection).
	haveNames bool
	// uses maps the special uses the target's folders have (from LIST)
	// to their server names; wantUse is the use Ensure was asked to give
	// a canonical name when it creates it (see specialuse.go).
	uses, wantUse map[string]string
	// binary: the server announced BINARY and LITERAL+ (see AppendsBinary).
	binary bool
	// marks holds, per server folder, a UIDVALIDITY and a UID that every
	// message stored from now on will reach (see Mark).
	marks map[string]folderMark
	// limits: the server's APPENDLIMIT (appendlimit.go).
	limits appendLimits
	// fullRoot holds, per server folder, the quota root found full.
	fullRoot map[string]quotaRoot
	// Log receives the notes about dropped keywords; nil: the Config's
	// Logger.
	Log *slog.Logger
}

type permFlags struct {
	any bool            // `\*`
	kw  map[string]bool // lower-cased keywords allowed
}

var (
	_ target.Target            = (*Target)(nil)
	_ target.FolderLister      = (*Target)(nil)
	_ target.FlagSetter        = (*Target)(nil)
	_ target.BinaryAppender    = (*Target)(nil)
	_ target.Quotaer           = (*Target)(nil)
	_ target.AppendLimiter     = (*Target)(nil)
	_ target.CapabilityLister  = (*Target)(nil)
	_ target.SpecialUseCreator = (*Target)(nil)
)

// Open connects and logs in.
func Open(ctx context.Context, cfg imapconn.Config) (*Target, error) {
	t := &Target{cfg: cfg, perm: map[string]permFlags{}}
	if _, err := t.conn(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// Opener returns a target.Opener for cfg.
func Opener(cfg imapconn.Config) target.Opener {
	return func(ctx context.Context) (target.Target, error) { return Open(ctx, cfg) }
}

func (t *Target) log() *slog.Logger {
	if t.Log != nil {
		return t.Log
	}
	return t.cfg.Log()
}

// conn returns the live client, dialling a new one when needed.
func (t *Target) conn(ctx context.Context) (*imapclient.Client, error) {
	if c := imapconn.Live(t.c, t.drop); c != nil {
		return c, nil
	}
	c, names, err := imapconn.DialNames(ctx, t.cfg)
	if err != nil {
		return nil, err
	}
	t.c, t.names, t.haveNames = c, names, true
	t.binary = c.Caps().Has(imap.CapBinary) && c.Caps().Has(imap.CapLiteralPlus)
	return c, nil
}

// AppendsBinary reports whether a Delivery marked Binary (NUL bytes) is
// stored as it is: the server announced BINARY, and stores go over the
// store session, which sends it as a literal8 (go-imap cannot).
func (t *Target) AppendsBinary() bool {
	if t.noPipe {
		return false
	}
	if t.pipe != nil && t.pipe.broken() == nil {
		return t.pipe.s.Has("BINARY")
	}
	return t.binary
}

// noBinary refuses a message holding NUL bytes where it cannot go as a
// literal8: a normal literal may not carry NUL (Cyrus refuses it, Dovecot
// serves it as 0x80).
func noBinary(d target.Delivery) error {
	return failure.Mark(failure.Message, &target.Rejected{
		Reason: "holds NUL bytes, and this session to the server cannot send them as binary (literal8); --strip-nul removes them",
		Err:    fmt.Errorf("append to %q: NUL bytes without BINARY", d.Folder),
	})
}

// drop closes the connection; the next call reconnects.
func (t *Target) drop() {
	if t.c != nil {
		t.c.Close()
	}
	t.c, t.selected, t.selValidity = nil, "", 0
}

// Close logs out and closes the connection.
func (t *Target) Close() error {
	if t.pipe != nil {
		t.pipe.close()
		t.pipe = nil
	}
	if t.c == nil {
		return nil
	}
	c := t.c
	t.c = nil
	return imapconn.Logout(c)
}

// Features declares what an IMAP target can do. NUL depends on the
// session (BINARY, see AppendsBinary), Pipeline on the store session.
func (t *Target) Features() target.Features {
	return target.Features{
		CRLF: true, NUL: t.AppendsBinary(), ExclusiveFolders: true, Pipeline: t.pipelineDepth(),
		Marks: true, BatchFind: true, Inventory: true, Flags: true, Folders: true,
		Quota: true, Capabilities: true, AppendLimit: true, SpecialUseCreate: true,
	}
}

// short runs a short command under a deadline and ctx; on error the
// connection is dropped.
func (t *Target) short(ctx context.Context, what string, f func(c *imapclient.Client) error) error {
	c, err := t.conn(ctx)
	if err != nil {
		return err
	}
	return imapconn.Do(ctx, &t.cfg, c, t.drop, what, f)
}

// loadFolders fills t.existing from LIST "" "*".
func (t *Target) loadFolders(ctx context.Context) ([]*imap.ListData, error) {
	var all []*imap.ListData
	var ns imapconn.Namespaces
	err := t.short(ctx, "list folders", func(c *imapclient.Client) error {
		var err error
		if ns, err = imapconn.AskNamespaces(c); err != nil {
			return err
		}
		all, err = c.List("", "*", imapconn.ListOptions(c)).Collect()
		return err
	})
	if err != nil {
		return nil, err
	}
	t.existing = map[string]bool{"INBOX": true}
	t.uses = map[string]string{}
	// Other users' and shared folders (Cyrus lists them beside the
	// user's own) are neither mapped onto nor reported as the target's.
	var l []*imap.ListData
	for _, d := range all {
		if ns.Outside(d.Mailbox) != "" {
			continue
		}
		l = append(l, d)
		if imapconn.Selectable(d.Attrs) {
			t.existing[d.Mailbox] = true
		}
		if u := imapconn.SpecialUse(d.Attrs); u != "" && t.uses[u] == "" {
			t.uses[u] = d.Mailbox
		}
	}
	return l, nil
}

// Folders lists the target's folders with their special-use attributes.
func (t *Target) Folders(ctx context.Context) ([]mailbox.Folder, error) {
	l, err := t.loadFolders(ctx)
	if err != nil {
		return nil, err
	}
	var out []mailbox.Folder
	for _, d := range l {
		if !imapconn.Selectable(d.Attrs) {
			continue
		}
		name, ok := t.names.ToCanonical(d.Mailbox)
		if !ok {
			continue
		}
		out = append(out, mailbox.Folder{Name: name, SpecialUse: imapconn.SpecialUse(d.Attrs)})
	}
	return out, nil
}

// Ensure creates the folder (and its parents) when missing, subscribes it,
// and returns its canonical name. A folder created for a special use
// (f.SpecialUse) the target has no folder for yet gets it, where the
// server offers CREATE-SPECIAL-USE.
func (t *Target) Ensure(ctx context.Context, f mailbox.Folder) (string, error) {
	if _, err := t.conn(ctx); err != nil {
		return "", err
	}
	t.noteUse(f)
	server := t.names.ToServer(f.Name)
	if err := t.ensureServer(ctx, f.Name); err != nil {
		return "", err
	}
	name, ok := t.names.ToCanonical(server)
	if !ok {
		name = f.Name
	}
	return name, nil
}

func (t *Target) ensureServer(ctx context.Context, canonical string) error {
	if t.existing == nil {
		if _, err := t.loadFolders(ctx); err != nil {
			return err
		}
	}
	server := t.names.ToServer(canonical)
	if t.existing[server] {
		return nil
	}
	parts := strings.Split(strings.Trim(canonical, "/"), "/")
	for i := 1; i <= len(parts); i++ {
		name := t.names.ToServer(strings.Join(parts[:i], "/"))
		if t.existing[name] {
			continue
		}
		var err error
		if i == len(parts) {
			err = t.createLeaf(ctx, canonical, name)
		} else {
			err = t.short(ctx, fmt.Sprintf("create folder %q", name), func(c *imapclient.Client) error {
				return c.Create(name, nil).Wait()
			})
		}
		if err != nil && imapconn.Code(err) != imap.ResponseCodeAlreadyExists {
			if !imapconn.IsNo(err) {
				return err
			}
			// Some servers answer a plain NO for an existing folder. A
			// name the server refuses (Cyrus: "NO Invalid mailbox name")
			// fails this folder only; the engine reports it and goes on.
			if _, lerr := t.loadFolders(ctx); lerr != nil || !t.existing[name] {
				return fmt.Errorf("create folder %q: %w", name, err)
			}
		}
		t.existing[name] = true
		delete(t.marks, name) // a new folder: what was known of the old one is void
		if i == len(parts) {
			serr := t.short(ctx, fmt.Sprintf("subscribe folder %q", name), func(c *imapclient.Client) error {
				return c.Subscribe(name).Wait()
			})
			if serr != nil {
				t.log().Warn("imap target: subscribe failed", "folder", name, "err", serr)
			}
		}
	}
	return nil
}

// selectFolder SELECTs a server folder (read-write: PERMANENTFLAGS are only
// meaningful there) and caches its permanent flags.
func (t *Target) selectFolder(ctx context.Context, server string, force bool) (*imap.SelectData, error) {
	if !force && t.selected == server && t.c != nil {
		return &imap.SelectData{UIDValidity: t.selValidity}, nil
	}
	var sd *imap.SelectData
	err := t.short(ctx, fmt.Sprintf("select folder %q", server), func(c *imapclient.Client) error {
		var err error
		sd, err = c.Select(server, nil).Wait()
		return err
	})
	if err != nil {
		t.selected = ""
		return nil, err
	}
	t.selected, t.selValidity = server, sd.UIDValidity
	p := permFlags{kw: map[string]bool{}}
	list := sd.PermanentFlags
	if list == nil { // RFC 3501: no PERMANENTFLAGS means FLAGS are permanent
		list = sd.Flags
	}
	for _, f := range list {
		if f == imap.FlagWildcard {
			p.any = true
		} else {
			p.kw[strings.ToLower(string(f))] = true
		}
	}
	t.perm[server] = p
	return sd, nil
}

var systemFlags = map[string]imap.Flag{
	`\seen`: imap.FlagSeen, `\answered`: imap.FlagAnswered, `\flagged`: imap.FlagFlagged,
	`\draft`: imap.FlagDraft, `\deleted`: imap.FlagDeleted,
}

// ValidKeyword reports whether s is a valid IMAP flag-keyword atom.
func ValidKeyword(s string) bool { return message.ValidKeyword(s) }

// flagsFor returns the flags that can be stored in server folder: system
// flags always, keywords when valid and allowed by PERMANENTFLAGS.
func (t *Target) flagsFor(ctx context.Context, server string, flags []string) ([]imap.Flag, error) {
	var out []imap.Flag
	var kws []string
	seen := map[string]bool{}
	for _, f := range flags {
		lf := strings.ToLower(f)
		if seen[lf] {
			continue
		}
		seen[lf] = true
		if sf, ok := systemFlags[lf]; ok {
			out = append(out, sf)
			continue
		}
		if strings.HasPrefix(f, `\`) {
			continue // \Recent, unknown system flags: not settable
		}
		if !ValidKeyword(f) {
			t.log().Warn("imap target: dropped an invalid keyword", "folder", server, "keyword", f)
			continue
		}
		kws = append(kws, f)
	}
	if len(kws) == 0 {
		return out, nil
	}
	p, ok := t.perm[server]
	if !ok {
		if _, err := t.selectFolder(ctx, server, true); err != nil {
			return nil, err
		}
		p = t.perm[server]
	}
	for _, k := range kws {
		if p.any || p.kw[strings.ToLower(k)] {
			out = append(out, imap.Flag(k))
		} else {
			t.log().Warn("imap target: the folder does not accept this keyword; dropped", "folder", server, "keyword", k)
		}
	}
	return out, nil
}

// copyLiteral copies exactly size octets of body to w, the literal of an
// APPEND. bodyErr reports a body that failed, or was shorter or longer than
// size: the command must then never be ended, or the server would store a
// wrong message. writeErr reports that w failed (the connection).
func copyLiteral(w io.Writer, body io.Reader, size int64) (bodyErr, writeErr error) {
	cr := &countingReader{r: body}
	_, err := io.CopyN(w, cr, size)
	switch {
	case err == nil:
		var one [1]byte
		if n, _ := io.ReadFull(cr, one[:]); n != 0 {
			return fmt.Errorf("the message is longer than its announced size %d", size), nil
		}
		return nil, nil
	case cr.err != nil:
		return fmt.Errorf("read the message: %w", cr.err), nil
	case errors.Is(err, io.EOF):
		return fmt.Errorf("the message is shorter (%d) than its announced size %d", cr.n, size), nil
	}
	return nil, err
}

type countingReader struct {
	r   io.Reader
	n   int64
	err error // the body's own read error (not io.EOF)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// Put APPENDs one message, streamed, with its flags and internal date. The
// receipt is "uidvalidity:uid" when the server has UIDPLUS, else "".
func (t *Target) Put(ctx context.Context, d target.Delivery, body io.Reader) (receipt string, err error) {
	if d.Binary {
		// Only the store session can send a literal8.
		wait, err := t.Send(ctx, d, body)
		if err != nil {
			return "", err
		}
		return wait()
	}
	if _, err := t.conn(ctx); err != nil {
		return "", err
	}
	server := t.names.ToServer(d.Folder)
	if err := t.ensureServer(ctx, d.Folder); err != nil {
		return "", err
	}
	flags, err := t.flagsFor(ctx, server, d.Flags)
	if err != nil {
		return "", err
	}
	if err := t.checkLimit(ctx, server, d, nil); err != nil {
		return "", err
	}
	cr := &countingReader{r: body}
	defer func() { t.noteReceipt(server, receipt) }()
	receipt, err = t.append(ctx, server, d, flags, cr)
	if err != nil && imapconn.Code(err) == imap.ResponseCodeTryCreate {
		delete(t.existing, server)
		if cerr := t.ensureServer(ctx, d.Folder); cerr != nil {
			return "", cerr
		}
		if cr.n != 0 {
			s, ok := body.(io.Seeker)
			if !ok {
				return "", failure.Mark(failure.Temporary, fmt.Errorf("append to %q: folder created after TRYCREATE, retry the message: %w", d.Folder, err))
			}
			if _, serr := s.Seek(0, io.SeekStart); serr != nil {
				return "", fmt.Errorf("append to %q: rewind the message: %w", d.Folder, serr)
			}
			cr = &countingReader{r: body}
		}
		receipt, err = t.append(ctx, server, d, flags, cr)
	}
	return receipt, err
}

func (t *Target) append(ctx context.Context, server string, d target.Delivery, flags []imap.Flag, cr *countingReader) (string, error) {
	c, err := t.conn(ctx)
	if err != nil {
		return "", err
	}
	stop := imapconn.CloseOnDone(ctx, c)
	defer stop()
	cmd := c.Append(server, d.Size, &imap.AppendOptions{Flags: flags, Time: d.Date})
	bodyErr, cerr := copyLiteral(cmd, cr, d.Size)
	if bodyErr != nil {
		// Abort without ending the command: nothing is stored.
		t.drop()
		return "", fmt.Errorf("append to %q: %w", d.Folder, bodyErr)
	}
	closeErr := cmd.Close()
	data, err := cmd.Wait()
	if err == nil && cerr == nil && closeErr != nil {
		err = closeErr
	}
	if err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		if !refusedOnly(ctx, err, cerr, closeErr) {
			t.drop()
		}
		return "", t.appendErr(ctx, d, err, t.mainQuotaLookup())
	}
	if data == nil || data.UID == 0 {
		return "", nil
	}
	return fmt.Sprintf("%d:%d", data.UIDValidity, data.UID), nil
}

// refusedOnly reports a store the server refused with a tagged NO after
// taking all of it: the session is as good as before (a refusal is an
// answer). When go-imap had to give up the literal (refused before its
// continuation) it closes the connection itself, and writeErr is set.
func refusedOnly(ctx context.Context, err error, writeErrs ...error) bool {
	for _, w := range writeErrs {
		if w != nil {
			return false
		}
	}
	return ctx.Err() == nil && imapconn.IsNo(err)
}

// overQuota recognises an over-quota refusal without the [OVERQUOTA] code
// (Cyrus: "NO Over quota") by its text; codes that say otherwise are
// handled before.
func overQuota(ie *imap.Error) bool {
	return ie.Type == imap.StatusResponseTypeNo && ie.Code != imap.ResponseCodeTooBig &&
		strings.Contains(strings.ToLower(ie.Text), "quota")
}

// appendErr classifies a failed store. lookup, when set, asks the folder's
// quotas, for a plain NO that may be over quota and to tell a full account
// from a full folder.
func (t *Target) appendErr(ctx context.Context, d target.Delivery, err error, lookup quotaLookup) error {
	if ctx.Err() != nil {
		return imapconn.Wrap(ctx, fmt.Errorf("append to %q: %w", d.Folder, err))
	}
	var ie *imap.Error
	if !errors.As(err, &ie) {
		return imapconn.Classify(fmt.Errorf("append to %q: %w", d.Folder, err))
	}
	werr := fmt.Errorf("append to %q: %w", d.Folder, err)
	switch ie.Code {
	case imap.ResponseCodeOverQuota:
		return t.quotaErr(ctx, d, err, lookup, true)
	case imap.ResponseCodeUnavailable, imap.ResponseCodeLimit, "THROTTLED", imap.ResponseCodeInUse, imap.ResponseCodeServerBug:
		return failure.Mark(failure.Temporary, werr)
	case imap.ResponseCodeTryCreate:
		return failure.Mark(failure.Temporary, werr)
	case imap.ResponseCodeAuthenticationFailed, imap.ResponseCodeAuthorizationFailed, imap.ResponseCodeExpired:
		return failure.Mark(failure.Auth, werr)
	case imap.ResponseCodeNoPerm:
		return failure.Mark(failure.Fatal, werr)
	}
	if ie.Type == imap.StatusResponseTypeBye {
		return failure.Mark(failure.Temporary, werr)
	}
	if overQuota(ie) {
		return t.quotaErr(ctx, d, err, lookup, true)
	}
	if ie.Type == imap.StatusResponseTypeNo && strings.Contains(strings.ToLower(ie.Text), "i/o error") {
		// Cyrus' "NO System I/O error": the server's trouble (or a
		// connection half-closed under the literal), not the message's.
		return failure.Mark(failure.Temporary, werr)
	}
	if ie.Type == imap.StatusResponseTypeNo && ie.Code == "" && lookup != nil {
		// A plain NO may still be over quota (a server that says so in
		// other words): the folder's quotas tell.
		if q := t.quotaErr(ctx, d, err, lookup, false); q != nil {
			return q
		}
	}
	reason := ie.Text
	if ie.Code != "" {
		reason = "[" + string(ie.Code) + "] " + reason
	}
	return failure.Mark(failure.Message, &target.Rejected{Reason: reason, Err: werr})
}

// parseReceipt splits "uidvalidity:uid".
func parseReceipt(r string) (uint32, imap.UID, bool) {
	v, u, ok := strings.Cut(r, ":")
	if !ok {
		return 0, 0, false
	}
	vv, err1 := strconv.ParseUint(v, 10, 32)
	uu, err2 := strconv.ParseUint(u, 10, 32)
	if err1 != nil || err2 != nil || uu == 0 {
		return 0, 0, false
	}
	return uint32(vv), imap.UID(uu), true
}

// SetFlags replaces the flags of a stored message (UID STORE FLAGS.SILENT).
// The receipt does not change.
func (t *Target) SetFlags(ctx context.Context, folder, receipt string, flags []string) (string, error) {
	validity, uid, ok := parseReceipt(receipt)
	if !ok {
		return "", failure.Mark(failure.Message, fmt.Errorf("set flags in %q: receipt %q is not \"uidvalidity:uid\"", folder, receipt))
	}
	if _, err := t.conn(ctx); err != nil {
		return "", err
	}
	server := t.names.ToServer(folder)
	sd, err := t.selectFolder(ctx, server, false)
	if err != nil {
		return "", err
	}
	if sd.UIDValidity != validity {
		return "", failure.Mark(failure.Message, fmt.Errorf("set flags in %q: the folder's UIDVALIDITY changed (%d, receipt has %d)", folder, sd.UIDValidity, validity))
	}
	fl, err := t.flagsFor(ctx, server, flags)
	if err != nil {
		return "", err
	}
	if fl == nil {
		fl = []imap.Flag{}
	}
	err = t.short(ctx, fmt.Sprintf("store flags in %q", folder), func(c *imapclient.Client) error {
		return c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: fl}, nil).Close()
	})
	if err != nil {
		return "", err
	}
	return receipt, nil
}
