package checkpoint

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"unsafe"
)

// The in-memory index keeps, per key, only what is needed to answer Get
// without reading the whole journal: the key, the file offset of the key's
// latest intent or done line (which holds the entry's fields), the state
// and the flags. Get reads the line back (from the write buffer or with one
// pread) and decodes it.
//
// A key is split at its last 0x1f byte into a prefix and an id (the
// engine's keys are folder 0x1f UIDVALIDITY 0x1f id). Prefixes are interned
// (a 16-bit group number); an id in canonical decimal that fits 32 bits (an
// IMAP UID) is kept as an integer, any other id (a POP3 UIDL, a Maildir
// file name) as bytes in 1 MiB chunks. A key without 0x1f is an id in group
// 0. So an entry in a slot costs 16 bytes plus 4-8 bytes of hash table
// (about 24 bytes), an entry with a string id its bytes and one or two
// more; an IMAP UID usually lives in a dense page instead (below).
//
// Slots live in fixed chunks, so growing never copies them; the hash table
// is open addressing with linear probing over slot numbers, at most 3/4
// full.
//
// Dense pages. An IMAP folder's UIDs are mostly consecutive, so its
// numeric ids are kept apart from slots and table: a page holds the entries
// of 1,024 consecutive UIDs of one prefix, 8 bytes each (offset, state,
// flag-set number, a present bit), found by (prefix, UID/1024) in a map.
// That is 8 bytes per message where a slot and its table entry cost about
// 24, and there is no table to double as the account grows: a million
// IMAP entries take 8 MB instead of 24 (and 28 while the table grows). A
// page is only made while the pages hold on average at least 410 entries
// (40 %; after the first 16), so that they never cost more than about 20
// bytes an entry: a folder with sparse UIDs falls back to slots. A key in
// a slot is looked up in the table after its page. An entry whose
// flag-set number outgrows 21 bits moves to a slot.

const (
	stateIntent uint8 = iota + 1
	stateDone
	stateForgotten
)

const (
	stateMask = 0x3
	numericID = 0x80 // slot.bits: the id is the integer in kid
)

// slot is one key's entry: 16 bytes.
type slot struct {
	off   uint32 // offset of the latest intent/done line: low 32 bits
	flags uint32 // index into index.flagSets (0: none)
	kid   uint32 // the numeric id, or the string id's chunk<<20 | offset
	grp   uint16 // interned prefix (0: none)
	hi    uint8  // offset bits 32-39
	bits  uint8  // state | numericID
}

// maxOffset bounds a record's file offset (1 TiB) so that it fits a slot.
const maxOffset = 1 << 40

func (s *slot) rec() int64 { return int64(s.hi)<<32 | int64(s.off) }

func (s *slot) setRec(off int64) { s.off, s.hi = uint32(off), uint8(off>>32) }

func (s *slot) state() uint8 { return s.bits & stateMask }

func (s *slot) setState(st uint8) { s.bits = s.bits&^stateMask | st }

const (
	keyChunkBits  = 20
	keyChunkSize  = 1 << keyChunkBits
	maxKeyLen     = 1<<16 - 1
	slotChunkBits = 14
	slotChunkSize = 1 << slotChunkBits

	keySep = 0x1f
)

// maxGroups is the number of prefixes interned; keys with other prefixes
// are kept whole (a variable for tests).
var maxGroups = 1<<16 - 1

type index struct {
	seed  maphash.Seed
	mix   uint64
	table []uint32 // slot number + 1; 0 = empty
	slots [][]slot
	n     uint32 // slots in use (including forgotten ones)
	ids   [][]byte

	pages   map[uint64]*dpage // by pageKey
	porder  []*dpage          // in the order they were made
	inPages int               // entries present in pages (including forgotten ones)
	numSlot int               // numeric ids with a prefix kept in slots

	groups   map[string]uint16
	prefixes []string // by group number; [0] unused

	flagIDs  map[string]uint32
	flagSets [][]string
}

