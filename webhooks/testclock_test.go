package webhooks_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/entcache"
	"github.com/billingd/billingd/internal/stripefake"
	"github.com/prometheus/client_golang/prometheus"
)

// TestTestClockRehearsal replays what Stripe sends while a team rehearses
// a subscription's life on a test clock (trial, advance, renewal, failed
// payment, grace, recovery, scheduled cancellation, cancellation) and
// checks the entitlement answer after each step. The clock's time is a
// year behind the wall clock, so every answer that depends on time
// (grace, a scheduled end) differs from one judged at the wall clock's
// time: only judging at the clock's time passes. The answers come from
// the entitlement cache, so each clock event must also invalidate them.
// A customer on no clock is judged at the wall clock's time throughout.
func TestTestClockRehearsal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const grace = 72 * time.Hour
	domain := func(e billing.Entitlement) billing.Entitlement { return e }
	cache := entcache.New(b.store, domain, entcache.Options{Grace: grace, Bound: time.Minute, Log: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	b.store.OnAccountsChanged(cache.InvalidateAccounts)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { cache.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(30 * time.Second); !cache.Fresh(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("cache listener never came up")
		}
	}

	const clock, cus, sub, acct = "clock_1Rehearse", "cus_Rehearse1", "sub_Rehearse1", "acct_rehearse"
	wall := time.Now().UTC().Truncate(time.Second)
	t0 := wall.AddDate(-1, 0, 0) // the clock's start: a year ago
	// Events are created at the wall clock's time, a second apart (they
	// order versions); the objects' times are the clock's.
	evCreated := wall.Add(-time.Hour)
	n := 0
	send := func(typ string, obj map[string]any) {
		t.Helper()
		n++
		evCreated = evCreated.Add(time.Second)
		raw, err := stripefake.EventVersion(fmt.Sprintf("evt_Rehearse%03d", n), typ, stripefake.Version20250331, evCreated, false, obj)
		if err != nil {
			t.Fatal(err)
		}
		if r := b.post(t, raw); r.Status != 200 || r.Outcome() != "applied" {
			t.Fatalf("%s: %d %s", typ, r.Status, r.Body)
		}
	}
	frozen := t0
	clockEvent := func(typ, status string, at, target time.Time) {
		t.Helper()
		send("test_helpers.test_clock."+typ, stripefake.TestClockJSON(clock, status, t0, at, target))
	}
	// An advance: "advancing" still carries the time the clock left (the
	// target is in status_details), "ready" the new one.
	advance := func(to time.Time) {
		t.Helper()
		clockEvent("advancing", "advancing", frozen, to)
		frozen = to
		clockEvent("ready", "ready", to, time.Time{})
	}
	check := func(step string, entitled bool, status billing.Status, validUntil *time.Time) {
		t.Helper()
		e, err := cache.Entitlement(ctx, acct, false)
		if err != nil {
			t.Fatal(err)
		}
		if e.Entitled != entitled || e.Status != status || (validUntil == nil) != (e.ValidUntil == nil) ||
			validUntil != nil && !e.ValidUntil.Equal(*validUntil) {
			t.Fatalf("%s (clock at %s): entitled %t %s until %v; want %t %s until %v", step, frozen.Format(time.DateTime),
				e.Entitled, e.Status, e.ValidUntil, entitled, status, validUntil)
		}
		got, ok, err := b.store.TestClockTime(ctx, clock)
		if err != nil || !ok || !got.Equal(frozen) {
			t.Fatalf("%s: recorded clock time %v (%t, %v), want %v", step, got, ok, err, frozen)
		}
	}

	// A customer on no clock, past_due since an hour ago: within grace by
	// the wall clock whatever the test clock does.
	other := stripefake.Customer{ID: "cus_Wallclock1", Created: wall.Add(-48 * time.Hour), AccountID: "acct_wallclock"}
	send("customer.created", other.JSON())
	wallSub := stripefake.Subscription{ID: "sub_Wallclock1", CustomerID: other.ID, Status: "past_due", Created: wall.Add(-48 * time.Hour),
		Currency: "eur", PeriodStart: wall.Add(-time.Hour), PeriodEnd: wall.Add(-time.Hour).AddDate(0, 1, 0), APIVersion: stripefake.Version20250331,
		Items: []stripefake.Item{{PriceID: "price_pro", ProductID: "prod_app", UnitAmount: 1500, Interval: "month", Quantity: 1}}}
	send("customer.subscription.created", wallSub.JSON(nil))

	clockEvent("created", "ready", t0, time.Time{})
	send("customer.created", stripefake.Customer{ID: cus, Created: t0, AccountID: acct, TestClock: clock}.JSON())
	trialEnd := t0.Add(14 * 24 * time.Hour)
	s := stripefake.Subscription{ID: sub, CustomerID: cus, Status: "trialing", Created: t0, Currency: "eur",
		PeriodStart: t0, PeriodEnd: trialEnd, TrialStart: &t0, TrialEnd: &trialEnd, APIVersion: stripefake.Version20250331, TestClock: clock,
		Items: []stripefake.Item{{PriceID: "price_pro", ProductID: "prod_app", UnitAmount: 2500, Interval: "month", Quantity: 1}}}
	send("customer.subscription.created", s.JSON(nil))
	check("trial", true, billing.StatusTrialing, &trialEnd)

	// Advance past the trial: Stripe converts it and the first invoice is paid.
	advance(trialEnd.Add(time.Hour))
	p1End := trialEnd.AddDate(0, 1, 0)
	s.Status, s.PeriodStart, s.PeriodEnd = "active", trialEnd, p1End
	send("customer.subscription.updated", s.JSON(nil))
	send("invoice.paid", stripefake.InvoiceJSON("in_Rehearse1", cus, sub, "paid", 1, nil, clock))
	check("converted", true, billing.StatusActive, &p1End)

	// Advance to the renewal: its payment fails; the subscription is past_due.
	advance(p1End.Add(time.Hour))
	p2End := p1End.AddDate(0, 1, 0)
	retry := p1End.Add(3 * 24 * time.Hour)
	send("invoice.payment_failed", stripefake.InvoiceJSON("in_Rehearse2", cus, sub, "open", 1, &retry, clock))
	s.Status, s.PeriodStart, s.PeriodEnd = "past_due", p1End, p2End
	send("customer.subscription.updated", s.JSON(nil))
	graceEnd := p1End.Add(grace)
	check("renewal failed, in grace", true, billing.StatusPastDue, &graceEnd)

	// Advance beyond the grace period with nothing else happening: the
	// clock's move alone ends the entitlement.
	advance(p1End.Add(4 * 24 * time.Hour))
	check("grace over", false, billing.StatusPastDue, nil)

	// A late advancing event of an earlier time never moves the clock back.
	n++
	evCreated = evCreated.Add(time.Second)
	late, err := stripefake.EventVersion(fmt.Sprintf("evt_Rehearse%03d", n), "test_helpers.test_clock.advancing", stripefake.Version20250331,
		evCreated.Add(-time.Hour), false, stripefake.TestClockJSON(clock, "advancing", t0, p1End, p1End.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if r := b.post(t, late); r.Outcome() != "applied" {
		t.Fatalf("late clock event: %s", r.Body)
	}
	check("late clock event", false, billing.StatusPastDue, nil)

	// The customer pays, then cancels at the period's end.
	send("invoice.paid", stripefake.InvoiceJSON("in_Rehearse2", cus, sub, "paid", 2, nil, clock))
	s.Status, s.CancelAtPeriodEnd = "active", true
	send("customer.subscription.updated", s.JSON(nil))
	check("recovered, cancellation scheduled", true, billing.StatusActive, &p2End)

	// Advance past the period's end: the scheduled end has passed at the
	// clock's time even before Stripe's deletion event arrives.
	advance(p2End.Add(time.Hour))
	check("scheduled end passed", false, billing.StatusActive, nil)
	ended := p2End
	s.Status, s.CanceledAt, s.EndedAt = "canceled", &ended, &ended
	send("customer.subscription.deleted", s.JSON(nil))
	check("canceled", false, billing.StatusCanceled, nil)

	// The customer on no clock was judged at the wall clock's time.
	e, err := cache.Entitlement(ctx, "acct_wallclock", false)
	if err != nil || !e.Entitled || e.Status != billing.StatusPastDue {
		t.Fatalf("customer on no clock: %+v, %v; want entitled in grace by the wall clock", e, err)
	}
	// The clock's name and every object's personal data stayed out.
	dump := strings.ToLower(b.dump(t) + b.logs.String())
	for _, p := range stripefake.PersonalStrings() {
		if strings.Contains(dump, strings.ToLower(p)) {
			t.Errorf("personal data %q stored or logged", p)
		}
	}
}
