package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
)

// TestScheduleAndSubscriptionEventsShuffled: a subscription's events (a
// pending update set then cleared, cancel at period end) and its
// schedule's (created, updated, and released in the same second as an
// update) delivered in shuffled orders, some twice and some concurrently,
// always end in the same stored state and the same answer: the schedule
// released (so it schedules nothing) and the cancellation at the period
// end as the scheduled change.
func TestScheduleAndSubscriptionEventsShuffled(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	t0 := now.Add(-time.Hour)
	periodEnd, nextPhase := now.Add(20*24*time.Hour), now.Add(10*24*time.Hour)
	events := func(i int) []billing.Event {
		cus, sub, sched := fmt.Sprintf("cus_S%02d", i), fmt.Sprintf("sub_S%02d", i), fmt.Sprintf("sub_sched_S%02d", i)
		subscription := func(id string, at time.Time, mod func(s *billing.Subscription)) billing.Event {
			s := billing.Subscription{ID: sub, CustomerID: cus, Livemode: true, Status: billing.StatusActive, Currency: "eur",
				Items:              []billing.Item{{PriceID: "price_Pro", ProductID: "prod_Pro", Quantity: 10, Interval: billing.IntervalMonth, IntervalCount: 1}},
				CurrentPeriodStart: &t0, CurrentPeriodEnd: &periodEnd}
			if mod != nil {
				mod(&s)
			}
			return billing.Event{ID: fmt.Sprintf("evt_%s_%02d", id, i), Type: "customer.subscription.updated", Created: at, Livemode: true, Subscription: &s}
		}
		schedule := func(id string, at time.Time, st billing.ScheduleStatus, end string) billing.Event {
			return billing.Event{ID: fmt.Sprintf("evt_%s_%02d", id, i), Type: "subscription_schedule.updated", Created: at, Livemode: true,
				Schedule: &billing.Schedule{ID: sched, CustomerID: cus, SubscriptionID: sub, Livemode: true, Status: st, EndBehavior: end,
					Phases: []billing.SchedulePhase{{Start: &t0, End: &nextPhase, Items: []billing.PhaseItem{{PriceID: "price_Pro", Quantity: 10}}},
						{Start: &nextPhase, Items: []billing.PhaseItem{{PriceID: "price_Basic", Quantity: 5}}}}}}
		}
		expires := now.Add(23 * time.Hour)
		return []billing.Event{
			subscription("SubCreated", t0, nil),
			schedule("SchedCreated", t0.Add(time.Second), billing.ScheduleActive, "release"),
			subscription("SubPending", t0.Add(2*time.Second), func(s *billing.Subscription) {
				s.PendingUpdate = &billing.PendingUpdate{ExpiresAt: &expires, Items: []billing.PhaseItem{{PriceID: "price_Max", Quantity: 20}}}
			}),
			// Same second: released outranks active whatever the order.
			schedule("SchedUpdated", t0.Add(3*time.Second), billing.ScheduleActive, "cancel"),
			schedule("SchedReleased", t0.Add(3*time.Second), billing.ScheduleReleased, "cancel"),
			subscription("SubCancelAtEnd", t0.Add(4*time.Second), func(s *billing.Subscription) { s.CancelAtPeriodEnd = true }),
		}
	}
	const runs = 12
	rng := rand.New(rand.NewPCG(18, 2027))
	for i := range runs {
		acct := fmt.Sprintf("acct_s%02d", i)
		if _, err := st.AccountLink(ctx, acct, fmt.Sprintf("cus_S%02d", i), billing.LinkOptions{Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		evs := events(i)
		rng.Shuffle(len(evs), func(a, b int) { evs[a], evs[b] = evs[b], evs[a] })
		// Half of the runs deliver concurrently, each event twice.
		if i%2 == 1 {
			var wg sync.WaitGroup
			for _, ev := range append(evs, evs...) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := st.ApplyEvent(ctx, ev); err != nil {
						t.Errorf("apply %s: %v", ev.ID, err)
					}
				}()
			}
			wg.Wait()
			continue
		}
		for _, ev := range evs {
			if _, err := st.ApplyEvent(ctx, ev); err != nil {
				t.Fatalf("apply %s: %v", ev.ID, err)
			}
		}
	}
	want := &billing.ScheduledChange{At: &periodEnd, Cancel: true}
	var first billing.Entitlement
	for i := range runs {
		in, err := st.EntitlementInputs(ctx, fmt.Sprintf("acct_s%02d", i), true)
		if err != nil {
			t.Fatal(err)
		}
		if len(in.Schedules) != 0 {
			t.Errorf("run %d: live schedules %+v, want the released one left out", i, in.Schedules)
		}
		if s := in.Subscriptions; len(s) != 1 || s[0].Subscription.PendingUpdate != nil || !s[0].Subscription.CancelAtPeriodEnd {
			t.Errorf("run %d: subscription %+v, want the last version", i, s)
		}
		e := billing.ResolveEntitlement(in, true, now, time.Hour)
		if !reflect.DeepEqual(e.ScheduledChange, want) || !e.CancelAtPeriodEnd || e.Quantity != 10 {
			t.Errorf("run %d: change %+v cancel_at_period_end %v quantity %d, want %+v", i, e.ScheduledChange, e.CancelAtPeriodEnd, e.Quantity, want)
		}
		if i == 0 {
			first = e
		} else if !reflect.DeepEqual(e, first) {
			t.Errorf("run %d answers %+v, run 0 %+v", i, e, first)
		}
		var status, end string
		if err := st.DB().QueryRow(`SELECT status, end_behavior FROM subscription_schedules WHERE stripe_schedule_id = $1`,
			fmt.Sprintf("sub_sched_S%02d", i)).Scan(&status, &end); err != nil || status != "released" || end != "cancel" {
			t.Errorf("run %d: schedule %s/%s (%v), want released/cancel", i, status, end, err)
		}
	}
	// /billing shows the same scheduled change per subscription.
	b, err := st.AccountBilling(ctx, "acct_s00")
	if err != nil {
		t.Fatal(err)
	}
	if got := billing.NextChange(b.Subscriptions[0], b.Schedules, now); !reflect.DeepEqual(got, want) {
		t.Errorf("billing's scheduled change %+v, want %+v", got, want)
	}
}

