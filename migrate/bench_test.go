package migrate_test

// Whole-pipeline benchmarks against in-process servers, so that a
// regression of the engine shows without Dovecot:
//
//	go test -run '^$' -bench Pipeline -benchtime 3x ./migrate
//	go test -run '^$' -bench 'Pipeline/pop3-imap' -benchtime 5x -cpuprofile cpu.out ./migrate
//
// Each iteration copies the same deterministic corpus (internal/testkit/corpus) into
// a fresh target with a fresh journal (on disk, fsynced as in a real run).
// Reported: MB/s (b.SetBytes: the corpus bytes per iteration) and msgs/s.
// The "rerun" variants measure a run with nothing to copy (journal replay,
// listing, planning).

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/checkpoint"
	"github.com/mailferry/mailferry/internal/testkit/corpus"
	"github.com/mailferry/mailferry/internal/testkit/imaptest"
	"github.com/mailferry/mailferry/internal/testkit/pop3test"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/source"
	imapsrc "github.com/mailferry/mailferry/source/imap"
	"github.com/mailferry/mailferry/source/pop3"
	"github.com/mailferry/mailferry/target"
	imaptgt "github.com/mailferry/mailferry/target/imap"
	"github.com/mailferry/mailferry/target/maildir"
)

const benchMessages = 400

// benchCorpus is generated once, on first use (not in every `go test`):
// 400 messages of make-corpus.py's size distribution, 11 folders.
var benchCorpus = sync.OnceValue(func() []corpus.Message {
	return corpus.Generate(corpus.Options{Messages: benchMessages, Seed: 1})
})

func corpusBytes(msgs []corpus.Message) int64 {
	var n int64
	for _, m := range msgs {
		n += int64(len(m.Body))
	}
	return n
}

type benchSource struct {
	name  string
	open  func(b *testing.B) source.Opener
	bytes int64
	msgs  int
}

type benchTarget struct {
	name string
	open func(b *testing.B) target.Opener
}

func pop3Source() benchSource {
	var box [][]byte
	for _, m := range benchCorpus() {
		box = append(box, m.Body)
	}
	return benchSource{
		name: "pop3", msgs: len(box), bytes: corpusBytes(benchCorpus()),
		open: func(b *testing.B) source.Opener {
			srv, err := pop3test.Start(pop3test.Options{Messages: box})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { srv.Close() })
			cfg := pop3.Config{Addr: srv.Addr(), Security: pop3.None, User: "user", Password: "secret", Timeout: 10 * time.Second}
			return func(ctx context.Context) (source.Source, error) { return pop3.Open(ctx, cfg) }
		},
	}
}

func imapSource() benchSource {
	return benchSource{
		name: "imap", msgs: len(benchCorpus()), bytes: corpusBytes(benchCorpus()),
		open: func(b *testing.B) source.Opener {
			srv := imaptest.Start(b, imaptest.Options{})
			created := map[string]bool{"INBOX": true}
			for _, m := range benchCorpus() {
				// Parents first, as a real server would list them.
				parts := strings.Split(m.Folder, "/")
				for i := range parts {
					f := strings.Join(parts[:i+1], "/")
					if !created[f] {
						if err := srv.User.Create(f, nil); err != nil {
							b.Fatal(err)
						}
						created[f] = true
					}
				}
				var flags []imap.Flag
				for _, f := range m.Flags {
					flags = append(flags, imap.Flag(f))
				}
				lit := &literal{Reader: strings.NewReader(string(m.Body)), n: int64(len(m.Body))}
				if _, err := srv.User.Append(m.Folder, lit, &imap.AppendOptions{Flags: flags, Time: m.Date}); err != nil {
					b.Fatalf("load %s: %v", m.Folder, err)
				}
			}
			return imapsrc.Opener(srv.Config())
		},
	}
}

type literal struct {
	io.Reader
	n int64
}

func (l *literal) Size() int64 { return l.n }

func imapTarget() benchTarget {
	return benchTarget{name: "imap", open: func(b *testing.B) target.Opener {
		return imaptgt.Opener(imaptest.Start(b, imaptest.Options{}).Config())
	}}
}

func maildirTarget() benchTarget {
	return benchTarget{name: "maildir", open: func(b *testing.B) target.Opener {
		root := filepath.Join(b.TempDir(), "Maildir")
		return func(ctx context.Context) (target.Target, error) { return maildir.Open(ctx, root, maildir.Options{}) }
	}}
}

func runOnce(b *testing.B, src source.Opener, tgt target.Opener, journal string, workers int) *migrate.Summary {
	b.Helper()
	j, err := checkpoint.Open(journal)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	sum, err := migrate.Run(context.Background(), src, tgt, j, migrate.Options{Workers: workers})
	if err != nil {
		b.Fatalf("run: %v", err)
	}
	return sum
}

// BenchmarkPipeline copies the corpus end to end: source server → engine
// (spool, SHA-256, journal intent/done with group commit) → target.
func BenchmarkPipeline(b *testing.B) {
	for _, s := range []benchSource{pop3Source(), imapSource()} {
		for _, t := range []benchTarget{imapTarget(), maildirTarget()} {
			for _, workers := range []int{1, 4} {
				b.Run(fmt.Sprintf("%s-%s/workers=%d", s.name, t.name, workers), func(b *testing.B) {
					src := s.open(b)
					b.SetBytes(s.bytes)
					b.ReportAllocs()
					b.ResetTimer()
					var elapsed time.Duration
					for i := 0; i < b.N; i++ {
						b.StopTimer()
						tgt := t.open(b)
						journal := filepath.Join(b.TempDir(), "journal")
						b.StartTimer()
						start := time.Now()
						sum := runOnce(b, src, tgt, journal, workers)
						elapsed += time.Since(start)
						if sum.Copied != s.msgs || sum.Failed != 0 {
							b.Fatalf("copied %d, failed %d of %d", sum.Copied, sum.Failed, s.msgs)
						}
					}
					b.ReportMetric(float64(s.msgs*b.N)/elapsed.Seconds(), "msgs/s")
				})
			}
		}
	}
}

// BenchmarkPipelineRerun measures a run that finds nothing to copy: open and
// replay the journal, list every folder, subtract, stop.
func BenchmarkPipelineRerun(b *testing.B) {
	for _, s := range []benchSource{pop3Source(), imapSource()} {
		b.Run(s.name+"-maildir", func(b *testing.B) {
			src := s.open(b)
			tgt := maildirTarget().open(b)
			journal := filepath.Join(b.TempDir(), "journal")
			if sum := runOnce(b, src, tgt, journal, 4); sum.Copied != s.msgs {
				b.Fatalf("first run copied %d of %d", sum.Copied, s.msgs)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sum := runOnce(b, src, tgt, journal, 4)
				if sum.Copied != 0 || sum.AlreadyThere != s.msgs {
					b.Fatalf("re-run copied %d, already there %d of %d", sum.Copied, sum.AlreadyThere, s.msgs)
				}
			}
		})
	}
}
