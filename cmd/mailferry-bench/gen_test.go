package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// accountHash hashes every message of an account: folder, flags, date and
// bytes.
func accountHash(o genOptions) string {
	counts := folderCounts(o.Messages)
	h := sha256.New()
	for i := 0; i < o.Messages; i++ {
		m := generate(o, counts, i)
		h.Write([]byte(m.Folder + "\x00" + strings.Join(m.Flags, " ") + "\x00" + m.Date.String() + "\x00"))
		h.Write(m.Body)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestGenerateDeterministic(t *testing.T) {
	a := accountHash(genOptions{Messages: 300, Seed: 7})
	if b := accountHash(genOptions{Messages: 300, Seed: 7}); a != b {
		t.Fatalf("same seed, different accounts: %s vs %s", a, b)
	}
	if b := accountHash(genOptions{Messages: 300, Seed: 8}); a == b {
		t.Fatal("seeds 7 and 8 give the same account")
	}
	if b := accountHash(genOptions{Messages: 300, Seed: 7, Realistic: true}); a == b {
		t.Fatal("--realistic gives the same account")
	}
	// A message does not depend on the order of generation (the account
	// is written by several goroutines and rebuilt for the check).
	counts := folderCounts(300)
	m1 := generate(genOptions{Messages: 300, Seed: 7}, counts, 123)
	for i := 0; i < 123; i++ {
		generate(genOptions{Messages: 300, Seed: 7}, counts, i)
	}
	if m2 := generate(genOptions{Messages: 300, Seed: 7}, counts, 123); string(m1.Body) != string(m2.Body) {
		t.Fatal("message 123 depends on what was generated before")
	}
}

// TestGenerateGolden pins the bytes of the default account: a change to
// the generator makes benchmark tables before and after it incomparable,
// so it must be deliberate (update the hash and say so in BENCHMARKS.md).
func TestGenerateGolden(t *testing.T) {
	const want = "3fe21882a005832130c76d73e54a2ff6060a6d4584fd279b74dbf688e8df979a"
	if got := accountHash(genOptions{Messages: 1000, Seed: 1}); got != want {
		t.Errorf("the account of seed 1 changed: hash %s, want %s", got, want)
	}
}

func TestGenerateDistribution(t *testing.T) {
	counts := folderCounts(20000)
	if len(counts) != 6 {
		t.Fatalf("%d folders, want 6", len(counts))
	}
	sum := 0
	for i, c := range counts {
		sum += c
		if i > 0 && c >= counts[0] {
			t.Errorf("folder %q holds %d, not fewer than INBOX's %d", benchFolders[i].Name, c, counts[0])
		}
	}
	if sum != 20000 {
		t.Fatalf("folders hold %d messages, want %d", sum, 20000)
	}
	if share := float64(counts[0]) / 20000; share < 0.395 || share > 0.405 {
		t.Errorf("INBOX holds %.3f of the messages, want 0.40", share)
	}

	for _, tt := range []struct {
		name             string
		n                int
		realistic        bool
		minMean, maxMean float64
		minP50, maxP50   int
		minMax           int
	}{
		{"small", 10000, false, 1200, 1450, 1200, 1450, 0},
		{"realistic", 1000, true, 20000, 120000, 5000, 12000, 200 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.n
			counts := folderCounts(n)
			o := genOptions{Messages: n, Seed: 3, Realistic: tt.realistic}
			var sizes []int
			var total float64
			seen, perFolder, ids := 0, map[string]int{}, map[string]bool{}
			for i := 0; i < n; i++ {
				m := generate(o, counts, i)
				sizes = append(sizes, len(m.Body))
				total += float64(len(m.Body))
				perFolder[m.Folder]++
				if slices.Contains(m.Flags, `\Seen`) {
					seen++
				}
				if !slices.IsSorted(m.Flags) {
					t.Fatalf("message %d: flags %v not sorted", i, m.Flags)
				}
				if strings.Contains(strings.ReplaceAll(string(m.Body), "\r\n", ""), "\n") {
					t.Fatalf("message %d has a bare LF", i)
				}
				id := strings.SplitN(strings.SplitN(string(m.Body), "Message-ID: ", 2)[1], "\r\n", 2)[0]
				if ids[id] {
					t.Fatalf("message %d: Message-ID %s twice", i, id)
				}
				ids[id] = true
				if m.Date.Before(time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)) || m.Date.After(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
					t.Fatalf("message %d: date %s out of range", i, m.Date)
				}
			}
			for i, f := range benchFolders {
				if perFolder[f.Name] != counts[i] {
					t.Errorf("folder %q: %d messages, want %d", f.Name, perFolder[f.Name], counts[i])
				}
			}
			slices.Sort(sizes)
			mean, p50, top := total/float64(n), sizes[n/2], sizes[n-1]
			t.Logf("mean %.0f, p50 %d, p95 %d, max %d bytes; \\Seen %.2f", mean, p50, sizes[n*95/100], top, float64(seen)/float64(n))
			if mean < tt.minMean || mean > tt.maxMean {
				t.Errorf("mean size %.0f, want %.0f..%.0f", mean, tt.minMean, tt.maxMean)
			}
			if p50 < tt.minP50 || p50 > tt.maxP50 {
				t.Errorf("median size %d, want %d..%d", p50, tt.minP50, tt.maxP50)
			}
			if top < tt.minMax {
				t.Errorf("largest message %d bytes, want at least %d", top, tt.minMax)
			}
			if s := float64(seen) / float64(n); s < 0.65 || s > 0.75 {
				t.Errorf("\\Seen on %.2f of the messages, want 0.70", s)
			}
		})
	}
}