// TestScheduleNextPhaseAnswered: while a schedule is active, its next
// phase is the scheduled change; a pending update comes before it.
func TestScheduleNextPhaseAnswered(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	start, next, end := now.Add(-time.Hour), now.Add(48*time.Hour), now.Add(30*24*time.Hour)
	if _, err := st.AccountLink(ctx, "acct_n", "cus_N1", billing.LinkOptions{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	sub := &billing.Subscription{ID: "sub_N1", CustomerID: "cus_N1", Livemode: true, Status: billing.StatusActive, Currency: "eur",
		Items: []billing.Item{{PriceID: "price_Pro", Quantity: 10}}, CurrentPeriodStart: &start, CurrentPeriodEnd: &end}
	for _, ev := range []billing.Event{
		{ID: "evt_N1", Type: "customer.subscription.created", Created: start, Livemode: true, Subscription: sub},
		{ID: "evt_N2", Type: "subscription_schedule.created", Created: start, Livemode: true, Schedule: &billing.Schedule{
			ID: "sub_sched_N1", CustomerID: "cus_N1", SubscriptionID: "sub_N1", Livemode: true, Status: billing.ScheduleActive, EndBehavior: "release",
			Phases: []billing.SchedulePhase{{Start: &start, End: &next, Items: []billing.PhaseItem{{PriceID: "price_Pro", Quantity: 10}}},
				{Start: &next, End: &end, Items: []billing.PhaseItem{{PriceID: "price_Basic", Quantity: 5}}}}}},
	} {
		if out, err := st.ApplyEvent(ctx, ev); err != nil || out != billing.OutcomeApplied {
			t.Fatalf("apply %s: %s %v", ev.ID, out, err)
		}
	}
	in, err := st.EntitlementInputs(ctx, "acct_n", true)
	if err != nil {
		t.Fatal(err)
	}
	five := int64(5)
	want := &billing.ScheduledChange{At: &next, Plan: "price_Basic", Quantity: &five}
	if got := billing.ResolveEntitlement(in, true, now, time.Hour).ScheduledChange; !reflect.DeepEqual(got, want) {
		t.Errorf("scheduled change %+v, want %+v", got, want)
	}
	if got := billing.ResolveEntitlement(in, false, now, time.Hour).ScheduledChange; got != nil {
		t.Errorf("test mode answer has the live schedule's change %+v", got)
	}
}
