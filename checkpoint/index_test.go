package checkpoint

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
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
				if !s.ok() {
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
				if x.get([]byte(k)).ok() {
					t.Errorf("%q found", k)
				}
			}
			if x.count() != len(keys)+5000 {
				t.Errorf("count = %d", x.count())
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

// TestDensePages: an IMAP folder's UIDs go to dense pages at about 8 bytes
// an entry (slots and table cost about 24); sparse UIDs fall back to slots
// instead of a mostly empty page each; every key is found and walked once.
func TestDensePages(t *testing.T) {
	cases := []struct {
		name      string
		n         int
		uid       func(i int) uint32
		maxBytes  float64 // heap per entry
		allInPage bool
	}{
		{"dense", 200_000, func(i int) uint32 { return uint32(i + 1) }, 9.5, true},
		{"every other UID", 200_000, func(i int) uint32 { return uint32(2*i + 1) }, 19, true},
		{"every third UID", 200_000, func(i int) uint32 { return uint32(3*i + 1) }, 27, false},
		{"sparse", 50_000, func(i int) uint32 { return uint32(4096*i + 7) }, 40, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			x := newIndex()
			for i := 0; i < c.n; i++ {
				s := x.upsert([]byte(fmt.Sprintf("INBOX\x1f7\x1f%d", c.uid(i))))
				s.setState(stateDone)
				s.setRec(int64(i) * 300)
				x.setFlags(&s, uint32(i%3))
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(c.n)
			t.Logf("%.1f bytes per entry; %d in pages, %d in slots", per, x.inPages, x.n)
			if per > c.maxBytes {
				t.Errorf("%.1f bytes per entry, want at most %.1f", per, c.maxBytes)
			}
			if c.allInPage && x.n != 0 {
				t.Errorf("%d entries in slots, want all in pages", x.n)
			}
			if !c.allInPage && len(x.porder) > pageFreeStart {
				t.Errorf("%d pages made for sparse ids", len(x.porder))
			}
			if x.count() != c.n {
				t.Errorf("count %d, want %d", x.count(), c.n)
			}
			for i := 0; i < c.n; i++ {
				k := fmt.Sprintf("INBOX\x1f7\x1f%d", c.uid(i))
				s := x.get([]byte(k))
				if !s.ok() || s.rec() != int64(i)*300 || s.state() != stateDone || s.flagID() != uint32(i%3) {
					t.Fatalf("%q: found %v rec %d state %d flags %d", k, s.ok(), s.rec(), s.state(), s.flagID())
				}
				if got := x.keyString(s); got != k {
					t.Fatalf("%q comes back as %q", k, got)
				}
			}
			seen := map[string]bool{}
			var cur cursor
			for {
				s, more := x.next(&cur)
				if !more {
					break
				}
				k := x.keyString(s)
				if seen[k] {
					t.Fatalf("%q walked twice", k)
				}
				seen[k] = true
			}
			if len(seen) != c.n {
				t.Errorf("walked %d keys, want %d", len(seen), c.n)
			}
			runtime.KeepAlive(x)
		})
	}
}

// TestPageFallbacks: a key kept in a slot (its page refused: the pages
// were sparse) is still found once its page exists; an entry whose
// flag-set number outgrows a page entry moves to a slot with its state and
// offset.
func TestPageFallbacks(t *testing.T) {
	x := newIndex()
	key := func(uid int) []byte { return []byte(fmt.Sprintf("F\x1f1\x1f%d", uid)) }
	for i := 0; i < pageFreeStart; i++ { // one entry per page: sparse
		x.upsert(key(i * pageSize)).setState(stateDone)
	}
	late := pageFreeStart*pageSize + 5
	s := x.upsert(key(late))
	s.setState(stateIntent)
	s.setRec(42)
	if s.s == nil {
		t.Fatal("a key in a new page was given a page while the pages are sparse")
	}
	for i := 0; i < pageFreeStart; i++ { // fill the pages: dense again
		for u := i*pageSize + 1; u < (i+1)*pageSize; u++ {
			x.upsert(key(u)).setState(stateDone)
		}
	}
	x.upsert(key(late + 1)).setState(stateDone) // makes late's page
	if _, ok := x.pages[pageKey(1, uint32(late))]; !ok {
		t.Fatal("no page made once the pages are dense")
	}
	if g := x.get(key(late)); !g.ok() || g.s == nil || g.rec() != 42 || g.state() != stateIntent {
		t.Fatalf("the key kept in a slot: found %v rec %d", g.ok(), g.rec())
	}
	if u := x.upsert(key(late)); u.s == nil {
		t.Fatal("upsert made a second entry in the page for a key in a slot")
	}
	n := x.count()

	defer func(m uint32) { maxPageFlags = m }(maxPageFlags)
	maxPageFlags = 4
	p := x.get(key(3))
	p.setRec(77)
	x.setFlags(&p, 2)
	if p.s != nil || p.flagID() != 2 {
		t.Fatalf("flag set 2 did not stay in the page (slot %v, flags %d)", p.s != nil, p.flagID())
	}
	x.setFlags(&p, 9)
	if p.s == nil || p.flagID() != 9 || p.rec() != 77 || p.state() != stateDone {
		t.Fatalf("after flag set 9: slot %v flags %d rec %d state %d", p.s != nil, p.flagID(), p.rec(), p.state())
	}
	if g := x.get(key(3)); g.s == nil || g.flagID() != 9 {
		t.Fatal("the moved entry is not found in its slot")
	}
	if x.count() != n {
		t.Errorf("count %d after the move, want %d", x.count(), n)
	}
}
