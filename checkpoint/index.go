package checkpoint

import (
	"hash/maphash"
	"strings"
	"unsafe"
)

// The in-memory index keeps, per key, only what is needed to answer Get
// without reading the whole journal: the key bytes, the file offset of the
// key's latest intent or done line (which holds the entry's fields), the
// state and the flags. Get reads the line back (from the write buffer or
// with one pread) and decodes it. That keeps a million entries in about
// 60 MB: 24 bytes of slot, the key bytes, and 8-16 bytes of hash table (a
// 32-bit hash tag per entry spares most key comparisons).
//
// Keys live in 1 MiB chunks and slots in fixed chunks, so growing never
// copies them; the hash table is open addressing with linear probing over
// slot numbers.

const (
	stateIntent uint8 = iota + 1
	stateDone
	stateForgotten
)

type slot struct {
	rec   int64  // offset of the latest intent/done line in the file
	flags uint32 // index into index.flagSets (0: none)
	koff  uint32 // key chunk<<20 | offset
	klen  uint16
	state uint8
}

const (
	keyChunkBits  = 20
	keyChunkSize  = 1 << keyChunkBits
	maxKeyLen     = 1<<16 - 1
	slotChunkBits = 14
	slotChunkSize = 1 << slotChunkBits
)

type index struct {
	seed  maphash.Seed
	table []uint64 // hash>>32<<32 | slot number + 1; 0 = empty
	slots [][]slot
	n     uint32 // slots in use (including forgotten ones)
	keys  [][]byte

	flagIDs  map[string]uint32
	flagSets [][]string
}

func newIndex() *index {
	return &index{
		seed:     maphash.MakeSeed(),
		table:    make([]uint64, 1024),
		flagIDs:  map[string]uint32{"": 0},
		flagSets: [][]string{nil},
	}
}

func (x *index) slot(i uint32) *slot { return &x.slots[i>>slotChunkBits][i&(slotChunkSize-1)] }

func (x *index) key(s *slot) []byte {
	c := x.keys[s.koff>>keyChunkBits]
	o := s.koff & (keyChunkSize - 1)
	return c[o : o+uint32(s.klen)]
}

func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// find returns the slot number of key, or ok=false and the table position
// where it would be inserted.
func (x *index) find(key []byte) (num uint32, pos uint64, ok bool) {
	n, pos, _, ok := x.findHash(key)
	return n, pos, ok
}

func (x *index) findHash(key []byte) (num uint32, pos, h uint64, ok bool) {
	mask := uint64(len(x.table) - 1)
	h = maphash.Bytes(x.seed, key)
	tag := h >> 32 << 32
	pos = h >> 32 & mask // from the stored bits, so that grow needs no rehash
	for {
		t := x.table[pos]
		if t == 0 {
			return 0, pos, h, false
		}
		if t&^0xffffffff == tag {
			n := uint32(t) - 1
			if string(x.key(x.slot(n))) == string(key) {
				return n, pos, h, true
			}
		}
		pos = (pos + 1) & mask
	}
}

// get returns the slot of key, or nil.
func (x *index) get(key []byte) *slot {
	n, _, ok := x.find(key)
	if !ok {
		return nil
	}
	return x.slot(n)
}

// upsert returns the slot of key, creating it (state 0) if needed. The
// caller has checked len(key) <= maxKeyLen.
func (x *index) upsert(key []byte) *slot {
	n, pos, h, ok := x.findHash(key)
	if ok {
		return x.slot(n)
	}
	if uint64(x.n+1)*2 > uint64(len(x.table)) {
		x.grow()
		_, pos, h, _ = x.findHash(key)
	}
	// Store the key.
	if len(x.keys) == 0 || len(x.keys[len(x.keys)-1])+len(key) > keyChunkSize {
		x.keys = append(x.keys, make([]byte, 0, keyChunkSize))
	}
	ci := len(x.keys) - 1
	off := len(x.keys[ci])
	x.keys[ci] = append(x.keys[ci], key...)
	// Store the slot.
	num := x.n
	if num>>slotChunkBits >= uint32(len(x.slots)) {
		x.slots = append(x.slots, make([]slot, slotChunkSize))
	}
	s := x.slot(num)
	*s = slot{koff: uint32(ci)<<keyChunkBits | uint32(off), klen: uint16(len(key))}
	x.n++
	x.table[pos] = h>>32<<32 | uint64(num+1)
	return s
}

func (x *index) grow() {
	t := make([]uint64, len(x.table)*2)
	mask := uint64(len(t) - 1)
	for _, e := range x.table {
		if e == 0 {
			continue
		}
		p := e >> 32 & mask
		for t[p] != 0 {
			p = (p + 1) & mask
		}
		t[p] = e
	}
	x.table = t
}

// internFlags returns the id of a flag set given joined with NUL bytes.
func (x *index) internJoined(joined []byte, n int) uint32 {
	if id, ok := x.flagIDs[string(joined)]; ok {
		return id
	}
	s := string(joined)
	id := uint32(len(x.flagSets))
	x.flagIDs[s] = id
	x.flagSets = append(x.flagSets, strings.SplitN(s, "\x00", n))
	return id
}

func (x *index) internFlags(flags []string) uint32 {
	if len(flags) == 0 {
		return 0
	}
	return x.internJoined([]byte(strings.Join(flags, "\x00")), len(flags))
}

func (x *index) flags(id uint32) []string {
	f := x.flagSets[id]
	if f == nil {
		return nil
	}
	return append([]string(nil), f...)
}