func newIndex() *index {
	x := &index{
		seed:     maphash.MakeSeed(),
		table:    make([]uint32, 1024),
		groups:   map[string]uint16{},
		prefixes: []string{""},
		flagIDs:  map[string]uint32{"": 0},
		flagSets: [][]string{nil},
		pages:    map[uint64]*dpage{},
	}
	x.mix = maphash.Comparable(x.seed, uint64(0x9e3779b97f4a7c15))
	return x
}

func (x *index) slot(i uint32) *slot { return &x.slots[i>>slotChunkBits][i&(slotChunkSize-1)] }

func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// parsed is a key split into what a slot holds.
type parsed struct {
	grp     uint16
	numeric bool
	kid     uint32 // numeric id
	id      []byte // string id
}

// parse splits key. With create, an unknown prefix is interned; without,
// ok=false means the key cannot be in the index.
func (x *index) parse(key []byte, create bool) (p parsed, ok bool) {
	id := key
	if i := bytes.LastIndexByte(key, keySep); i >= 0 {
		prefix := key[:i]
		g, known := x.groups[string(prefix)]
		switch {
		case known:
			p.grp, id = g, key[i+1:]
		case len(x.prefixes) > maxGroups:
			// Out of group numbers: the whole key is the id in group 0.
		case !create:
			return p, false
		default:
			g = uint16(len(x.prefixes))
			x.prefixes = append(x.prefixes, string(prefix))
			x.groups[string(prefix)] = g
			p.grp, id = g, key[i+1:]
		}
	}
	if v, isNum := canonicalUint32(id); isNum {
		p.numeric, p.kid = true, v
	} else {
		p.id = id
	}
	return p, true
}

// canonicalUint32 parses b when it is a decimal number without leading
// zeros that fits 32 bits, so that formatting it gives b back.
func canonicalUint32(b []byte) (uint32, bool) {
	if len(b) == 0 || len(b) > 10 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

func (x *index) hash(p *parsed) uint64 {
	var h uint64
	if p.numeric {
		h = uint64(p.kid) | 1<<32
	} else {
		h = maphash.Bytes(x.seed, p.id)
	}
	h ^= uint64(p.grp)<<48 ^ x.mix
	// splitmix64's finalizer
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>27) * 0x94d049bb133111eb
	return h ^ h>>31
}

// strID returns the string id of a slot without the numeric bit.
func (x *index) strID(s *slot) []byte {
	c := x.ids[s.kid>>keyChunkBits]
	o := s.kid & (keyChunkSize - 1)
	n, w := binary.Uvarint(c[o:])
	return c[o+uint32(w) : o+uint32(w)+uint32(n)]
}

func (x *index) matches(s *slot, p *parsed) bool {
	if s.grp != p.grp || (s.bits&numericID != 0) != p.numeric {
		return false
	}
	if p.numeric {
		return s.kid == p.kid
	}
	return bytes.Equal(x.strID(s), p.id)
}

// find returns the slot number of p, or ok=false and the table position
// where it would be inserted.
func (x *index) find(p *parsed) (num uint32, pos uint64, ok bool) {
	mask := uint64(len(x.table) - 1)
	pos = x.hash(p) & mask
	for {
		t := x.table[pos]
		if t == 0 {
			return 0, pos, false
		}
		if x.matches(x.slot(t-1), p) {
			return t - 1, pos, true
		}
		pos = (pos + 1) & mask
	}
}

// get returns the entry of key (ref.ok() false: none).
func (x *index) get(key []byte) ref {
	p, ok := x.parse(key, false)
	if !ok {
		return ref{}
	}
	if p.numeric && p.grp != 0 {
		if pg := x.pages[pageKey(p.grp, p.kid)]; pg != nil {
			if e := &pg.ents[p.kid&(pageSize-1)]; *e != 0 {
				return ref{e: e, grp: p.grp, kid: p.kid}
			}
		}
		if x.numSlot == 0 {
			return ref{}
		}
	}
	n, _, ok := x.find(&p)
	if !ok {
		return ref{}
	}
	return ref{s: x.slot(n)}
}

