package batch

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Shard is the I-th of N stable shares of the rows (1-based). The zero
// Shard holds every row.
type Shard struct{ I, N int }

// ParseShard parses "I/N" with 1 <= I <= N.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return Shard{}, fmt.Errorf("--shard %q: want I/N with 1 <= I <= N, as in 2/8", s)
	}
	return Shard{I: i, N: n}, nil
}

func (s Shard) String() string {
	if s.N == 0 {
		return "all"
	}
	return fmt.Sprintf("%d/%d", s.I, s.N)
}

// Has reports whether the row with this source and target belongs to the
// shard. It hashes the two strings (not the line number), so adding,
// removing or reordering other rows never moves a row to another shard.
func (s Shard) Has(source, target string) bool {
	if s.N <= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(target))
	return int(h.Sum64()%uint64(s.N)) == s.I-1
}

// HasError reports whether a bad row belongs to the shard: by its source
// and target when it has them, else to the first shard (so that it is
// reported exactly once).
func (s Shard) HasError(e *RowError) bool {
	if e.Source == "" || e.Target == "" {
		return s.N <= 1 || s.I == 1
	}
	return s.Has(e.Source, e.Target)
}
