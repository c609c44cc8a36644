package migrate

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/checkpoint"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	imaptgt "github.com/mailferry/mailferry/target/imap"
)

// TestOpenIntentsSettledInABatch: after a kill -9 into an IMAP target, the
// open intents of a folder (some of which landed, some not) are settled
// with a SELECT and a SEARCH for all of them, not one of each per message
// (a resume into a Dovecot folder of 400,000 messages took a second per
// open intent before it copied anything); and the result is exact: what
// landed is not stored again, what did not is.
func TestOpenIntentsSettledInABatch(t *testing.T) {
	const (
		total  = 300 // in the source
		copied = 200 // reached by the interrupted run
		open   = 30  // of those, with an intent and no done record (< 32: no inventory)
		landed = 15  // of the open ones, in the target
	)
	srv := imaptest.Start(t, imaptest.Options{})
	tgt := imaptgt.Opener(srv.Config())
	s := newSource(map[string]int{"INBOX": total})
	all := s.msgs["INBOX"]
	s.msgs["INBOX"] = all[:copied]
	ctx := context.Background()
	run := func(dir string) *Summary {
		t.Helper()
		j := openJournal(t, dir)
		defer j.Close()
		sum, err := Run(ctx, s.opener(), tgt, j, Options{Workers: 2, BatchSize: 64, backoff: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	dir := t.TempDir()
	run(dir)

	// The journal of a run killed after the first copied-open done records,
	// with the last open-landed of the open stores lost on the way.
	j := openJournal(t, dir)
	ents := map[string]checkpoint.Entry{}
	j.Range(func(k string, e checkpoint.Entry) bool { ents[k] = e; return true })
	j.Close()
	dir2 := t.TempDir()
	j2 := openJournal(t, dir2)
	var lost []imap.UID
	for i, m := range all[:copied] {
		k := Key("INBOX", 7, m.id)
		e, ok := ents[k]
		if !ok || !e.Done {
			t.Fatalf("%s not copied by the first run", k)
		}
		if err := j2.Intents(ctx, []checkpoint.Record{{Op: "intent", Key: k, Folder: e.Folder, Name: e.Name, Size: e.Size}}); err != nil {
			t.Fatal(err)
		}
		if i < copied-open {
			if err := j2.Done(checkpoint.Record{Op: "done", Key: k, Folder: e.Folder, Name: e.Name, Size: e.Size, SHA256: e.SHA256, MsgID: e.MsgID, Receipt: e.Receipt}); err != nil {
				t.Fatal(err)
			}
		} else if i >= copied-open+landed {
			var v, u uint32
			if _, err := fmt.Sscanf(e.Receipt, "%d:%d", &v, &u); err != nil {
				t.Fatal(err)
			}
			lost = append(lost, imap.UID(u))
		}
	}
	j2.Close()
	c := dialMem(t, srv)
	var del imap.UIDSet
	del.AddNum(lost...)
	if err := c.Store(del, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}

	s.msgs["INBOX"] = all
	st, err := c.Status("INBOX", &imap.StatusOptions{UIDNext: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	sel, sea := srv.Selects.Load(), srv.Searches.Load()
	sum := run(dir2)
	sel, sea = srv.Selects.Load()-sel, srv.Searches.Load()-sea
	t.Logf("resume with %d open intents: %d SELECT, %d SEARCH", open, sel, sea)
	if want := total - copied + open - landed; sum.Copied != want || sum.AlreadyThere != copied-open+landed || sum.Failed != 0 {
		t.Errorf("copied %d, already there %d, failed %d; want %d, %d, 0", sum.Copied, sum.AlreadyThere, sum.Failed, want, copied-open+landed)
	}
	// A Find per open intent costs a SELECT and a SEARCH each.
	if sea > 2 || sel > 6 {
		t.Errorf("%d open intents settled with %d SELECT and %d SEARCH; want a few, not one per intent", open, sel, sea)
	}

	// Every source message exactly once, with its bytes.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var every imap.SeqSet
	every.AddRange(1, 0)
	msgs, err := c.Fetch(every, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	count := map[[32]byte]int{}
	for _, m := range msgs {
		for _, b := range m.BodySection {
			count[sha256.Sum256(b.Bytes)]++
		}
	}
	// The resume's first store is a message the killed run had not
	// reached: the lookup of its open intents does not hold the copy back.
	fresh := map[[32]byte]bool{}
	for _, m := range all[copied:] {
		fresh[sha256.Sum256(m.body)] = true
	}
	for _, m := range msgs {
		if m.UID < st.UIDNext {
			continue
		}
		for _, b := range m.BodySection {
			if !fresh[sha256.Sum256(b.Bytes)] {
				t.Errorf("the resume's first store (UID %d) is a message of the interrupted run; want one it had not reached", m.UID)
			}
		}
		break
	}
	for _, m := range all {
		if n := count[sha256.Sum256(m.body)]; n != 1 {
			t.Errorf("message %s is in the target %d times", m.id, n)
		}
	}
	if len(msgs) != total {
		t.Errorf("the target holds %d messages; want %d", len(msgs), total)
	}
}

// dialMem logs in to the test server, INBOX selected.
func dialMem(t *testing.T, srv *imaptest.Server) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(srv.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(imaptest.User, imaptest.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOpenIntentsBatchOnAnyTarget: on a BatchFinder, open intents are
// settled with FindAll, not Find: those that landed are not stored again,
// those that did not are stored once (without a Find of their own); and
// when FindAll fails, the one-by-one lookups take over.
func TestOpenIntentsBatchOnAnyTarget(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("FindAll fails=%v", fail), func(t *testing.T) {
			const n, open, gone = 1000, 20, 8
			s := newSource(map[string]int{"INBOX": n})
			tg := newMemTarget()
			tg.batch, tg.findByContent = true, true
			dir := t.TempDir()
			if _, err := runOnce(t, context.Background(), dir, s, tg, Options{Workers: 2}); err != nil {
				t.Fatal(err)
			}
			// The first gone of the open stores never landed.
			j := openJournal(t, dir)
			lost := map[string]bool{}
			j.Range(func(k string, e checkpoint.Entry) bool {
				if len(lost) == gone {
					return false
				}
				lost[e.Receipt] = true
				return true
			})
			j.Close()
			tg.mu.Lock()
			kept := tg.folders["INBOX"][:0]
			for _, st := range tg.folders["INBOX"] {
				if !lost[st.uid] {
					kept = append(kept, st)
				}
			}
			tg.folders["INBOX"] = kept
			tg.mu.Unlock()
			dir2 := openIntentsJournal(t, dir, open)
			if fail {
				// The warm-up fails too: only the lookup counts.
				tg.findErrs.Store(1)
				tg.warmErrs.Store(1)
			}
			finds, alls, warms := tg.finds.Load(), tg.findAlls.Load(), tg.warms.Load()
			sum, err := runOnce(t, context.Background(), dir2, s, tg, Options{Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			finds, alls = tg.finds.Load()-finds, tg.findAlls.Load()-alls
			t.Logf("%d FindAll, %d Find", alls, finds)
			if sum.Copied != gone || sum.AlreadyThere != n-gone || sum.Failed != 0 {
				t.Errorf("copied %d, already %d, failed %d; want %d, %d, 0", sum.Copied, sum.AlreadyThere, sum.Failed, gone, n-gone)
			}
			switch {
			case alls == 0:
				t.Error("no FindAll")
			case tg.warms.Load()-warms < alls:
				t.Errorf("%d FindAll, %d warm-ups: the target was not warmed while the source was read", alls, tg.warms.Load()-warms)
			case !fail && finds != 0:
				t.Errorf("%d Finds besides FindAll", finds)
			case fail && finds == 0:
				t.Error("FindAll failed and no Find took over")
			}
			checkExactlyOnce(t, s, tg)
		})
	}
}
