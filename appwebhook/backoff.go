package appwebhook

import (
	"math/rand/v2"
	"time"
)

// Backoff spaces retries of one row: retry n waits a random time in
// [d/2, d] where d = First × 2^(n-1), capped at Max, so rows that failed
// together (the app was down) do not all return at once.
type Backoff struct {
	First time.Duration // default 5 s
	Max   time.Duration // default 1 h
}

// Delay is the wait before retry n (n ≥ 1: the attempts made so far).
func (b Backoff) Delay(n int) time.Duration {
	first, maxd := b.First, b.Max
	if first <= 0 {
		first = 5 * time.Second
	}
	if maxd <= 0 {
		maxd = time.Hour
	}
	d := first
	for i := 1; i < n && d < maxd; i++ {
		d *= 2
	}
	d = min(d, maxd)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}
