package migrate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/message"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/target"
)

// memSource is an in-memory source with fault injection.
type memSource struct {
	mu       sync.Mutex
	folders  []source.Folder
	msgs     map[string][]memMsg // by folder name
	sessions atomic.Int32
	maxSess  int32 // >0: more concurrent sessions get ErrSingleSession
	// failFetchEvery: every n-th body read fails mid-way with a reset.
	failFetchEvery int
	fetches        atomic.Int64
	failedOnce     sync.Map // message id -> true once its injected failure happened
	failList       map[string]bool
	// failReads: folder/id -> how many more reads of it fail mid-body
	// (after failDelay); readDelay slows every message down.
	failReads map[string]int
	failDelay time.Duration
	readDelay time.Duration
	// identities: sessions implement source.Identifier.
	identities bool
	// listErrs: the next listErrs Lists fail as a dropped connection would.
	listErrs atomic.Int64
}

type memMsg struct {
	id    string
	body  []byte
	flags []string
	date  time.Time
}

func (s *memSource) opener() source.Opener {
	return func(ctx context.Context) (source.Source, error) {
		n := s.sessions.Add(1)
		if s.maxSess > 0 && n > s.maxSess {
			s.sessions.Add(-1)
			return nil, failure.Mark(failure.Temporary, fmt.Errorf("login: -ERR [IN-USE] locked: %w", source.ErrSingleSession))
		}
		if s.identities {
			return &memIdentSession{memSourceSession{s: s}}, nil
		}
		return &memSourceSession{s: s}, nil
	}
}

type memIdentSession struct{ memSourceSession }

func (m *memSourceSession) Features() source.Features {
	return source.Features{Delete: true, Flags: true, Dates: true}
}

func (m *memIdentSession) Features() source.Features {
	f := m.memSourceSession.Features()
	f.Identities = true
	return f
}

func (m *memIdentSession) Identities(ctx context.Context, f source.Folder, fn func(source.Identity) error) error {
	m.s.mu.Lock()
	l := slices.Clone(m.s.msgs[f.Name])
	m.s.mu.Unlock()
	for _, msg := range l {
		sc := new(message.Scanner)
		sc.Write(msg.body)
		if err := fn(source.Identity{ID: msg.id, MessageID: sc.MessageID(), Date: msg.date, Size: int64(len(msg.body))}); err != nil {
			return err
		}
	}
	return nil
}

type memSourceSession struct {
	s      *memSource
	closed bool
	dele   map[string]bool
}

func (m *memSourceSession) Folders(ctx context.Context) ([]source.Folder, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return slices.Clone(m.s.folders), nil
}

func (m *memSourceSession) List(ctx context.Context, f source.Folder) ([]source.Meta, error) {
	if m.s.failList[f.Name] {
		return nil, errors.New("NO [SERVERBUG] cannot open this folder (injected)")
	}
	if m.s.listErrs.Add(-1) >= 0 {
		return nil, failure.Mark(failure.Temporary, errors.New("connection closed during FETCH (injected)"))
	}
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	var out []source.Meta
	for _, msg := range m.s.msgs[f.Name] {
		out = append(out, source.Meta{ID: msg.id, Size: int64(len(msg.body)), Flags: msg.flags, Received: msg.date})
	}
	return out, nil
}

type failingReader struct {
	r    io.Reader
	left int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, failure.Mark(failure.Temporary, errors.New("connection reset by peer (injected)"))
	}
	if len(p) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= n
	return n, err
}

func (m *memSourceSession) Fetch(ctx context.Context, f source.Folder, ids []string, fn func(source.Meta, io.Reader) error) error {
	m.s.mu.Lock()
	byID := map[string]memMsg{}
	for _, msg := range m.s.msgs[f.Name] {
		byID[msg.id] = msg
	}
	m.s.mu.Unlock()
	var vanished []string
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		msg, ok := byID[id]
		if !ok {
			vanished = append(vanished, id)
			continue
		}
		var r io.Reader = bytes.NewReader(msg.body)
		if m.s.readDelay > 0 {
			time.Sleep(m.s.readDelay)
		}
		m.s.mu.Lock()
		if m.s.failReads[f.Name+"/"+id] > 0 {
			m.s.failReads[f.Name+"/"+id]--
			m.s.mu.Unlock()
			time.Sleep(m.s.failDelay)
			r = &failingReader{r: r, left: len(msg.body) / 2}
		} else {
			m.s.mu.Unlock()
		}
		// Every n-th message fails mid-body on its first read only.
		if n := m.s.fetches.Add(1); m.s.failFetchEvery > 0 && n%int64(m.s.failFetchEvery) == 0 {
			if _, done := m.s.failedOnce.LoadOrStore(f.Name+"/"+id, true); !done {
				r = &failingReader{r: r, left: len(msg.body) / 2}
			}
		}
		if err := fn(source.Meta{ID: id, Size: int64(len(msg.body)), Flags: msg.flags, Received: msg.date}, r); err != nil {
			return err
		}
	}
	if len(vanished) > 0 {
		return &source.VanishedError{Folder: f.Name, IDs: vanished}
	}
	return nil
}

