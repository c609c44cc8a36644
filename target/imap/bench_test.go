package imap

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailferry/mailferry/target"
)

// BenchmarkSendMulti stores 256 messages of ~60 KB (the benchmark corpus'
// mean) per op through the store session into the scripted MULTIAPPEND
// server, waiting the way the engine does. It measures the client side
// (command encoding, literal copy, answer parsing) plus the fake's parsing.
func BenchmarkSendMulti(b *testing.B) {
	f := &fakeMulti{answer: okUIDs, discard: true}
	p := dialPipe(b, f.start(b))
	body := []byte("Subject: bench\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef012345678901234\r\n", 940))
	ctx := context.Background()
	const n = 256
	b.SetBytes(int64(n * len(body)))
	b.ResetTimer()
	for range b.N {
		var waits []func() (string, error)
		next := 0
		for i := 0; i < n; i++ {
			if len(waits)-next >= p.depth() {
				if _, err := waits[next](); err != nil {
					b.Fatal(err)
				}
				next++
			}
			d := target.Delivery{Folder: "INBOX", Size: int64(len(body))}
			w, err := p.send(ctx, "INBOX", d, []imap.Flag{imap.FlagSeen}, bytes.NewReader(body), nil)
			if err != nil {
				b.Fatal(err)
			}
			waits = append(waits, w)
		}
		for ; next < len(waits); next++ {
			if _, err := waits[next](); err != nil {
				b.Fatal(fmt.Errorf("message %d: %w", next, err))
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
