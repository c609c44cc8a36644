package migrate

import "testing"

// TestClaims: a receipt is claimed in its folder only, exactly as written:
// IMAP receipts (packed) and others (Maildir names) alike, and a receipt
// spelled another way ("1:07", "+1:7") is another receipt.
func TestClaims(t *testing.T) {
	var c claims
	if c.has("INBOX", "1:7") {
		t.Fatal("empty set has 1:7")
	}
	c.load("INBOX", "1:9")
	c.load("INBOX", "1:3")
	c.load("Sent", "1:5")
	c.seal()
	for _, r := range []string{"1:9", "1:3"} {
		if !c.has("INBOX", r) || c.has("Sent", r) {
			t.Errorf("%q loaded into INBOX: in INBOX %v, in Sent %v", r, c.has("INBOX", r), c.has("Sent", r))
		}
	}
	for _, r := range []string{"1:7", "4294967295:4294967295", "1700000000.M1P2.host.mailferry,S=12:2,S", "0:0"} {
		c.add("INBOX", r)
		if !c.has("INBOX", r) {
			t.Errorf("%q claimed, not found", r)
		}
		if c.has("Sent", r) {
			t.Errorf("%q claimed in INBOX, found in Sent", r)
		}
	}
	for _, r := range []string{"1:07", "01:7", "+1:7", "1:8", "7:1", "1:", ":7", "4294967296:1", "1700000000.M1P2.host.mailferry,S=12:2,", "0:00"} {
		if c.has("INBOX", r) {
			t.Errorf("%q not claimed, found", r)
		}
	}
	c.add("INBOX", "1:07") // not canonical: kept as a string
	if !c.has("INBOX", "1:07") || c.has("INBOX", "1:8") {
		t.Error("a non-canonical receipt is not kept as written")
	}
}

// TestClaimsMerge: a set built in the background (what the journal held)
// merged into the claims made while it was built keeps both.
func TestClaimsMerge(t *testing.T) {
	var live, built claims
	live.add("INBOX", "1:50") // claimed during the build
	live.add("Sent", "cur/x") // not packable
	built.load("INBOX", "1:9")
	built.load("INBOX", "1:3")
	built.load("Sent", "cur/y")
	built.load("Archive", "2:1")
	built.seal()
	live.merge(&built)
	for _, c := range []struct{ folder, r string }{{"INBOX", "1:50"}, {"INBOX", "1:9"}, {"INBOX", "1:3"}, {"Sent", "cur/x"}, {"Sent", "cur/y"}, {"Archive", "2:1"}} {
		if !live.has(c.folder, c.r) {
			t.Errorf("%s %q lost in the merge", c.folder, c.r)
		}
	}
	if live.has("INBOX", "2:1") || live.has("Archive", "1:9") {
		t.Error("a receipt moved to another folder in the merge")
	}
}