// Delete marks messages; like POP3, deletions take effect at Close.
func (m *memSourceSession) Delete(ctx context.Context, f source.Folder, ids []string) error {
	if m.dele == nil {
		m.dele = map[string]bool{}
	}
	for _, id := range ids {
		m.dele[f.Name+"/"+id] = true
	}
	return nil
}

func (m *memSourceSession) Close() error {
	if len(m.dele) > 0 {
		m.s.mu.Lock()
		for f, l := range m.s.msgs {
			var keep []memMsg
			for _, msg := range l {
				if !m.dele[f+"/"+msg.id] {
					keep = append(keep, msg)
				}
			}
			m.s.msgs[f] = keep
		}
		m.s.mu.Unlock()
		m.dele = nil
	}
	if !m.closed {
		m.closed = true
		m.s.sessions.Add(-1)
	}
	return nil
}

// memTarget is an in-memory target with fault injection.
type memTarget struct {
	mu      sync.Mutex
	folders map[string][]storedMsg
	crlf    bool
	uid     int
	// failPutEvery: every n-th Put fails with a temporary error; when
	// lostReply is set the message is stored anyway (a lost APPEND reply).
	failPutEvery int
	lostReply    bool
	puts         atomic.Int64
	failedOnce   map[[32]byte]int         // per body: injected failures so far (at most one per copy)
	rejectIf     func(body []byte) string // non-empty reason: refuse permanently
	quota        int                      // >0: total messages the target holds before [OVERQUOTA]
	specialUse   map[string]string        // existing folder -> special use
	// pipeline: sessions implement target.Pipeliner.
	pipeline bool
	// findByContent: Find ignores the planned name and matches by bytes,
	// as an IMAP server must (honouring Delivery.Taken).
	findByContent bool
	// block: Put waits until the channel is closed (for cancellation tests)
	block chan struct{}
	// validity is each folder's UIDVALIDITY (receipts say "1:" when none).
	validity map[string]uint32
	// noInventory: sessions do not implement target.Inventorier.
	noInventory bool
	// accountQuota: the quota refusal says the whole account is full.
	accountQuota bool
	// ensureErrs: the next ensureErrs Ensures fail with a temporary error.
	ensureErrs atomic.Int64
	// findErrs: the next findErrs Finds fail with a temporary error.
	findErrs atomic.Int64
	// connectErrs: the next connectErrs Puts fail as a session whose
	// redial is refused (failure.Connect), before storing anything.
	connectErrs atomic.Int64
	// censuses and inventories count those calls.
	censuses, inventories atomic.Int64
	// censusHook, when set, is called at the start of each Census.
	censusHook func(folder string)
	finds      atomic.Int64
	// batch: sessions are target.BatchFinders; findAlls counts FindAll
	// calls (a failing one too: findErrs applies to them as to Find).
	batch    bool
	findAlls atomic.Int64
	// warms counts WarmLookup calls; warmErrs of them fail.
	warms, warmErrs atomic.Int64
}

type storedMsg struct {
	body  []byte
	flags []string
	date  time.Time
	name  string
	uid   string
}

func newMemTarget() *memTarget { return &memTarget{folders: map[string][]storedMsg{"INBOX": nil}} }

func (t *memTarget) opener() target.Opener {
	return func(ctx context.Context) (target.Target, error) {
		if t.noInventory {
			return &memPlainSession{&memTargetSession{t: t}}, nil
		}
		if t.pipeline {
			return &memPipeSession{memTargetSession{t: t}}, nil
		}
		if t.batch {
			return &memBatchSession{memTargetSession: memTargetSession{t: t}}, nil
		}
		return &memTargetSession{t: t}, nil
	}
}

// memPipeSession answers pipelined stores: the body is stored at Send, the
// answer (maybe an injected failure) comes with wait.
type memPipeSession struct{ memTargetSession }

func (m *memPipeSession) Send(ctx context.Context, d target.Delivery, body io.Reader) (func() (string, error), error) {
	receipt, err := m.Put(ctx, d, body)
	return func() (string, error) { return receipt, err }, nil
}

