package main

// plan --probe-target: what storing into an IMAP target costs, measured by
// storing into it. Without it, plan models the store side from benchmark
// runs against Dovecot on this project's machine (estimate.go), which a
// faster or slower server, or the same machine at another hour, is outside
// of.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/target"
)

// folderDeleter is what the probe needs of a target beside target.Target:
// it removes its scratch folders (target/imap's DeleteFolder).
type folderDeleter interface {
	DeleteFolder(ctx context.Context, canonical string) error
}

// imapStoreSample is what storing into scratch folders of an IMAP target
// measured: one session alone, then all of them together, each into its
// own folder (the engine has one worker per folder on an IMAP target).
type imapStoreSample struct {
	OneMsgs  int
	OneTime  time.Duration
	Sessions int
	Msgs     int
	Time     time.Duration
	Size     int64 // the probe's message size: the mean of those to copy
	// Left names scratch folders that could not be deleted.
	Left []string
}

func (s *imapStoreSample) ok() bool {
	return s != nil && s.Msgs > 0 && s.Time > 0 && s.OneMsgs > 0 && s.OneTime > 0
}

// perMsg is the seconds a message costs with all the sessions storing
// (over all of them) and with one alone.
func (s *imapStoreSample) perMsg() (all, one float64) {
	return s.Time.Seconds() / float64(s.Msgs), s.OneTime.Seconds() / float64(s.OneMsgs)
}

// The probe stores for about imapProbeBudget (a third with one session,
// the rest with all), at most imapProbeMaxBytes in all (see also
// probeShare): a probe of big messages stops early, on the count it
// reached.
var (
	imapProbeBudget   = 1500 * time.Millisecond
	imapProbeMaxBytes = int64(64 << 20)
)

// imapProbeMinRounds: the probe stores at least this many of the run's
// batches when its share of the run (probeShare) is fewer, but never more
// than the run itself (probeIMAPStore). Twelve, not six:
// with four workers six gave the sessions together one round each, one
// measurement of about 80 ms, and a moment of the machine's background
// writes in it moved the estimate of a 5,000-message copy by a third
// (125 ms against 75 ms calm; +32 % and -33 % in two benchmark runs).
// With twelve (two rounds each, four alone) five plans against one calm
// Dovecot gave estimates of 1.22-1.27 s, thirteen with six 1.21-1.48 s,
// and the copies after them, alternated, took as long (1.25-1.44 s
// against 1.24-1.43 s): 1,536 scratch messages did not slow the copy
// measurably. Only runs of fewer than 96 batches (12 × probeShare) are
// affected.
var imapProbeMinRounds = 12

