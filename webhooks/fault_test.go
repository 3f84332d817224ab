package webhooks_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// With PostgreSQL stopped the handler answers 503 (Stripe retries) and
// stores nothing; once it is back, the redelivered event is applied.
func TestPostgresDown(t *testing.T) {
	t.Parallel()
	srv := pgtest.NewServer(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, pgtest.CreateDB(t, srv.AdminURL()), slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := setupWith(t, st, webhooks.Config{})
	first := webhookstest.FixtureNamed(t, "v2023_01_customer.created").Payload
	if r := b.post(t, first); r.Outcome() != "applied" {
		t.Fatalf("before the outage: %d %s", r.Status, r.Body)
	}

	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	ev := webhookstest.FixtureNamed(t, "v2023_03_customer.subscription.created").Payload
	r := b.post(t, ev)
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("database down: status %d, want 503: %s", r.Status, r.Body)
	}

	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Stripe redelivers until it gets a 2xx; a pooled connection broken by
	// the restart may cost one more 503 first.
	var got webhookstest.Response
	for i := 0; i < 20; i++ {
		if got = b.post(t, ev); got.Status == http.StatusOK {
			break
		}
		if got.Status != http.StatusServiceUnavailable {
			t.Fatalf("after restart: status %d: %s", got.Status, got.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got.Outcome() != "applied" {
		t.Fatalf("redelivery after restart: %d %s, want applied", got.Status, got.Body)
	}
	if s := b.sub(t, "sub_PiiLife1"); s.Status != "trialing" {
		t.Fatalf("status %q", s.Status)
	}
	if r := b.post(t, ev); r.Outcome() != "duplicate" {
		t.Fatalf("second redelivery: %s", r.Body)
	}
}

// An event stuck behind a lock (here a long transaction holding its
// customer's row) is answered 503 at its deadline (ApplyTimeout), not when
// the lock goes or a batch timeout passes, and leaves nothing; Stripe's
// retry then applies it.
func TestApplyTimeoutThenRetry(t *testing.T) {
	t.Parallel()
	const applyTimeout = 300 * time.Millisecond
	b := setupWith(t, pgtest.Open(t), webhooks.Config{ApplyTimeout: applyTimeout})
	// On a loaded machine a 300 ms deadline can pass with no lock held at
	// all: like Stripe, retry a 503 with backoff until the event is applied
	// (a minute of attempts; quick ones only repeat a refusal while the
	// admission control still remembers slow batches).
	postUntilApplied := func(what string, ev []byte) {
		t.Helper()
		start := time.Now()
		for attempt := 1; ; attempt++ {
			r := b.post(t, ev)
			if r.Outcome() == "applied" {
				return
			}
			if r.Status != http.StatusServiceUnavailable || time.Since(start) > time.Minute {
				t.Fatalf("%s (attempt %d): %d %s", what, attempt, r.Status, r.Body)
			}
			time.Sleep(min(time.Duration(attempt)*100*time.Millisecond, time.Second))
		}
	}
	postUntilApplied("customer", webhookstest.FixtureNamed(t, "v2023_01_customer.created").Payload)
	blocker, err := b.store.DB().Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback() //nolint:errcheck // released below; a no-op then
	if _, err := blocker.Exec(`SELECT 1 FROM customers WHERE stripe_customer_id = 'cus_PiiLife1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	ev := webhookstest.FixtureNamed(t, "v2023_03_customer.subscription.created").Payload
	t0 := time.Now()
	r := b.post(t, ev)
	elapsed := time.Since(t0)
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("while locked: %d %s, want 503", r.Status, r.Body)
	}
	// The event waits for its row until its deadline, and no longer: the
	// old code answered after its 30 s batch timeout. 10 s is far above
	// the deadline (a loaded machine) and far below 30 s.
	if elapsed < applyTimeout || elapsed > 10*time.Second {
		t.Fatalf("503 after %v, want it at the %v deadline", elapsed, applyTimeout)
	}
	if err := blocker.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, "subscriptions"); n != 0 {
		t.Fatalf("%d subscriptions stored by a timed-out event", n)
	}
	postUntilApplied("retry", ev)
}
