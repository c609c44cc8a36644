package migrate

import (
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The in-process test servers deliver nothing late: no need to wait
	// before a Find (see settleDelay).
	settleDelay = 10 * time.Millisecond
	os.Exit(m.Run())
}
