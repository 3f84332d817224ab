package profitwell

import (
	"math/rand/v2"
	"time"
)

// Backoff spaces retries of one row: the n-th retry waits a random time in
// [d/2, d] where d = First × 2^(n-1), capped at Max. The jitter spreads
// rows that failed together (an outage) so they do not return together.
type Backoff struct {
	First time.Duration // default 2 s: the first retry comes within 2 s
	Max   time.Duration // default 5 min
}

// Delay is the wait before retry number n (n ≥ 1: the attempts made so far).
func (b Backoff) Delay(n int) time.Duration {
	first, maxd := b.First, b.Max
	if first <= 0 {
		first = 2 * time.Second
	}
	if maxd <= 0 {
		maxd = 5 * time.Minute
	}
	d := first
	for i := 1; i < n && d < maxd; i++ {
		d *= 2
	}
	d = min(d, maxd)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}
