package checkpoint

import (
	"fmt"
	"testing"
	"unsafe"
)

func TestIndexKeys(t *testing.T) {
	keys := []string{
		"INBOX\x1f1700000000\x1f1", "INBOX\x1f1700000000\x1f4294967295", "INBOX\x1f1700000000\x1f4294967296",
		"INBOX\x1f1700000000\x1f01", "INBOX\x1f1700000000\x1f0", "INBOX\x1f1700000000\x1f", "INBOX\x1f1700000000\x1f-1",
		"INBOX\x1f1700000001\x1f1", "Sent\x1f0\x1fUIDL-abc", "\x1f1", "1", "01", "plain", "a\x1fb\x1fc\x1f7",
		"caf\xe9\x1f1\x1f\xff\xfe", "INBOX\x1f1700000000\x1f12345678901",
	}
	for _, full := range []bool{false, true} {
		t.Run(fmt.Sprintf("groupsFull=%v", full), func(t *testing.T) {
			if full {
				old := maxGroups
				maxGroups = 1
				defer func() { maxGroups = old }()
			}
			x := newIndex()
			for i, k := range keys {
				s := x.upsert([]byte(k))
				if s.state() != 0 {
					t.Fatalf("%q: new slot has state %d", k, s.state())
				}
				s.setState(stateIntent)
				s.setRec(int64(i) << 33) // beyond 32 bits
			}
			for i := 0; i < 5000; i++ { // grow the table
				x.upsert([]byte(fmt.Sprintf("F%d\x1f1\x1f%d", i%3, i))).setState(stateDone)
			}
			for i, k := range keys {
				s := x.get([]byte(k))
				if s == nil {
					t.Fatalf("%q not found", k)
				}
				if got := x.keyString(s); got != k {
					t.Errorf("key %q comes back as %q", k, got)
				}
				if s.rec() != int64(i)<<33 || s.state() != stateIntent {
					t.Errorf("%q: rec %d state %d", k, s.rec(), s.state())
				}
			}
			for _, k := range []string{"INBOX\x1f1700000000\x1f2", "INBOX\x1f1\x1f1", "Nope\x1f1\x1f1", "02", "INBOX\x1f1700000000\x1f001"} {
				if x.get([]byte(k)) != nil {
					t.Errorf("%q found", k)
				}
			}
			if int(x.n) != len(keys)+5000 {
				t.Errorf("n = %d", x.n)
			}
		})
	}
}

func TestSlotIs16Bytes(t *testing.T) {
	if n := unsafe.Sizeof(slot{}); n != 16 {
		t.Errorf("slot is %d bytes, want 16", n)
	}
}
