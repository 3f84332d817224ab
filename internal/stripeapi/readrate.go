package stripeapi

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Stripe allows roughly 100 read requests per second in live mode and 25
// in test mode per account, shared by everything using the key. The
// client spaces its requests to STRIPE_READ_RATE (by default half of that
// in live mode, 20/s in test mode), whatever the number of parallel
// walkers, and when Stripe answers 429 anyway every walker waits for the
// Retry-After it sends.

// DefaultReadRate is STRIPE_READ_RATE's default for a key's mode.
func DefaultReadRate(live bool) float64 {
	if live {
		return 50
	}
	return 20
}

// pacer spaces requests to a rate and holds them all during a pause a 429
// asked for. Bursts are not allowed: requests leave one per 1/rate. A 429
// also slows it by a fifth, at most every 500 ms however many requests in
// flight are refused together, and never below an eighth of the rate nor
// one request a second
// (the key's limit is shared with whatever else uses it, so
// STRIPE_READ_RATE may be more than is left); each answer that is not a
// 429 speeds it up again by 2%, back to the rate configured at most.
type pacer struct {
	base time.Duration // 1/rate configured

	mu       sync.Mutex
	interval time.Duration // the spacing now: base, or more after 429s
	next     time.Time     // when the next request may leave
	pause    time.Time     // no request before this (Retry-After)
	slowed   time.Time     // when a 429 last slowed the pacer

	requests atomic.Int64
	limited  atomic.Int64
}

func newPacer(rate float64) *pacer {
	d := time.Duration(float64(time.Second) / rate)
	return &pacer{base: d, interval: d}
}

// wait blocks until the caller's slot, or ctx ends.
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	now := time.Now()
	at := now
	for _, t := range []time.Time{p.next, p.pause} {
		if t.After(at) {
			at = t
		}
	}
	p.next = at.Add(p.interval)
	p.mu.Unlock()
	p.requests.Add(1)
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// limited slows the pacer after a 429 and makes every request wait until
// d from now when Stripe said (Retry-After).
func (p *pacer) limited429(d time.Duration, hold bool) {
	p.limited.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.slowed) >= 500*time.Millisecond {
		p.interval = min(p.interval*5/4, 8*p.base, time.Second)
		p.slowed = now
	}
	if until := now.Add(d); hold && until.After(p.pause) {
		p.pause = until
	}
}

// answered speeds the pacer up by 2% towards the configured rate.
func (p *pacer) answered() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.interval = max(p.base, p.interval*49/50)
}

// pacedTransport sends every read (GET) of the client through the pacer
// and reads Retry-After from 429 answers.
type pacedTransport struct {
	next  http.RoundTripper
	pacer *pacer
}

func (t *pacedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet {
		// Writes (erasure jobs, checkout and portal sessions) have their
		// own limits and callers waiting on them: not paced as reads.
		return t.next.RoundTrip(r)
	}
	if err := t.pacer.wait(r.Context()); err != nil {
		return nil, err
	}
	resp, err := t.next.RoundTrip(r)
	switch {
	case err != nil:
	case resp.StatusCode == http.StatusTooManyRequests:
		d, ok := retryAfter(resp.Header.Get("Retry-After"))
		t.pacer.limited429(d, ok)
	default:
		t.pacer.answered()
	}
	return resp, err
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date. Values
// beyond a minute are capped there: a walker checks back at least that
// often.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		d = time.Duration(n * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	} else {
		return 0, false
	}
	return min(max(d, 0), time.Minute), true
}

// ReadStats is what the client's pacer has seen: requests sent and how
// many Stripe answered 429.
type ReadStats struct {
	Requests, RateLimited int64
	Rate                  float64 // the configured requests per second
}

// ReadStats reports the client's requests so far.
func (c *Client) ReadStats() ReadStats {
	return ReadStats{Requests: c.pacer.requests.Load(), RateLimited: c.pacer.limited.Load(), Rate: c.rate}
}

// paused reports whether a Retry-After pause is on: the next request
// waits for it in the pacer, so no backoff of its own is needed.
func (p *pacer) paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Now().Before(p.pause)
}
