package dovecottest

import (
	"testing"
	"time"

	"mailferry/internal/corpus"
)

func TestLoadDump(t *testing.T) {
	tests := []struct {
		name string
		opt  Options
	}{
		{"separator slash", Options{}},
		{"INBOX. prefix with dot", Options{Separator: ".", Prefix: "INBOX."}},
	}
	msgs := corpus.Generate(corpus.Options{Messages: 300, Seed: 1})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			t0 := time.Now()
			s := Start(t, tc.opt)
			t1 := time.Now()
			s.Load(t, "src", msgs)
			t2 := time.Now()
			got := s.Dump(t, "src")
			t.Logf("start %v, load(300) %v, dump %v", t1.Sub(t0), t2.Sub(t1), time.Since(t2))
			rep := corpus.Compare(msgs, got, corpus.CompareOptions{Flags: true, Dates: true})
			if !rep.OK() {
				t.Fatalf("dump differs from the corpus: %s", rep)
			}
			// The disk layout is the same for both namespace configurations.
			disk := DumpMaildir(t, s.Maildir("src"))
			if rep := corpus.Compare(msgs, disk, corpus.CompareOptions{NormalizeCRLF: true, Flags: true, Dates: true}); !rep.OK() {
				t.Fatalf("Maildir on disk differs from the corpus: %s", rep)
			}
		})
	}
}
