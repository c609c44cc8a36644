package checkpoint

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
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

// TestPrefixes: per prefix counts agree with Keys, also for keys kept whole
// when the prefixes ran out.
func TestPrefixes(t *testing.T) {
	for _, full := range []bool{false, true} {
		t.Run(fmt.Sprintf("groupsFull=%v", full), func(t *testing.T) {
			if full {
				old := maxGroups
				maxGroups = 2
				defer func() { maxGroups = old }()
			}
			j := open(t, filepath.Join(t.TempDir(), "journal"))
			defer j.Close()
			ctx := context.Background()
			for i := 0; i < 60; i++ {
				r := testRecord(i)
				r.Key = fmt.Sprintf("F%d\x1f%d\x1f%d", i%4, 7+i%2, i)
				if i%10 == 0 {
					r.Key = fmt.Sprintf("bare%d", i)
				}
				if err := j.Intent(ctx, r); err != nil {
					t.Fatal(err)
				}
				if i%3 == 0 {
					j.Done(Record{Key: r.Key, Receipt: "1:1"})
				}
				if i%7 == 0 {
					j.Forget(r.Key)
				}
			}
			want := map[string][2]int{}
			j.Keys(func(k string, done bool) bool {
				i := strings.LastIndexByte(k, 0x1f)
				if i < 0 {
					return true
				}
				c := want[k[:i]]
				if done {
					c[0]++
				} else {
					c[1]++
				}
				want[k[:i]] = c
				return true
			})
			got := map[string][2]int{}
			j.Prefixes(func(p string, done, pending int) bool {
				if _, dup := got[p]; dup {
					t.Errorf("prefix %q twice", p)
				}
				got[p] = [2]int{done, pending}
				return true
			})
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Prefixes = %v, want %v", got, want)
			}
		})
	}
}

// TestFirstDone: the first done key of a prefix, whether the prefix is
// interned or (out of group numbers) its keys are kept whole; intents,
// forgotten keys and keys of a longer prefix do not count.
func TestFirstDone(t *testing.T) {
	for _, groups := range []int{maxGroups, 1} {
		t.Run(fmt.Sprintf("groups=%d", groups), func(t *testing.T) {
			defer func(g int) { maxGroups = g }(maxGroups)
			maxGroups = groups
			j, err := Open(filepath.Join(t.TempDir(), "journal"))
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			ctx := context.Background()
			for _, r := range []Record{
				{Op: "intent", Key: "Other\x1f7\x1f1"}, {Op: "done", Key: "Other\x1f7\x1f1"},
				{Op: "intent", Key: "INBOX\x1f7\x1fx\x1f9"}, {Op: "done", Key: "INBOX\x1f7\x1fx\x1f9"}, // prefix INBOX\x1f7\x1fx
				{Op: "intent", Key: "INBOX\x1f7\x1f5"},
				{Op: "intent", Key: "INBOX\x1f7\x1f6"}, {Op: "done", Key: "INBOX\x1f7\x1f6"},
				{Op: "intent", Key: "INBOX\x1f7\x1f8"}, {Op: "done", Key: "INBOX\x1f7\x1f8"},
			} {
				if r.Op == "intent" {
					err = j.Intent(ctx, r)
				} else {
					err = j.Done(r)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if k, ok := j.FirstDone("INBOX\x1f7"); !ok || k != "INBOX\x1f7\x1f6" {
				t.Errorf("FirstDone = %q, %v; want INBOX 7 6", k, ok)
			}
			if err := j.Forget("INBOX\x1f7\x1f6"); err != nil {
				t.Fatal(err)
			}
			if k, ok := j.FirstDone("INBOX\x1f7"); !ok || k != "INBOX\x1f7\x1f8" {
				t.Errorf("after Forget: FirstDone = %q, %v; want INBOX 7 8", k, ok)
			}
			if k, ok := j.FirstDone("INBOX\x1f8"); ok {
				t.Errorf("FirstDone of an unknown prefix = %q", k)
			}
		})
	}
}
