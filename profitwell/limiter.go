package profitwell

import (
	"context"
	"sync"
	"time"
)

// ProfitWell allows 25 requests per 5 seconds across all endpoints; the
// default stays under it with room for clock and network skew.
const (
	DefaultLimit  = 20
	DefaultWindow = 5 * time.Second
)

// Limiter spaces requests evenly, one per window/limit (a token bucket of
// burst 1), so at most limit requests start in any window-long span and
// none arrive in bursts that network jitter could push over the server's
// count. After a throttled answer it holds every request while paused. One
// limiter is shared by every sender in the process; replicas each have
// their own, so run fewer workers than the budget allows or lower the limit
// per replica.
type Limiter struct {
	mu     sync.Mutex
	gap    time.Duration // window / limit
	next   time.Time     // earliest next admission
	paused time.Time     // nothing is admitted before this
}

// NewLimiter returns a limiter of limit requests per window.
func NewLimiter(limit int, window time.Duration) *Limiter {
	if limit < 1 {
		limit = 1
	}
	return &Limiter{gap: window / time.Duration(limit)}
}

// Wait blocks until a request may be sent, or ctx ends.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		d := l.reserve(time.Now())
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Pause holds every request for d (a throttled answer's Retry-After).
func (l *Limiter) Pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := time.Now().Add(d); until.After(l.paused) {
		l.paused = until
	}
}

// reserve admits a request at now (returns 0) or says how long to wait.
func (l *Limiter) reserve(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.paused) {
		return l.paused.Sub(now)
	}
	if now.Before(l.next) {
		return l.next.Sub(now)
	}
	l.next = now.Add(l.gap)
	return 0
}
