package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/internal/imapconn"
	"github.com/mailferry/mailferry/internal/testkit/imapservers"
	imaptgt "github.com/mailferry/mailferry/target/imap"
)

// TestProbeIMAPStoreServers: on Dovecot and Cyrus the probe stores (with
// MULTIAPPEND over the store session, as the run) and leaves neither a
// scratch folder nor a subscription to one behind.
func TestProbeIMAPStoreServers(t *testing.T) {
	defer func(b time.Duration) { imapProbeBudget = b }(imapProbeBudget)
	imapProbeBudget = 400 * time.Millisecond
	for _, srv := range imapservers.Names {
		t.Run(srv, func(t *testing.T) {
			addr := imapservers.Start(t, srv, "dst")
			cfg := imapconn.Config{Addr: addr, Security: imapconn.None, User: "dst", Password: "secret", Timeout: 10 * time.Second}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ss, err := probeIMAPStore(ctx, imaptgt.Opener(cfg), 2, 5000, 1300)
			if err != nil || !ss.ok() || len(ss.Left) > 0 {
				t.Fatalf("probe: %+v, %v", ss, err)
			}
			c, err := imapclient.DialInsecure(addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Login("dst", "secret").Wait(); err != nil {
				t.Fatal(err)
			}
			for _, subscribed := range []bool{false, true} {
				list, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: subscribed}).Collect()
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range list {
					if strings.Contains(l.Mailbox, "mailferry-plan-probe-") {
						t.Errorf("left behind (subscribed only: %v): %q %v", subscribed, l.Mailbox, l.Attrs)
					}
				}
			}
		})
	}
}