// TestCheck writes an account as a Maildir++ tree and checks it, then
// breaks it in each way the check must see.
func TestCheck(t *testing.T) {
	o := genOptions{Messages: 400, Seed: 5}
	exp := buildExpected(o)
	for _, tt := range []struct {
		name   string
		break_ func(t *testing.T, root string, files []string)
		want   func(v verdict) bool
	}{
		{"intact", nil, func(v verdict) bool { return v.OK() && v.Found == 400 }},
		{"missing", func(t *testing.T, root string, files []string) { must(t, os.Remove(files[10])) },
			func(v verdict) bool { return v.Missing == 1 && v.Found == 399 }},
		{"duplicate", func(t *testing.T, root string, files []string) {
			b, err := os.ReadFile(files[20])
			must(t, err)
			must(t, os.WriteFile(filepath.Join(filepath.Dir(files[20]), "copy:2,S"), b, 0o600))
		}, func(v verdict) bool { return v.Duplicates == 1 && v.Found == 401 }},
		{"flags", func(t *testing.T, root string, files []string) {
			must(t, os.Rename(files[30], strings.SplitN(files[30], ":2,", 2)[0]+":2,DF"))
		}, func(v verdict) bool { return v.FlagMismatch == 1 && v.Missing == 0 }},
		{"date", func(t *testing.T, root string, files []string) {
			d := time.Unix(1e9, 0)
			must(t, os.Chtimes(files[40], d, d))
		}, func(v verdict) bool { return v.DateMismatch == 1 && v.Missing == 0 }},
		{"bytes", func(t *testing.T, root string, files []string) {
			must(t, os.WriteFile(files[50], []byte("Subject: changed\n\nbody\n"), 0o600))
		}, func(v verdict) bool { return v.Missing == 1 && v.Extra == 1 }},
		{"wrong folder", func(t *testing.T, root string, files []string) {
			// the first file is in INBOX (root/cur)
			must(t, os.Rename(files[0], filepath.Join(root, ".Sent", "cur", filepath.Base(files[0]))))
		}, func(v verdict) bool { return v.Missing == 1 && v.Extra == 1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "Maildir")
			if _, err := writeAccount(context.Background(), root, o, -1, -1); err != nil {
				t.Fatal(err)
			}
			files, err := filepath.Glob(filepath.Join(root, "cur", "*"))
			must(t, err)
			if len(files) != folderCounts(400)[0] {
				t.Fatalf("%d files in INBOX, want %d", len(files), folderCounts(400)[0])
			}
			if tt.break_ != nil {
				tt.break_(t, root, files)
			}
			v, err := exp.check(root)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(v) {
				t.Errorf("check: %s", v)
			}
			if n, err := countFiles(root); err != nil || n != v.Found {
				t.Errorf("countFiles = %d, %v; the check found %d", n, err, v.Found)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
