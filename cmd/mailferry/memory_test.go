package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseMemory(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"64M", 64 << 20, false},
		{"64MiB", 64 << 20, false},
		{"1g", 1 << 30, false},
		{"1.5G", 3 << 29, false},
		{"100000000", 100000000, false},
		{"65536K", 64 << 20, false},
		{"8M", 0, true}, // below 16M
		{"lots", 0, true},
		{"-1G", 0, true},
	} {
		got, err := parseMemory(tc.in)
		if tc.bad != (err != nil) || !tc.bad && got != tc.want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d (error: %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// TestDefaultMemoryFromCgroup: 3/4 of a cgroup v2 or v1 limit, at most
// 256M; no limit ("max", v1's huge value, no file) is 256M.
func TestDefaultMemoryFromCgroup(t *testing.T) {
	old := cgroupLimitFiles
	defer func() { cgroupLimitFiles = old }()
	dir := t.TempDir()
	v2, v1 := filepath.Join(dir, "memory.max"), filepath.Join(dir, "memory.limit_in_bytes")
	cgroupLimitFiles = []string{v2, v1}
	for _, tc := range []struct {
		v2, v1 string // "" = no such file
		want   int64
	}{
		{"", "", 256 << 20},
		{"max\n", "", 256 << 20},
		{"134217728\n", "", 96 << 20},
		{"", "9223372036854771712\n", 256 << 20},
		{"", "67108864\n", 48 << 20},
		{"8589934592\n", "", 256 << 20},
	} {
		os.Remove(v2)
		os.Remove(v1)
		if tc.v2 != "" {
			os.WriteFile(v2, []byte(tc.v2), 0o600)
		}
		if tc.v1 != "" {
			os.WriteFile(v1, []byte(tc.v1), 0o600)
		}
		if got, _ := parseMemory(""); got != tc.want {
			t.Errorf("v2 %q, v1 %q: default %d; want %d", tc.v2, tc.v1, got, tc.want)
		}
	}
}
