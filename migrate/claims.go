package migrate

import (
	"slices"
	"strconv"
)

// claims is the set of receipts that stand for a source message, per
// target folder (see engine.taken). It is built from the whole journal the
// first time a lookup asks, so it must stay small at a million messages:
// an IMAP receipt ("uidvalidity:uid", the common case) read from the
// journal is one uint64 in a sorted slice (8 bytes; a map of "folder\x00
// receipt" strings took 80 bytes a receipt: 40 MB live at 500,000, and a
// resume into IMAP peaked at 142 MB against 53 MB for the copy, Maildir,
// whose lookups never ask, at 68 MB). Receipts claimed since, and other
// receipts (Maildir names), are in maps. Exact: no hashing, no false
// "taken".
type claims struct {
	folders map[string]*folderClaims
}

type folderClaims struct {
	loaded []uint64 // from the journal; sorted by seal
	added  map[uint64]struct{}
	other  map[string]struct{}
}

func (c *claims) folder(name string) *folderClaims {
	if c.folders == nil {
		c.folders = map[string]*folderClaims{}
	}
	f := c.folders[name]
	if f == nil {
		f = &folderClaims{}
		c.folders[name] = f
	}
	return f
}

// load adds a receipt read from the journal; seal must follow before has.
func (c *claims) load(folder, receipt string) {
	if k, ok := packReceipt(receipt); ok {
		f := c.folder(folder)
		f.loaded = append(f.loaded, k)
		return
	}
	c.add(folder, receipt)
}

// seal sorts what load added.
func (c *claims) seal() {
	for _, f := range c.folders {
		slices.Sort(f.loaded)
		f.loaded = slices.Clip(f.loaded)
	}
}

// merge takes what b loaded (sealed) into c, which holds only what was
// added while b was built. A loaded set has nothing in added: load keeps
// a packable receipt in loaded and passes the others to add, which keeps
// them in other.
func (c *claims) merge(b *claims) {
	for name, bf := range b.folders {
		c.folder(name).loaded = bf.loaded
		for r := range bf.other {
			c.add(name, r)
		}
	}
}

// add adds a receipt claimed after the set was built.
func (c *claims) add(folder, receipt string) {
	f := c.folder(folder)
	if k, ok := packReceipt(receipt); ok {
		if f.added == nil {
			f.added = map[uint64]struct{}{}
		}
		f.added[k] = struct{}{}
		return
	}
	if f.other == nil {
		f.other = map[string]struct{}{}
	}
	f.other[receipt] = struct{}{}
}

func (c *claims) has(folder, receipt string) bool {
	f := c.folders[folder]
	if f == nil {
		return false
	}
	if k, ok := packReceipt(receipt); ok {
		if _, in := slices.BinarySearch(f.loaded, k); in {
			return true
		}
		_, in := f.added[k]
		return in
	}
	_, in := f.other[receipt]
	return in
}

// packReceipt packs "validity:uid" (two decimal uint32 in canonical form:
// digits only, no leading zero) into one uint64, so that one receipt has
// one packed form and one packed form one receipt.
func packReceipt(r string) (uint64, bool) {
	for i := 0; i < len(r); i++ {
		if r[i] == ':' {
			v, ok1 := canonicalUint32(r[:i])
			u, ok2 := canonicalUint32(r[i+1:])
			return v<<32 | u, ok1 && ok2
		}
	}
	return 0, false
}

func canonicalUint32(s string) (uint64, bool) {
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return n, err == nil
}