// probeIMAPStore measures storing into an IMAP target: workers sessions
// each create a scratch folder (mailferry-plan-probe-<random>-<i>), store
// messages of size bytes in rounds of the run's batch (Send as the
// engine does, MULTIAPPEND where offered), and the folders are deleted
// at the end, also when ctx is cancelled. A folder that could not be
// deleted is named in Left. toCopy sizes the rounds (migrate.BatchSizeFor).
func probeIMAPStore(ctx context.Context, open target.Opener, workers, toCopy int, size int64) (*imapStoreSample, error) {
	workers = max(workers, 1)
	size = min(max(size, 200), 4<<20)
	body := probeBody(size)
	var tag [4]byte
	rand.Read(tag[:])
	prefix := "mailferry-plan-probe-" + hex.EncodeToString(tag[:])
	round := migrate.BatchSizeFor(toCopy, workers)
	// The most the probe stores: a share of the run (the server's work
	// deleting the scratch folders after slows the copy that follows) and
	// of imapProbeMaxBytes, at least a few rounds, and no more than the
	// run itself (a run of 100 messages has batches of 16: twelve would
	// be 192).
	most := int64(min(max(toCopy/probeShare, imapProbeMinRounds*round), max(toCopy, 2*round), int(imapProbeMaxBytes/size)))

	type session struct {
		t      target.Target
		folder string
	}
	sessions := make([]*session, workers)
	var created []string
	var mu sync.Mutex
	var g errgroup.Group
	for i := range sessions {
		g.Go(func() error {
			t, err := open(ctx)
			if err != nil {
				return err
			}
			name, err := t.Ensure(ctx, mailbox.Folder{Name: fmt.Sprintf("%s-%d", prefix, i)})
			if err != nil {
				t.Close()
				return err
			}
			mu.Lock()
			created = append(created, name)
			mu.Unlock()
			sessions[i] = &session{t: t, folder: name}
			return nil
		})
	}
	err := g.Wait()
	ss := &imapStoreSample{Size: size}
	defer func() {
		for _, s := range sessions {
			if s != nil {
				s.t.Close()
			}
		}
		ss.Left = deleteScratch(ctx, open, created)
	}()
	if err != nil {
		return ss, fmt.Errorf("probe the target: %w", err)
	}
	// store has session s store rounds until the deadline or limit
	// messages (at least one round); it returns the messages stored.
	store := func(s *session, deadline time.Time, limit int64) (int, error) {
		n := 0
		for n == 0 || time.Now().Before(deadline) && ctx.Err() == nil && int64(n) < limit {
			k, err := storeRound(ctx, s.t, s.folder, body, round)
			n += k
			if err != nil {
				return n, err
			}
		}
		return n, nil
	}
	// Warm-up, untimed: each session's first round dials its store
	// session and opens its folder.
	for _, s := range sessions {
		g.Go(func() error {
			_, err := storeRound(ctx, s.t, s.folder, body, min(round, 8))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return ss, fmt.Errorf("probe the target: %w", err)
	}
	start := time.Now()
	n, err := store(sessions[0], start.Add(imapProbeBudget/3), most/3)
	ss.OneMsgs, ss.OneTime = n, time.Since(start)
	if err != nil {
		return ss, fmt.Errorf("probe the target: %w", err)
	}
	if workers == 1 {
		ss.Sessions, ss.Msgs, ss.Time = 1, ss.OneMsgs, ss.OneTime
		return ss, nil
	}
	start = time.Now()
	deadline := start.Add(imapProbeBudget - imapProbeBudget/3)
	each := (most - int64(n)) / int64(workers)
	for _, s := range sessions {
		g.Go(func() error {
			n, err := store(s, deadline, each)
			mu.Lock()
			ss.Msgs += n
			mu.Unlock()
			return err
		})
	}
	err = g.Wait()
	ss.Sessions, ss.Time = workers, time.Since(start)
	if err != nil {
		return ss, fmt.Errorf("probe the target: %w", err)
	}
	return ss, nil
}

// probeBody is a message of size bytes, CRLF lines.
func probeBody(size int64) []byte {
	head := "From: mailferry plan <plan@mailferry.invalid>\r\nSubject: mailferry plan --probe-target\r\n\r\n"
	line := append(bytes.Repeat([]byte("x"), 74), '\r', '\n')
	b := append([]byte(head), bytes.Repeat(line, int(size)/len(line)+1)...)
	b = b[:size]
	copy(b[size-2:], "\r\n")
	return b
}

// storeRound sends k messages (fewer when the session pipelines fewer)
// and waits for them, as a worker stores a batch.
func storeRound(ctx context.Context, t target.Target, folder string, body []byte, k int) (int, error) {
	d := target.Delivery{Folder: folder, Date: time.Now(), Size: int64(len(body))}
	pl, ok := t.(target.Pipeliner)
	if !ok {
		for i := 0; i < k; i++ {
			if _, err := t.Put(ctx, d, bytes.NewReader(body)); err != nil {
				return i, err
			}
		}
		return k, nil
	}
	var waits []func() (string, error)
	var sendErr error
	for range k {
		wait, err := pl.Send(ctx, d, bytes.NewReader(body))
		if err != nil {
			sendErr = err
			break
		}
		waits = append(waits, wait)
	}
	n := 0
	for _, w := range waits {
		if _, err := w(); err != nil {
			return n, err
		}
		n++
	}
	return n, sendErr
}

// deleteScratch deletes the probe's folders with a new session, also when
// ctx was cancelled (within 30 s); it returns those it could not delete.
func deleteScratch(ctx context.Context, open target.Opener, folders []string) []string {
	if len(folders) == 0 {
		return nil
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	t, err := open(dctx)
	if err != nil {
		return folders
	}
	defer t.Close()
	del, ok := t.(folderDeleter)
	if !ok {
		return folders
	}
	var left []string
	for _, f := range folders {
		if err := del.DeleteFolder(dctx, f); err != nil {
			left = append(left, f)
		}
	}
	return left
}