// upsert returns the entry of key, creating it (state 0) if needed. The
// caller has checked len(key) <= maxKeyLen.
func (x *index) upsert(key []byte) ref {
	p, _ := x.parse(key, true)
	var pg *dpage
	if p.numeric && p.grp != 0 {
		pk := pageKey(p.grp, p.kid)
		pg = x.pages[pk]
		if pg != nil {
			if e := &pg.ents[p.kid&(pageSize-1)]; *e != 0 {
				return ref{e: e, grp: p.grp, kid: p.kid}
			}
		}
		if x.numSlot > 0 {
			if n, _, ok := x.find(&p); ok {
				return ref{s: x.slot(n)}
			}
		}
		if pg == nil && (len(x.porder) < pageFreeStart || x.inPages >= pageMinFill*len(x.porder)) {
			pg = &dpage{key: pk}
			x.pages[pk] = pg
			x.porder = append(x.porder, pg)
		}
		if pg != nil {
			e := &pg.ents[p.kid&(pageSize-1)]
			*e = pagePresent
			x.inPages++
			return ref{e: e, grp: p.grp, kid: p.kid}
		}
		x.numSlot++
	}
	return ref{s: x.newSlot(&p)}
}

// newSlot adds p (not in the index) as a slot in the table.
func (x *index) newSlot(p *parsed) *slot {
	n, pos, ok := x.find(p)
	if ok {
		return x.slot(n)
	}
	if uint64(x.n+1)*4 > uint64(len(x.table))*3 {
		x.grow()
		_, pos, _ = x.find(p)
	}
	s := slot{grp: p.grp}
	if p.numeric {
		s.kid, s.bits = p.kid, numericID
	} else {
		need := binary.MaxVarintLen32 + len(p.id)
		if len(x.ids) == 0 || len(x.ids[len(x.ids)-1])+need > keyChunkSize {
			x.ids = append(x.ids, make([]byte, 0, keyChunkSize))
		}
		ci := len(x.ids) - 1
		s.kid = uint32(ci)<<keyChunkBits | uint32(len(x.ids[ci]))
		x.ids[ci] = binary.AppendUvarint(x.ids[ci], uint64(len(p.id)))
		x.ids[ci] = append(x.ids[ci], p.id...)
	}
	num := x.n
	if num>>slotChunkBits >= uint32(len(x.slots)) {
		x.slots = append(x.slots, make([]slot, slotChunkSize))
	}
	*x.slot(num) = s
	x.n++
	x.table[pos] = num + 1
	return x.slot(num)
}

func (x *index) grow() {
	t := make([]uint32, len(x.table)*2)
	mask := uint64(len(t) - 1)
	for i := uint32(0); i < x.n; i++ {
		s := x.slot(i)
		p := parsed{grp: s.grp, numeric: s.bits&numericID != 0, kid: s.kid}
		if !p.numeric {
			p.id = x.strID(s)
		}
		pos := x.hash(&p) & mask
		for t[pos] != 0 {
			pos = (pos + 1) & mask
		}
		t[pos] = i + 1
	}
	x.table = t
}

// appendKey appends the key of r to b.
func (x *index) appendKey(b []byte, r ref) []byte {
	if r.s != nil {
		return x.appendSlotKey(b, r.s)
	}
	b = append(b, x.prefixes[r.grp]...)
	b = append(b, keySep)
	return strconv.AppendUint(b, uint64(r.kid), 10)
}

func (x *index) appendSlotKey(b []byte, s *slot) []byte {
	if s.grp != 0 {
		b = append(b, x.prefixes[s.grp]...)
		b = append(b, keySep)
	}
	if s.bits&numericID != 0 {
		return strconv.AppendUint(b, uint64(s.kid), 10)
	}
	return append(b, x.strID(s)...)
}

