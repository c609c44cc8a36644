package maildir

import (
	"context"
	"testing"

	"github.com/mailferry/mailferry/internal/testkit/conformance"
	"github.com/mailferry/mailferry/target"
)

func TestConformance(t *testing.T) {
	root := t.TempDir()
	conformance.RunTarget(t, func(t testing.TB) target.Target {
		tg, err := Open(context.Background(), root, quiet)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	})
}
