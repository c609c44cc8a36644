package migrate

import "strconv"

// claims is the set of receipts that stand for a source message, per
// target folder (see engine.taken). It is built from the whole journal the
// first time a lookup asks, so it must stay small at a million messages:
// an IMAP receipt ("uidvalidity:uid", the common case) is held as one
// uint64, where a string key with its folder took about 70 bytes a
// receipt (a resume into IMAP peaked at 142 MB against 53 MB for the copy,
// Maildir, whose lookups never ask, at 68 MB). Other receipts (Maildir
// names) are kept as strings. Exact: no hashing, no false "taken".
type claims struct {
	folders map[string]*folderClaims
}

type folderClaims struct {
	uids  map[uint64]struct{}
	other map[string]struct{}
}

func (c *claims) add(folder, receipt string) {
	if c.folders == nil {
		c.folders = map[string]*folderClaims{}
	}
	f := c.folders[folder]
	if f == nil {
		f = &folderClaims{uids: map[uint64]struct{}{}}
		c.folders[folder] = f
	}
	if k, ok := packReceipt(receipt); ok {
		f.uids[k] = struct{}{}
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
		_, in := f.uids[k]
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
