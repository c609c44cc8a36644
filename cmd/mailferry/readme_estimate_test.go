package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestReadmeStatesTheEstimateModel: README's plan paragraph gives the
// estimate's figures; they are the constants estimateRun uses.
func TestReadmeStatesTheEstimateModel(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := strings.Join(strings.Fields(string(b)), " ")
	num := func(n int) string { // 200000 → "200,000"
		s := fmt.Sprint(n)
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		return s
	}
	for _, want := range []string{
		fmt.Sprintf("(%g at %s messages to %g from %s)", maildirOverhead.small, num(smallRun), maildirOverhead.large, num(largeRun)),
		fmt.Sprintf("times an overhead of its own (%g at %s to %g from %s)", imapOverhead.small, num(smallRun), imapOverhead.large, num(largeRun)),
		fmt.Sprintf("(%g ms per message over the workers, %g ns per byte;", imapStorePerMsg.Seconds()*1e3, imapStorePerByte.Seconds()*1e9),
		fmt.Sprintf("%.2g ms per message plus %g ns per message it already holds", imapFolderPerMsg.Seconds()*1e3, imapFolderGrowth*1e9),
		fmt.Sprintf("a big folder's (one session's) %g times the probe's one session plus %g ns per message already in the folder", imapProbeOne, imapFolderGrowth*1e9),
		fmt.Sprintf("plan stores for about %g s into scratch folders", imapProbeBudget.Seconds()),
		fmt.Sprintf("at most an eighth of the messages to copy, or %s of the run's batches, as a Maildir probe stores at most an eighth or %s", map[int]string{12: "twelve"}[imapProbeMinRounds], num(maildirProbeMin)),
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README does not say %q", want)
		}
	}
}
