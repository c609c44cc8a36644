package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// maildirWith writes an INBOX-only Maildir: name -> file (unique:2,letters) -> body.
func maildirWith(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	when := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for name, body := range files {
		p := filepath.Join(root, "cur", name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestVerifyCommand(t *testing.T) {
	msg := func(i int) string { return fmt.Sprintf("Message-ID: <m%02d@test>\r\n\r\nbody %02d\r\n", i, i) }
	src := map[string]string{}
	for i := range 25 {
		src[fmt.Sprintf("u%02d:2,S", i)] = msg(i)
	}
	// The target holds m00 (flags lost), m01 twice, and nothing else.
	tgt := maildirWith(t, map[string]string{"t0:2,": msg(0), "t1:2,S": msg(1), "t2:2,S": msg(1)})
	srcDir := maildirWith(t, src)
	report := filepath.Join(t.TempDir(), "verify.json")
	var out, errb bytes.Buffer
	code := run([]string{"verify", "--no-progress", "--report", report, "maildir:" + srcDir, "maildir:" + tgt}, &out, &errb)
	if code != exitSomeFailed {
		t.Fatalf("exit %d, want %d; stderr: %s", code, exitSomeFailed, errb.String())
	}
	for _, want := range []string{
		"Missing from the target: 23\n",
		"  INBOX: file u02 <m02@test> 35 bytes\n",
		"  … and 3 more; see --report\n",
		"Duplicated in the target: 1\n",
		"  INBOX: file u01 <m01@test> 35 bytes: 2 copies in the target (file t1, t2)\n",
		`  INBOX: file u00 <m00@test> 35 bytes: source (\Seen), target file t0 ()` + "\n",
		"Verify: FAILED — 23 missing, 1 duplicated, 1 with other flags, 0 with another date, 0 extra.\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "bytes\n"); n != 20 {
		t.Errorf("%d missing messages printed, want 20", n)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep migrate.VerifyReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, p := range rep.Folders[0].Problems {
		kinds[p.Kind]++
		if p.Kind == migrate.ProblemFlags && (fmt.Sprint(p.SourceFlags) != `[\Seen]` || p.TargetFlags == nil || len(p.TargetFlags) != 0) {
			t.Errorf("report: flags %q / %q, want [\\Seen] / []", p.SourceFlags, p.TargetFlags)
		}
	}
	if kinds["missing"] != 23 || kinds["duplicated"] != 1 || kinds["flags"] != 1 || rep.FlagMismatches != 1 || !rep.FlagsChecked {
		t.Errorf("report: %v, flag_mismatches %d", kinds, rep.FlagMismatches)
	}
	if !bytes.Contains(b, []byte(`"message_id":"<m24@test>"`)) {
		t.Errorf("report escapes Message-IDs:\n%s", b)
	}

	// Only what the target holds, flags not compared: exit 0.
	out.Reset()
	code = run([]string{"verify", "--no-progress", "--ignore-flags", "maildir:" + maildirWith(t, map[string]string{"a:2,S": msg(0)}), "maildir:" + tgt}, &out, &errb)
	if code != exitOK || !strings.Contains(out.String(), "Verify: OK — every source message is in the target exactly once, with its date (2 extra in the target).") {
		t.Errorf("exit %d:\n%s", code, out.String())
	}
}
