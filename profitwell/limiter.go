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
// count. After a throttled answer it holds every request while paused.
//
// A limiter made with NewSharedLimiter also reserves each request's slot
// in the database (rate_slots), so the limit holds across every replica;
// if the database cannot be reached the local spacing still holds this
// process to the limit.
type Limiter struct {
	mu     sync.Mutex
	gap    time.Duration // window / limit
	next   time.Time     // earliest next local admission
	paused time.Time     // nothing is admitted before this
	shared RateSlots     // nil: this process only
}

// RateSlots is the fleet-wide slot book (internal/postgres.Store).
type RateSlots interface {
	ReserveRateSlot(ctx context.Context, name string, gap time.Duration) (time.Time, time.Duration, error)
	PauseRateSlots(ctx context.Context, name string, d time.Duration) error
}

// slotName is ProfitWell's row in rate_slots.
const slotName = "profitwell"

// NewLimiter returns a limiter of limit requests per window.
func NewLimiter(limit int, window time.Duration) *Limiter {
	if limit < 1 {
		limit = 1
	}
	return &Limiter{gap: window / time.Duration(limit)}
}

// NewSharedLimiter returns a limiter of limit requests per window across
// every process that shares slots.
func NewSharedLimiter(limit int, window time.Duration, slots RateSlots) *Limiter {
	l := NewLimiter(limit, window)
	l.shared = slots
	return l
}

// Wait blocks until a request may be sent, or ctx ends.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		d := l.reserve(time.Now())
		if d <= 0 {
			break
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	if l.shared == nil {
		return nil
	}
	_, d, err := l.shared.ReserveRateSlot(ctx, slotName, l.gap)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return nil // database away: the local spacing alone holds
	}
	return sleep(ctx, d)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Pause holds every request for d (a throttled answer's Retry-After), in
// every replica when the limiter is shared.
func (l *Limiter) Pause(d time.Duration) {
	l.mu.Lock()
	if until := time.Now().Add(d); until.After(l.paused) {
		l.paused = until
	}
	l.mu.Unlock()
	if l.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = l.shared.PauseRateSlots(ctx, slotName, d) // best effort: the local pause holds
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
