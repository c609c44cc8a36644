package imap

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/mailbox"
	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	srcimap "github.com/mailferry/mailferry/source/imap"
	"github.com/mailferry/mailferry/target"
)

// TestDovecot runs against a private Dovecot (internal/testkit/dovecottest)
// whose user "src" holds a generated corpus (internal/testkit/corpus's
// default folders: nested, non-ASCII names; flags, keywords, attachments,
// exact duplicates). It lists the
// folders, fetches every message of src and compares bytes, flags and
// dates with the corpus, streams each one into user dst (STARTTLS with the
// instance's certificate) and checks dst holds the same.
func TestDovecot(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{Users: []string{"src", "dst"}})
	msgs := corpus.Generate(corpus.Options{Messages: 300, Seed: 11})
	dv.Load(t, "src", msgs)
	pem, err := os.ReadFile(dv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := imapconn.Config{Addr: dv.IMAP, Security: imapconn.STARTTLS,
		TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, User: "src", Password: dovecottest.Password, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	want := corpusEntries(msgs)
	dcfg := cfg
	dcfg.User = "dst"
	emptyAccount(ctx, t, dcfg)
	src, err := srcimap.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := Open(ctx, dcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	folders, err := src.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	var lastPut target.Delivery
	for _, f := range folders {
		metas, err := src.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		name, err := dst.Ensure(ctx, mailbox.Folder{Name: f.Name, SpecialUse: f.SpecialUse})
		if err != nil || name != f.Name {
			t.Fatalf("Ensure(%q) = %q, %v", f.Name, name, err)
		}
		ids := make([]string, len(metas))
		for i, m := range metas {
			ids[i] = m.ID
		}
		err = src.Fetch(ctx, f, ids, func(m mailbox.Meta, r io.Reader) error {
			h := sha256.New()
			d := target.Delivery{Folder: name, Flags: m.Flags, Date: m.Received, Size: m.Size}
			if _, err := dst.Put(ctx, d, io.TeeReader(r, h)); err != nil {
				return err
			}
			got[f.Name] = append(got[f.Name], entry(h.Sum(nil), m.Flags, m.Received))
			d.Fingerprint = target.Fingerprint{Size: m.Size}
			copy(d.Fingerprint.SHA256[:], h.Sum(nil))
			lastPut = d
			return nil
		})
		if err != nil {
			t.Fatalf("Fetch %q: %v", f.Name, err)
		}
	}
	compare(t, "src vs corpus", got, want)

	// What dst holds now.
	dsrc, err := srcimap.Open(ctx, dcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dsrc.Close()
	dfolders, err := dsrc.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gotDst := map[string][]string{}
	for _, f := range dfolders {
		metas, err := dsrc.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range metas {
			ids = append(ids, m.ID)
		}
		err = dsrc.Fetch(ctx, f, ids, func(m mailbox.Meta, r io.Reader) error {
			h := sha256.New()
			if _, err := io.Copy(h, r); err != nil {
				return err
			}
			gotDst[f.Name] = append(gotDst[f.Name], entry(h.Sum(nil), m.Flags, m.Received))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	compare(t, "dst vs corpus", gotDst, want)
	if _, ok, err := dst.Find(ctx, lastPut); !ok || err != nil {
		t.Errorf("Find(last message) = %v, %v", ok, err)
	}
}

func entry(sum []byte, flags []string, date time.Time) string {
	fl := slices.Clone(flags)
	for i := range fl {
		fl[i] = strings.ToLower(fl[i])
	}
	slices.Sort(fl)
	return fmt.Sprintf("%x %s %d", sum[:8], strings.Join(fl, ","), date.Unix())
}

func compare(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	n := 0
	for f, w := range want {
		g := got[f]
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			t.Errorf("%s: folder %q differs:\n got %d %q\nwant %d %q", what, f, len(g), g, len(w), w)
		}
		n += len(w)
	}
	for f := range got {
		if _, ok := want[f]; !ok && len(got[f]) > 0 {
			t.Errorf("%s: unexpected folder %q with %d messages", what, f, len(got[f]))
		}
	}
	t.Logf("%s: %d messages in %d folders compared", what, n, len(want))
}

// corpusEntries is what the account holds, per folder: entry of each
// message (Dovecot stores LF and delivers CRLF; the corpus is CRLF).
func corpusEntries(msgs []corpus.Message) map[string][]string {
	out := map[string][]string{}
	for _, m := range msgs {
		sum := sha256.Sum256(m.Body)
		out[m.Folder] = append(out[m.Folder], entry(sum[:], m.Flags, m.Date))
	}
	return out
}

// emptyAccount removes every folder but INBOX and every message of INBOX,
// so that the test can run again on the same instance.
func emptyAccount(ctx context.Context, t *testing.T, cfg imapconn.Config) {
	c, err := imapconn.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(l, func(a, b *imap.ListData) int { return len(b.Mailbox) - len(a.Mailbox) })
	for _, d := range l {
		if d.Mailbox != "INBOX" {
			if err := c.Delete(d.Mailbox).Wait(); err != nil {
				t.Fatalf("delete %q: %v", d.Mailbox, err)
			}
		}
	}
	sd, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sd.NumMessages > 0 {
		var all imap.SeqSet
		all.AddRange(1, 0)
		if err := c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Expunge().Close(); err != nil {
			t.Fatal(err)
		}
	}
}
