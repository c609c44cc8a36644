package imap

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/source"
)

// TestDovecot checks Identities and a body cut by FIN against a real
// Dovecot: the Message-IDs as Dovecot answers HEADER.FIELDS, and a FETCH
// whose connection is closed in order mid-literal fails instead of
// delivering the part that arrived.
func TestDovecot(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{Users: []string{"src"}})
	date := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	msgs := []corpus.Message{
		{Body: []byte("Message-ID: <a@x>\r\nSubject: a\r\n\r\nbody\r\n"), MessageID: "<a@x>"},
		{Body: []byte("Subject: big\r\nMessage-ID:\r\n <folded@x>\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 1225)), MessageID: "<folded@x>"},
		{Body: []byte("Subject: none\r\n\r\nno id\r\n")},
		{Body: []byte("Message-ID: <twin@x>\r\n\r\none\r\n"), MessageID: "<twin@x>"},
		{Body: []byte("Message-ID: <twin@x>\r\n\r\ntwo\r\n"), MessageID: "<twin@x>"},
	}
	for i := range msgs {
		msgs[i].Folder, msgs[i].Date = "INBOX", date.Add(time.Duration(i)*time.Hour)
	}
	dv.Load(t, "src", msgs)
	cfg := imapconn.Config{Addr: dv.IMAP, Security: imapconn.None, User: "src", Password: dovecottest.Password, Timeout: 10 * time.Second}
	s := openSrc(t, cfg)
	f := folder(t, s, "INBOX")
	ids := identities(t, s, f)
	metas, err := s.List(context.Background(), f)
	if err != nil || len(ids) != len(msgs) || len(metas) != len(msgs) {
		t.Fatalf("%d identities, %d metas (%v), want %d", len(ids), len(metas), err, len(msgs))
	}
	for i, id := range ids {
		m := metas[i]
		if id.ID != m.ID || id.Size != m.Size || !id.Date.Equal(msgs[i].Date) || id.MessageID != msgs[i].MessageID {
			t.Errorf("identity %d = %+v, want ID %s size %d date %v Message-ID %q", i, id, m.ID, m.Size, msgs[i].Date, msgs[i].MessageID)
		}
	}

	big := len(msgs[1].Body)
	p := &cutProxy{addr: dv.IMAP, nth: 2, cut: func(_, start, n int) (int, bool) { return start + n/2, start >= 0 }}
	cut := cfg
	cut.Addr = startCutProxy(t, p)
	s2 := openSrc(t, cut)
	all := []string{metas[0].ID, metas[1].ID, metas[2].ID}
	whole := map[string]bool{}
	fn := func(m source.Meta, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		i, _ := strconv.Atoi(m.ID)
		if string(b) != string(msgs[i-1].Body) {
			t.Errorf("message %s delivered as %d octets, want %d", m.ID, len(b), len(msgs[i-1].Body))
		}
		whole[m.ID] = true
		return nil
	}
	err = s2.Fetch(context.Background(), f, all, fn)
	want := "got " + strconv.Itoa(big/2) + " of " + strconv.Itoa(big) + " octets"
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), want) || whole[metas[1].ID] {
		t.Fatalf("Fetch through a FIN mid-literal = %v (delivered %v), want %q", err, whole, want)
	}
	t.Logf("cut: %v", err)
	clear(whole)
	if err := s2.Fetch(context.Background(), f, all, fn); err != nil || len(whole) != 3 {
		t.Fatalf("second Fetch = %v, delivered %v", err, whole)
	}
}