// memBatchSession settles several lookups at once: Find for each in turn,
// a copy given to one counting as taken for the next.
type memBatchSession struct {
	memTargetSession
	// uses counts calls, unguarded: a call made while WarmLookup runs on
	// another goroutine is a data race, which -race reports.
	uses int
}

// WarmLookup counts the warm-ups (and fails one when warmErrs says so); it
// takes a millisecond, so that what runs beside it has time to.
func (m *memBatchSession) WarmLookup(ctx context.Context, folder string) error {
	m.uses++
	m.t.warms.Add(1)
	time.Sleep(time.Millisecond)
	if m.t.warmErrs.Add(-1) >= 0 {
		return failure.Mark(failure.Temporary, errors.New("connection reset during SELECT (injected)"))
	}
	return nil
}

func (m *memBatchSession) Put(ctx context.Context, d target.Delivery, body io.Reader) (string, error) {
	m.uses++
	return m.memTargetSession.Put(ctx, d, body)
}

func (m *memBatchSession) Features() target.Features {
	m.uses++
	f := m.memTargetSession.Features()
	f.BatchFind = true
	return f
}

func (m *memBatchSession) FindAll(ctx context.Context, ds []target.Delivery) ([]target.Found, error) {
	m.uses++
	m.t.findAlls.Add(1)
	if m.t.findErrs.Add(-1) >= 0 {
		return nil, failure.Mark(failure.Temporary, errors.New("connection reset during SEARCH (injected)"))
	}
	out := make([]target.Found, len(ds))
	given := map[string]bool{}
	for i, d := range ds {
		taken := d.Taken
		d.Taken = func(r string) bool { return given[r] || (taken != nil && taken(r)) }
		r, ok, err := m.find(d)
		if err != nil {
			return nil, err
		}
		if ok {
			out[i], given[r] = target.Found{Receipt: r, OK: true}, true
		}
	}
	return out, nil
}

func (t *memTarget) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, l := range t.folders {
		n += len(l)
	}
	return n
}

type memTargetSession struct{ t *memTarget }

// memPlainSession is a session with nothing but the Target methods (no
// Census and Inventory).
type memPlainSession struct{ target.Target }

func (m *memTargetSession) Census(ctx context.Context, folder string) (target.Census, error) {
	m.t.censuses.Add(1)
	if h := m.t.censusHook; h != nil {
		h(folder)
	}
	m.t.mu.Lock()
	defer m.t.mu.Unlock()
	return target.Census{Messages: len(m.t.folders[folder]), Validity: m.t.validityOf(folder)}, nil
}

func (m *memTargetSession) Inventory(ctx context.Context, folder string, fn func(target.Stored) error) error {
	m.t.inventories.Add(1)
	m.t.mu.Lock()
	l := slices.Clone(m.t.folders[folder])
	m.t.mu.Unlock()
	for _, st := range l {
		sc := new(message.Scanner)
		sc.Write(st.body)
		if err := fn(target.Stored{Receipt: st.uid, MessageID: sc.MessageID(), Date: st.date, Size: int64(len(st.body))}); err != nil {
			return err
		}
	}
	return nil
}

// validityOf is folder's UIDVALIDITY (1 unless set). Called with mu held.
func (t *memTarget) validityOf(folder string) uint32 {
	if v := t.validity[folder]; v != 0 {
		return v
	}
	return 1
}

// preload stores messages as another tool (or a restored backup) would.
func (t *memTarget) preload(folder string, msgs []memMsg) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.validityOf(folder)
	for _, msg := range msgs {
		t.uid++
		t.folders[folder] = append(t.folders[folder], storedMsg{body: msg.body, flags: slices.Clone(msg.flags), date: msg.date,
			uid: strconv.Itoa(int(v)) + ":" + strconv.Itoa(t.uid)})
	}
}

// Features: a crlf memTarget stands for an IMAP server without BINARY.
func (m *memTargetSession) Features() target.Features {
	return target.Features{CRLF: m.t.crlf, NUL: !m.t.crlf, ExclusiveFolders: m.t.crlf, Inventory: true, Flags: true, Folders: true}
}

func (m *memPipeSession) Features() target.Features {
	f := m.memTargetSession.Features()
	f.Pipeline = pipelineWindow
	return f
}

func (m *memPlainSession) Features() target.Features {
	f := m.Target.Features()
	f.Inventory, f.Flags, f.Folders = false, false, false // only the Target methods
	return f
}

func (m *memTargetSession) Folders(ctx context.Context) ([]source.Folder, error) {
	m.t.mu.Lock()
	defer m.t.mu.Unlock()
	var out []source.Folder
	for name := range m.t.folders {
		out = append(out, source.Folder{Name: name, SpecialUse: m.t.specialUse[name]})
	}
	return out, nil
}

