package stripeapi

import (
	"context"
	"testing"
	"time"
)

// The pacer hands out one slot per 1/rate whatever the number of callers,
// holds every slot behind a Retry-After pause, and after the pause goes on
// at the full rate: a 429 (with or without Retry-After) never slows it
// down for good. Slots are read from the pacer's schedule, not timed: a
// cancelled context makes wait return without sleeping, and the rate is
// one request per 100 s so that no stall of a busy machine between two
// calls reaches a slot.
func TestPacerRateAndRetryAfter(t *testing.T) {
	const interval = 100 * time.Second
	p := newPacer(0.01)
	if p.interval != interval {
		t.Fatalf("interval %v at 0.01/s", p.interval)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	slot := func() time.Time {
		_ = p.wait(gone)
		return p.next.Add(-p.interval)
	}
	first := slot()
	for i := 1; i <= 20; i++ {
		if s := slot(); s.Sub(first) != time.Duration(i)*p.interval {
			t.Fatalf("slot %d at +%v, want +%v: no bursts, no gaps", i, s.Sub(first), time.Duration(i)*p.interval)
		}
	}

	p.limited429(0, false) // no Retry-After: the walker backs off alone
	if !p.pause.IsZero() || p.interval != interval {
		t.Fatalf("a 429 without Retry-After paused (%v) or slowed (%v) every walker", p.pause, p.interval)
	}
	p.next = time.Time{} // as if the slots above were used long ago
	p.limited429(1000*time.Second, true)
	pause := p.pause
	if until := time.Until(pause); until < 900*time.Second || until > 1000*time.Second {
		t.Fatalf("pause ends in %v, want the 1000 s Retry-After", until)
	}
	p.limited429(time.Second, true) // a shorter pause does not shorten it
	if !p.pause.Equal(pause) {
		t.Fatalf("pause moved from %v to %v", pause, p.pause)
	}
	after := slot()
	if !after.Equal(pause) {
		t.Fatalf("first request after the pause at %v, want when it ends (%v)", after, pause)
	}
	for i := 1; i <= 10; i++ {
		if s := slot(); s.Sub(after) != time.Duration(i)*p.interval {
			t.Fatalf("slot %d after the pause at +%v, want +%v: the full rate again", i, s.Sub(after), time.Duration(i)*p.interval)
		}
	}
	if got := p.requests.Load(); got != 32 {
		t.Fatalf("%d requests counted, want 32", got)
	}
	if got := p.limited.Load(); got != 3 {
		t.Fatalf("%d 429s counted, want 3", got)
	}
}
