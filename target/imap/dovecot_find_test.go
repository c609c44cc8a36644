package imap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/failure"
	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/target"
)

func dovecotConfig(t *testing.T, dv *dovecottest.Server, user string, dials *atomic.Int32) imapconn.Config {
	t.Helper()
	pem, err := os.ReadFile(dv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return imapconn.Config{Addr: dv.IMAP, Security: imapconn.STARTTLS, TLSConfig: &tls.Config{RootCAs: pool},
		User: user, Password: dovecottest.Password, Timeout: 10 * time.Second,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
}

// TestDovecotMarkFind: against a real Dovecot (LITERAL+, MULTIAPPEND), the
// engine's way: a mark, then a pipelined store, for each message; every
// answer is then treated as lost. Find with each message's mark, and the
// receipts settled before it taken, gives back each message's own copy,
// twins and messages without a Message-ID included; Census and Inventory
// see the same folder. An over-quota store is an answer: no new session.
func TestDovecotMarkFind(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{QuotaBytes: map[string]int64{"u2": 20000}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var dials atomic.Int32
	tg, err := Open(ctx, dovecotConfig(t, dv, "dst", &dials))
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	folder, err := tg.Ensure(ctx, mailbox.Folder{Name: "Find/Box"})
	if err != nil {
		t.Fatal(err)
	}
	a := []byte("Message-ID: <a@x>\r\nSubject: Grüße\r\n\r\nA\r\n")
	b := []byte("Message-ID: <b@x>\r\nSubject: b\r\n\r\nB\r\n")
	c := []byte("Subject: no id\r\n\r\nC\r\n")
	bodies := [][]byte{a, a, b, c, c, a}
	ids := []string{"<a@x>", "<a@x>", "<b@x>", "", "", "<a@x>"}
	var ds []target.Delivery
	var waits []func() (string, error)
	for i, body := range bodies {
		d := delivery(folder, body, ids[i])
		if i == 5 {
			d.Date = d.Date.Add(time.Minute) // a's bytes, another date
		}
		if d.Mark, err = tg.Mark(ctx, folder); err != nil || d.Mark == "" {
			t.Fatalf("Mark %d = %q, %v", i, d.Mark, err)
		}
		w, err := tg.Send(ctx, d, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		ds, waits = append(ds, d), append(waits, w)
	}
	var receipts []string
	for i, w := range waits {
		r, err := w()
		if err != nil || r == "" {
			t.Fatalf("store %d: %q, %v", i, r, err)
		}
		receipts = append(receipts, r)
	}
	if tg.pipe == nil || !tg.pipe.multi || tg.c != nil {
		t.Fatalf("not stored over a MULTIAPPEND store session alone")
	}
	for i, d := range ds {
		d.Taken = taken(receipts[:i]...)
		if r, ok, err := tg.Find(ctx, d); !ok || err != nil || r != receipts[i] {
			t.Errorf("Find %d (mark %s) = %q, %v, %v; want %q", i, d.Mark, r, ok, err, receipts[i])
		}
	}
	cen, err := tg.Census(ctx, folder)
	if err != nil || cen.Messages != len(bodies) || !strings.HasPrefix(receipts[0], fmt.Sprint(cen.Validity)+":") {
		t.Errorf("Census = %+v, %v", cen, err)
	}
	got := map[string]target.Stored{}
	if err := tg.Inventory(ctx, folder, func(s target.Stored) error { got[s.Receipt] = s; return nil }); err != nil {
		t.Fatal(err)
	}
	for i, r := range receipts {
		s := got[r]
		if s.MessageID != ids[i] || s.Size != int64(len(bodies[i])) || !s.Date.Equal(ds[i].Date) {
			t.Errorf("Inventory %s = %+v; want %q, %d octets, %v", r, s, ids[i], len(bodies[i]), ds[i].Date)
		}
	}
	if len(got) != len(bodies) {
		t.Errorf("Inventory: %d messages", len(got))
	}

	// Over quota: refusals keep the sessions.
	var qdials atomic.Int32
	qt, err := Open(ctx, dovecotConfig(t, dv, "u2", &qdials))
	if err != nil {
		t.Fatal(err)
	}
	defer qt.Close()
	big := append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte("0123456789abcdef\r\n"), 300)...)
	refused := 0
	for i := range 10 {
		_, err := store(ctx, qt, delivery("INBOX", big, ""), big)
		switch {
		case err == nil:
		case failure.KindOf(err) == failure.Quota && errors.Is(err, target.ErrFolderFull):
			refused++
		default:
			t.Fatalf("store %d: %v", i, err)
		}
	}
	if refused == 0 || qdials.Load() > 2 {
		t.Errorf("%d refused for quota, %d connections", refused, qdials.Load())
	}
}

// TestDovecotInventoryScale measures Census and Inventory on a Dovecot
// folder of MAILFERRY_INVENTORY_MESSAGES messages (skipped without it):
//
//	MAILFERRY_INVENTORY_MESSAGES=200000 go test ./target/imap -run InventoryScale -v
func TestDovecotInventoryScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MAILFERRY_INVENTORY_MESSAGES"))
	if n <= 0 {
		t.Skip("MAILFERRY_INVENTORY_MESSAGES not set")
	}
	dv := dovecottest.Start(t, dovecottest.Options{Users: []string{"dst"}})
	base := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	msgs := make([]corpus.Message, n)
	for i := range msgs {
		id := fmt.Sprintf("<scale%d@example.org>", i)
		msgs[i] = corpus.Message{Folder: "Big", MessageID: id, Date: base.Add(time.Duration(i) * time.Second),
			Body: []byte(fmt.Sprintf("Message-ID: %s\r\nFrom: a@example.org\r\nSubject: %d\r\n\r\n%s\r\n", id, i, strings.Repeat("b", 200+i%800)))}
	}
	start := time.Now()
	dv.Load(t, "dst", msgs)
	t.Logf("loaded %d messages in %v", n, time.Since(start))
	ctx := context.Background()
	var dials atomic.Int32
	tg, err := Open(ctx, dovecotConfig(t, dv, "dst", &dials))
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	for _, pass := range []string{"cold", "warm"} {
		start := time.Now()
		c, err := tg.Census(ctx, "Big")
		if err != nil || c.Messages != n {
			t.Fatalf("Census = %+v, %v", c, err)
		}
		census := time.Since(start)
		start = time.Now()
		count := 0
		err = tg.Inventory(ctx, "Big", func(s target.Stored) error {
			if s.MessageID == "" || s.Size == 0 {
				return fmt.Errorf("incomplete %+v", s)
			}
			count++
			return nil
		})
		if err != nil || count != n {
			t.Fatalf("Inventory: %d, %v", count, err)
		}
		t.Logf("%s: Census %v, Inventory of %d messages %v", pass, census, n, time.Since(start))
	}
}
