package pop3

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/message"
	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
	"github.com/mailferry/mailferry/source"
)

// TestDovecotIdentities: against a real Dovecot, the identities from
// TOP n 0 carry the Message-IDs and the dates the engine derives from the
// bodies RETR delivers.
func TestDovecotIdentities(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{Users: []string{"pop"}})
	msgs := []corpus.Message{
		{Body: []byte("Received: from a by b; Mon, 1 Mar 2021 09:00:00 +0000\r\nReceived: from c by d;\r\n\tMon, 1 Mar 2021 13:00:00 +0200\r\nDate: Sun, 28 Feb 2021 08:00:00 +0000\r\nMessage-ID: <a@x>\r\n\r\nbody\r\n")},
		{Body: []byte("Date: Tue, 2 Mar 2021 10:00:00 -0500\r\nMessage-ID:\r\n <folded@x>\r\n\r\n" + strings.Repeat("line\r\n", 2000))},
		{Body: []byte("Subject: none\r\n\r\nno id\r\n")},
		{Body: []byte("Message-ID: <twin@x>\r\n\r\none\r\n")},
		{Body: []byte("Message-ID: <twin@x>\r\n\r\ntwo\r\n")},
	}
	wantID := []string{"<a@x>", "<folded@x>", "", "<twin@x>", "<twin@x>"}
	wantDate := []time.Time{time.Date(2021, 3, 1, 11, 0, 0, 0, time.UTC), time.Date(2021, 3, 2, 15, 0, 0, 0, time.UTC), {}, {}, {}}
	for i := range msgs {
		msgs[i].Folder, msgs[i].Date = "INBOX", time.Date(2024, 1, 1, 0, 0, i, 0, time.UTC)
	}
	dv.Load(t, "pop", msgs)
	src, err := Open(context.Background(), Config{Addr: dv.POP3, Security: None, User: "pop", Password: dovecottest.Password, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f := source.Folder{Name: "INBOX"}
	var ids []source.Identity
	if err := src.Identities(context.Background(), f, func(id source.Identity) error { ids = append(ids, id); return nil }); err != nil {
		t.Fatal(err)
	}
	metas, err := src.List(context.Background(), f)
	if err != nil || len(ids) != len(msgs) || len(metas) != len(msgs) {
		t.Fatalf("%d identities, %d metas (%v)", len(ids), len(metas), err)
	}
	var all []string
	for _, m := range metas {
		all = append(all, m.ID)
	}
	stored := map[string]time.Time{}
	if err := src.Fetch(context.Background(), f, all, func(m source.Meta, r io.Reader) error {
		var sc message.Scanner
		_, err := io.Copy(&sc, r)
		stored[m.ID] = sc.InternalDate(time.Time{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if id.ID != metas[i].ID || id.Size != metas[i].Size || id.MessageID != wantID[i] || !id.Date.Equal(wantDate[i]) || !id.Date.Equal(stored[id.ID]) {
			t.Errorf("identity %d = %+v, want ID %s size %d Message-ID %q date %v (engine: %v)", i, id, metas[i].ID, metas[i].Size, wantID[i], wantDate[i], stored[id.ID])
		}
	}
}
