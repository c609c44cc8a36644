package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/cyrustest"
	"github.com/mailferry/mailferry/internal/testkit/dovecottest"
)

// TestSkimmedReRun: on a re-run, pages after a folder's first are listed
// by UID (UID SEARCH, answered with ESEARCH ranges by both servers) and
// FETCHed in full only where the journal has no copy; --memory 16M makes
// pages of 256 UIDs, so folders of a few hundred messages take several.
// Messages that arrived since the last run (with flags and dates) are
// copied exactly once, the folders the re-run lists by UID are said so in
// the log, and a third run copies nothing.
func TestSkimmedReRun(t *testing.T) {
	msgs := smallCorpus(1500) // INBOX 600, Archive 300, Sent 300, Lists/* 150 each
	for i := range msgs {
		// Cyrus refuses bare LF.
		msgs[i].Body = bytes.ReplaceAll(bytes.ReplaceAll(msgs[i].Body, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	}
	extra := corpus.Generate(corpus.Options{Messages: 7, Seed: 41, OnlyInbox: true})
	for i := range extra {
		extra[i].Body = append([]byte(fmt.Sprintf("X-Late: %d\r\n", i)), extra[i].Body...)
		extra[i].MessageID = corpus.MessageIDOf(extra[i].Body)
	}
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) (url string, tls []string, add func([]corpus.Message), dump func() []corpus.Message)
	}{
		{"dovecot", func(t *testing.T) (string, []string, func([]corpus.Message), func() []corpus.Message) {
			dv := dovecottest.Start(t, dovecottest.Options{Users: []string{"src"}})
			dv.Load(t, "src", msgs)
			add := func(ms []corpus.Message) {
				c := imapLogin(t, dv.IMAP, "src")
				defer c.Close()
				for _, m := range ms {
					appendMsg(t, c, m)
				}
			}
			return "imap://src@" + dv.IMAP, []string{"--ca-file", dv.CAFile}, add, func() []corpus.Message { return dv.Dump(t, "src") }
		}},
		{"cyrus", func(t *testing.T) (string, []string, func([]corpus.Message), func() []corpus.Message) {
			cy := cyrustest.Start(t, cyrustest.Options{Users: []string{"src"}})
			cy.Load(t, "src", msgs)
			return "imap://src@" + cy.IMAP + "?tls=none", nil, func(ms []corpus.Message) { cy.Load(t, "src", ms) }, func() []corpus.Message { return cy.Dump(t, "src") }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, tlsArgs, add, dump := tc.url(t)
			dst := filepath.Join(t.TempDir(), "md")
			state := t.TempDir()
			logf := filepath.Join(t.TempDir(), "run.log")
			args := append([]string{"migrate", src, "maildir:" + dst, "--state", state, "--memory", "16M", "--log", logf}, tlsArgs...)
			if r := mf(t, secretEnv, args...); r.code != 0 {
				t.Fatal(r)
			}
			add(extra)
			os.Remove(logf)
			r := mf(t, secretEnv, args...)
			if r.code != 0 {
				t.Fatal(r)
			}
			mustContain(t, r.stdout, fmt.Sprintf("copied         %d messages", len(extra)))
			checkReport(t, "re-run", corpus.Compare(dump(), dovecottest.DumpMaildir(t, dst), compareAll))
			// README: the log says when the first message was copied.
			if b, _ := os.ReadFile(logf); !bytes.Contains(b, []byte(`"msg":"first message copied"`)) {
				t.Errorf("the re-run's --log has no \"first message copied\" record")
			}
			byID := skimmedPerFolder(t, logf)
			if byID["INBOX"] < 600-256 || byID["Archive"] < 300-256 {
				t.Errorf("listed by ID only: %v; want all but the first page of INBOX (600) and Archive (300)", byID)
			}
			r = mf(t, secretEnv, args...)
			if r.code != 0 {
				t.Fatal(r)
			}
			mustContain(t, r.stdout, "copied         0 messages", fmt.Sprintf("already there  %d", len(msgs)+len(extra)))
		})
	}
}

// skimmedPerFolder reads the "folder listed" records of a --log file: how
// many messages of each folder were listed by ID only.
func skimmedPerFolder(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			Msg      string `json:"msg"`
			Folder   string `json:"folder"`
			ByIDOnly int    `json:"by_id_only"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "folder listed" {
			out[rec.Folder] = rec.ByIDOnly
		}
	}
	return out
}
