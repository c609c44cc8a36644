package imap

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/target"
)

// TestDovecotFindAllBigFolder measures, on a Dovecot INBOX of
// MAILFERRY_BIG_FIND messages (skipped without it: loading 100,000 takes a
// minute), what settling the 128 open intents of a kill -9 costs: a Find
// each, or one FindAll. Half of them landed (the last 64 messages of the
// folder), half did not; the marks are 2,000 messages back. Both ways must
// give the same answers.
func TestDovecotFindAllBigFolder(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MAILFERRY_BIG_FIND"))
	if n < 200 {
		t.Skip("MAILFERRY_BIG_FIND=N (messages in the folder, at least 200) not set")
	}
	if !dovecottest.Available() {
		t.Skip("Dovecot is not installed")
	}
	dv := dovecottest.Start(t, dovecottest.Options{})
	msgs := corpus.Generate(corpus.Options{Messages: n, Seed: 3, OnlyInbox: true})
	start := time.Now()
	dv.Load(t, "dst", msgs)
	t.Logf("loaded %d messages in %v", n, time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var dials atomic.Int32
	open := func() *Target {
		tg, err := Open(ctx, dovecotConfig(t, dv, "dst", &dials))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tg.Close() })
		return tg
	}
	tg := open()
	mark, err := tg.Mark(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var v, next uint32
	if _, err := fmt.Sscanf(mark, "%d:%d", &v, &next); err != nil {
		t.Fatalf("mark %q: %v", mark, err)
	}
	old := fmt.Sprintf("%d:%d", v, max(int(next)-2000, 1))
	var ds []target.Delivery
	for i, m := range msgs[len(msgs)-64:] {
		body := m.Body
		d := target.Delivery{Folder: "INBOX", Date: m.Date, Size: int64(len(body)), Mark: old,
			Fingerprint: target.Fingerprint{MessageID: m.MessageID, Size: int64(len(body)), SHA256: sha256.Sum256(body)}}
		ds = append(ds, d)
		// One that never landed: another Message-ID, other bytes.
		other := append([]byte(fmt.Sprintf("Message-ID: <never-%d@mailferry.test>\r\n", i)), body...)
		ds = append(ds, target.Delivery{Folder: "INBOX", Date: m.Date, Size: int64(len(other)), Mark: old,
			Fingerprint: target.Fingerprint{MessageID: fmt.Sprintf("<never-%d@mailferry.test>", i), Size: int64(len(other)), SHA256: sha256.Sum256(other)}})
	}
	one := open()
	start = time.Now()
	var each []target.Found
	given := map[string]bool{}
	for _, d := range ds {
		d.Taken = func(r string) bool { return given[r] }
		r, ok, err := one.Find(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		each = append(each, target.Found{Receipt: r, OK: ok})
		given[r] = ok
	}
	tEach := time.Since(start)
	all := open()
	start = time.Now()
	found, err := all.FindAll(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	tAll := time.Since(start)
	t.Logf("%d open intents in a folder of %d: a Find each %v (%v a message), one FindAll %v",
		len(ds), n, tEach.Round(time.Millisecond), (tEach / time.Duration(len(ds))).Round(time.Millisecond), tAll.Round(time.Millisecond))
	nfound := 0
	for i := range ds {
		if found[i] != each[i] {
			t.Errorf("delivery %d: FindAll %+v, Find %+v", i, found[i], each[i])
		}
		if found[i].OK {
			nfound++
		}
	}
	if nfound != len(ds)/2 {
		t.Errorf("found %d of %d; want %d", nfound, len(ds), len(ds)/2)
	}
}
