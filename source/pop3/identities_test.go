package pop3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/internal/message"
	"github.com/mailferry/mailferry/internal/testkit/pop3test"
	"github.com/mailferry/mailferry/source"
)

func TestIdentities(t *testing.T) {
	msgs := []struct {
		raw, msgID string
		date       time.Time
	}{
		// The newest Received date is the folded one in the middle.
		{"Received: from a by b; Mon, 1 Mar 2021 09:00:00 +0000\r\n" +
			"Received: from c by d;\r\n Mon, 1 Mar 2021 13:00:00 +0200\r\n" +
			"Received: from e by f; Mon, 1 Mar 2021 10:00:00 +0000\r\n" +
			"Date: Sun, 28 Feb 2021 08:00:00 +0000\r\nMessage-ID: <a@x>\r\n\r\nbody\r\n",
			"<a@x>", time.Date(2021, 3, 1, 11, 0, 0, 0, time.UTC)},
		{"Date: Tue, 2 Mar 2021 10:00:00 -0500\r\nSubject: no id\r\n\r\nbody\r\n", "", time.Date(2021, 3, 2, 15, 0, 0, 0, time.UTC)},
		{"Subject: folded\r\nMessage-ID:\r\n\t<folded@x>\r\n\r\n.dot line\r\n", "<folded@x>", time.Time{}},
		{"message-id: <twin@x>\r\n\r\none\r\n", "<twin@x>", time.Time{}},
		{"Message-Id: <twin@x>\r\n\r\ntwo\r\n", "<twin@x>", time.Time{}},
		{"Subject: s\n\nMessage-ID: <in-body@x>\n", "", time.Time{}},
	}
	var raw [][]byte
	for _, m := range msgs {
		raw = append(raw, []byte(m.raw))
	}
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			srv := startServer(t, pop3test.Options{Messages: raw, NoPipelining: !pipelining})
			src, err := Open(context.Background(), srvCfg(srv))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			f := source.Folder{Name: "INBOX"}
			var ids []source.Identity
			if err := src.Identities(context.Background(), f, func(id source.Identity) error {
				ids = append(ids, id)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			metas, err := src.List(context.Background(), f)
			if err != nil || len(ids) != len(msgs) || len(metas) != len(msgs) {
				t.Fatalf("%d identities, %d metas (%v), want %d", len(ids), len(metas), err, len(msgs))
			}
			// The date the engine stores for the fetched message.
			stored := map[string]time.Time{}
			err = src.Fetch(context.Background(), f, []string{metas[0].ID, metas[1].ID, metas[2].ID}, func(m source.Meta, r io.Reader) error {
				var sc message.Scanner
				_, err := io.Copy(&sc, r)
				stored[m.ID] = sc.InternalDate(time.Time{})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, id := range ids {
				m := metas[i]
				if id.ID != m.ID || id.Size != m.Size || id.MessageID != msgs[i].msgID || !id.Date.Equal(msgs[i].date) {
					t.Errorf("identity %d = %+v, want ID %s size %d Message-ID %q date %v", i, id, m.ID, m.Size, msgs[i].msgID, msgs[i].date)
				}
				if d, ok := stored[id.ID]; ok && !d.Equal(id.Date) {
					t.Errorf("identity %d: date %v, the engine stores %v", i, id.Date, d)
				}
			}
			// fn's error is returned and the session stays usable.
			boom := errors.New("boom")
			n := 0
			if err := src.Identities(context.Background(), f, func(source.Identity) error { n++; return boom }); !errors.Is(err, boom) || n != 1 {
				t.Errorf("Identities with failing fn = %v after %d calls", err, n)
			}
			if _, err := fetchAll(t, src, []string{metas[3].ID}); err != nil {
				t.Errorf("Fetch after fn failed: %v", err)
			}
		})
	}
}

// TestIdentitiesCommands: TOP n 0 pipelined when offered; RETR when CAPA
// lacks TOP; skipped messages the server says are gone.
func TestIdentitiesCommands(t *testing.T) {
	listing := []string{
		"C: LIST", "S: +OK", "S: 1 30", "S: 2 40", "S: .",
		"C: UIDL", "S: +OK", "S: 1 a", "S: 2 b", "S: .",
	}
	hdr := func(id string) []string { return []string{"S: +OK", "S: Message-ID: <" + id + ">", "S: ", "S: ."} }
	noTop := func(steps []string) []string {
		var out []string
		for _, s := range steps {
			if s != "S: TOP" {
				out = append(out, s)
			}
		}
		return out
	}
	tests := []struct {
		name  string
		steps []string
		want  string
	}{
		{"pipelined TOP", concat(withPipelining(loginUserPass), listing,
			[]string{"C: TOP 1 0", "C: TOP 2 0"}, hdr("1@x"), hdr("2@x")), "a <1@x>|b <2@x>"},
		{"TOP one at a time", concat(loginUserPass, listing,
			[]string{"C: TOP 1 0"}, hdr("1@x"), []string{"C: TOP 2 0"}, hdr("2@x")), "a <1@x>|b <2@x>"},
		{"RETR without TOP", concat(noTop(loginUserPass), listing,
			[]string{"C: RETR 1"}, hdr("1@x"), []string{"C: RETR 2"}, hdr("2@x")), "a <1@x>|b <2@x>"},
		{"gone", concat(loginUserPass, listing,
			[]string{"C: TOP 1 0", "S: -ERR no such message", "C: TOP 2 0"}, hdr("2@x")), "b <2@x>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, done := scriptServer(t, tc.steps...)
			src, err := Open(context.Background(), cfgFor(addr))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			err = src.Identities(context.Background(), source.Folder{Name: "INBOX"}, func(id source.Identity) error {
				got = append(got, id.ID+" "+id.MessageID)
				return nil
			})
			if err != nil || strings.Join(got, "|") != tc.want {
				t.Errorf("Identities = %q, %v; want %q", got, err, tc.want)
			}
			src.c.Close()
			waitScript(t, done)
		})
	}
}
