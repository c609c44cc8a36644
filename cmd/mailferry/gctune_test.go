package main

import "testing"

func TestGCPercent(t *testing.T) {
	for _, tc := range []struct {
		live, scan uint64
		want       int
	}{
		{0, 0, 100},
		{1 << 20, 1 << 20, 100},
		{6 << 20, 2 << 20, 100},            // doubling is the headroom
		{12 << 20, 3 << 20, 50},            // goal 18 MiB, not 24
		{30 << 20, 4 << 20, 20},            // goal 36 MiB, not 60
		{200 << 20, 4 << 20, gcMinPercent}, // never below
		{40 << 20, 30 << 20, 75},           // pointers: the scannable heap is the headroom
		{40 << 20, 40 << 20, 100},          // all pointers: GOGC=100
	} {
		if got := gcPercent(tc.live, tc.scan); got != tc.want {
			t.Errorf("gcPercent(%d MiB, scan %d MiB) = %d; want %d", tc.live>>20, tc.scan>>20, got, tc.want)
		}
	}
}

func TestGCLimit(t *testing.T) {
	for _, tc := range []struct {
		live    uint64
		percent int
		budget  int64
		want    int64
	}{
		{1 << 20, 100, 256 << 20, 24 << 20},   // small runs: the floor
		{24 << 20, 50, 256 << 20, 44 << 20},   // goal 36 + 8
		{24 << 20, 50, 0, 44 << 20},           // no budget
		{200 << 20, 20, 128 << 20, 128 << 20}, // never above the budget
		{24<<20 + 1, 50, 256 << 20, 45 << 20}, // rounded up to a MiB
	} {
		if got := gcLimit(tc.live, tc.percent, tc.budget); got != tc.want {
			t.Errorf("gcLimit(%d, %d, %d) = %d MiB; want %d MiB", tc.live, tc.percent, tc.budget, got>>20, tc.want>>20)
		}
	}
}