func (m *memTargetSession) Ensure(ctx context.Context, f source.Folder) (string, error) {
	if m.t.ensureErrs.Add(-1) >= 0 {
		return "", failure.Mark(failure.Temporary, errors.New("use of closed network connection during CREATE (injected)"))
	}
	m.t.mu.Lock()
	defer m.t.mu.Unlock()
	if _, ok := m.t.folders[f.Name]; !ok {
		m.t.folders[f.Name] = nil
	}
	return f.Name, nil
}

func (m *memTargetSession) Put(ctx context.Context, d target.Delivery, body io.Reader) (string, error) {
	if m.t.connectErrs.Add(-1) >= 0 {
		return "", failure.Mark(failure.Connect, errors.New("connect to 127.0.0.1:993: connection refused (injected)"))
	}
	if m.t.block != nil {
		select {
		case <-m.t.block:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	if int64(len(b)) != d.Size {
		return "", fmt.Errorf("size %d, delivery says %d", len(b), d.Size)
	}
	if sha256.Sum256(b) != d.Fingerprint.SHA256 {
		return "", errors.New("fingerprint does not match the bytes")
	}
	if m.t.rejectIf != nil {
		if why := m.t.rejectIf(b); why != "" {
			return "", failure.Mark(failure.Message, &target.Rejected{Reason: why})
		}
	}
	n := m.t.puts.Add(1)
	m.t.mu.Lock()
	defer m.t.mu.Unlock()
	if m.t.quota > 0 {
		total := 0
		for _, l := range m.t.folders {
			total += len(l)
		}
		if total >= m.t.quota {
			if m.t.accountQuota {
				return "", failure.Mark(failure.Quota, fmt.Errorf("NO Over quota: %w", target.ErrAccountFull))
			}
			return "", failure.Mark(failure.Quota, fmt.Errorf("NO [OVERQUOTA] quota exceeded: %w", target.ErrFolderFull))
		}
	}
	// Every n-th Put fails, but no message more than once per copy.
	fail := m.t.failPutEvery > 0 && n%int64(m.t.failPutEvery) == 0
	if fail {
		if m.t.failedOnce == nil {
			m.t.failedOnce = map[[32]byte]int{}
		}
		h := sha256.Sum256(b)
		stored := 0
		for _, st := range m.t.folders[d.Folder] {
			if sha256.Sum256(st.body) == h {
				stored++
			}
		}
		if m.t.failedOnce[h] > stored {
			fail = false
		} else {
			m.t.failedOnce[h]++
		}
	}
	if fail && !m.t.lostReply {
		return "", failure.Mark(failure.Temporary, errors.New("connection reset (injected)"))
	}
	m.t.uid++
	v := m.t.validityOf(d.Folder)
	uid := strconv.Itoa(int(v)) + ":" + strconv.Itoa(m.t.uid)
	m.t.folders[d.Folder] = append(m.t.folders[d.Folder], storedMsg{body: b, flags: slices.Clone(d.Flags), date: d.Date, name: d.Name, uid: uid})
	if fail {
		return "", failure.Mark(failure.Temporary, errors.New("reply lost (injected)"))
	}
	return uid, nil
}

func (m *memTargetSession) Find(ctx context.Context, d target.Delivery) (string, bool, error) {
	m.t.finds.Add(1)
	if m.t.findErrs.Add(-1) >= 0 {
		return "", false, failure.Mark(failure.Temporary, errors.New("connection reset during SEARCH (injected)"))
	}
	return m.find(d)
}

func (m *memTargetSession) find(d target.Delivery) (string, bool, error) {
	m.t.mu.Lock()
	defer m.t.mu.Unlock()
	for _, s := range m.t.folders[d.Folder] {
		if m.t.findByContent {
			if sha256.Sum256(s.body) == d.Fingerprint.SHA256 && (d.Taken == nil || !d.Taken(s.uid)) {
				return s.uid, true, nil
			}
			continue
		}
		if int64(len(s.body)) == d.Fingerprint.Size && sha256.Sum256(s.body) == d.Fingerprint.SHA256 && s.name == d.Name {
			return s.uid, true, nil
		}
	}
	return "", false, nil
}

func (m *memTargetSession) SetFlags(ctx context.Context, folder, receipt string, flags []string) (string, error) {
	m.t.mu.Lock()
	defer m.t.mu.Unlock()
	for i, s := range m.t.folders[folder] {
		if s.uid == receipt {
			m.t.folders[folder][i].flags = slices.Clone(flags)
			return receipt, nil
		}
	}
	return "", fmt.Errorf("no message %s in %q", receipt, folder)
}

func (m *memTargetSession) Close() error { return nil }