func (x *index) keyString(r ref) string { return string(x.appendKey(nil, r)) }

// internJoined returns the id of a flag set given joined with NUL bytes.
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

// Dense pages (see the top of this file).
const (
	pageBits       = 10
	pageSize       = 1 << pageBits
	pageStateShift = 40
	pageFlagShift  = 42
	pagePresent    = 1 << 63
	pageFreeStart  = 16
	pageMinFill    = 410
)

// maxPageFlags bounds the flag-set numbers a page entry holds (21 bits; a
// variable for tests).
var maxPageFlags uint32 = 1 << 21

// dpage holds the entries of pageSize consecutive numeric ids of one
// prefix: 0 = none, else pagePresent | flag-set number<<42 | state<<40 |
// offset.
type dpage struct {
	key  uint64 // pageKey
	ents [pageSize]uint64
}

func pageKey(grp uint16, kid uint32) uint64 { return uint64(grp)<<32 | uint64(kid>>pageBits) }

// ref is one key's entry: a slot, or an entry of a dense page (with its
// prefix and id, which the page does not hold).
type ref struct {
	s   *slot
	e   *uint64
	grp uint16
	kid uint32
}

func (r ref) ok() bool { return r.s != nil || r.e != nil }

func (r ref) state() uint8 {
	if r.s != nil {
		return r.s.state()
	}
	return uint8(*r.e>>pageStateShift) & stateMask
}

func (r ref) setState(st uint8) {
	if r.s != nil {
		r.s.setState(st)
		return
	}
	*r.e = *r.e&^(stateMask<<pageStateShift) | uint64(st)<<pageStateShift
}

func (r ref) rec() int64 {
	if r.s != nil {
		return r.s.rec()
	}
	return int64(*r.e & (maxOffset - 1))
}

func (r ref) setRec(off int64) {
	if r.s != nil {
		r.s.setRec(off)
		return
	}
	*r.e = *r.e&^(maxOffset-1) | uint64(off)&(maxOffset-1)
}

func (r ref) flagID() uint32 {
	if r.s != nil {
		return r.s.flags
	}
	return uint32(*r.e>>pageFlagShift) & (1<<21 - 1)
}

// setFlags sets the flag-set number of *r; a page entry that cannot hold
// it moves to a slot (and *r with it).
func (x *index) setFlags(r *ref, id uint32) {
	if r.s != nil {
		r.s.flags = id
		return
	}
	if id >= maxPageFlags {
		st, rec := r.state(), r.rec()
		*r.e = 0
		x.inPages--
		x.numSlot++
		s := x.newSlot(&parsed{grp: r.grp, numeric: true, kid: r.kid})
		s.setState(st)
		s.setRec(rec)
		s.flags = id
		*r = ref{s: s}
		return
	}
	*r.e = *r.e&^(uint64(1<<21-1)<<pageFlagShift) | uint64(id)<<pageFlagShift
}

// count returns the number of entries (including forgotten ones).
func (x *index) count() int { return int(x.n) + x.inPages }

// cursor walks the index: the slots in the order their keys first
// appeared, then the pages in the order they were made, each by id.
type cursor struct {
	i    uint32
	p, o int
}

// next returns the entry at c and moves c past it; ok=false at the end.
// Entries added while walking may or may not be visited.
func (x *index) next(c *cursor) (ref, bool) {
	if c.i < x.n {
		c.i++
		return ref{s: x.slot(c.i - 1)}, true
	}
	for c.p < len(x.porder) {
		pg := x.porder[c.p]
		for c.o < pageSize {
			o := c.o
			c.o++
			if e := &pg.ents[o]; *e != 0 {
				return ref{e: e, grp: uint16(pg.key >> 32), kid: uint32(pg.key)<<pageBits | uint32(o)}, true
			}
		}
		c.p, c.o = c.p+1, 0
	}
	return ref{}, false
}
