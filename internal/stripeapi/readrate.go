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

// pacer is a token bucket at the configured rate that saves no burst:
// requests leave one per 1/rate, however many walkers ask, so the rate is
// held without overshooting. A 429 with Retry-After holds every request
// until then; after it the pacer resumes at the full rate (the 429s a
// busy machine's jitter causes say nothing about the limit, and slowing
// down on them kept the earlier pacer at a fraction of it). A 429 without
// Retry-After costs only the refused walker its backoff (Client.sleep).
type pacer struct {
	interval time.Duration // 1/rate

	mu    sync.Mutex
	next  time.Time // when the next request may leave
	pause time.Time // no request before this (Retry-After)

	requests atomic.Int64
	limited  atomic.Int64
}

func newPacer(rate float64) *pacer {
	return &pacer{interval: time.Duration(float64(time.Second) / rate)}
}

// wait blocks until the caller's slot, or ctx ends. A caller that gives up
// keeps its slot spent: the rate is an upper bound.
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	at := time.Now()
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

// limited429 counts a 429 and, when Stripe said how long to wait
// (Retry-After), holds every request until d from now.
func (p *pacer) limited429(d time.Duration, hold bool) {
	p.limited.Add(1)
	if !hold {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := time.Now().Add(d); until.After(p.pause) {
		p.pause = until
	}
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
