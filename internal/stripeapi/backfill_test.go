package stripeapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"

	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/billingd/billingd/internal/stripefake"
)

func TestBackfill(t *testing.T) {
	t.Parallel()
	t.Run("StoresEverySubscriptionAndNoPersonalData", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sum := b.backfill(t)
		if sum.Subscriptions.Listed != len(b.subs) || sum.Subscriptions.Applied != len(b.subs) || sum.Customers.Listed != len(b.custs) {
			t.Fatalf("summary %+v, want %d subscriptions and %d customers listed and applied", sum, len(b.subs), len(b.custs))
		}
		for _, s := range b.subs {
			var status string
			var hasPeriod bool
			if err := b.store.DB().QueryRow(`SELECT status, current_period_end IS NOT NULL FROM subscriptions WHERE stripe_subscription_id = $1`, s.ID).Scan(&status, &hasPeriod); err != nil {
				t.Fatalf("%s (%s, shape %q): %v", s.ID, s.Status, s.APIVersion, err)
			}
			if status != s.Status || !hasPeriod {
				t.Errorf("%s: stored status %q period %t, want %q with a period (shape %q)", s.ID, status, hasPeriod, s.Status, s.APIVersion)
			}
		}
		if n := b.count(t, `SELECT count(*) FROM customers WHERE account_id IS NOT NULL`); n != 4 {
			t.Errorf("%d customers linked from metadata.account_id, want 4", n)
		}
		if n := b.count(t, `SELECT count(*) FROM mrr_movements`); n == 0 {
			t.Error("no revenue movements derived from the backfilled history")
		}
		if n := b.count(t, `SELECT count(*) FROM backfill_cursors`); n != 0 {
			t.Errorf("%d cursor rows left after a complete run", n)
		}
		dump := strings.ToLower(b.dump(t))
		if !strings.Contains(dump, "sub_t10") || !strings.Contains(dump, "price_basic") {
			t.Fatal("the dump does not show stored subscriptions: the search below would prove nothing")
		}
		for _, p := range stripefake.PersonalStrings() {
			if strings.Contains(dump, strings.ToLower(p)) {
				t.Errorf("personal value %q is stored", p)
			}
		}
	})
	t.Run("SecondRunChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.backfill(t)
		before := b.dump(t)
		sum := b.backfill(t)
		if sum.Subscriptions.Applied != 0 || sum.Customers.Applied != 0 || sum.Subscriptions.Unchanged != len(b.subs) {
			t.Errorf("second run summary %+v, want everything unchanged", sum)
		}
		if after := b.dump(t); after != before {
			t.Errorf("second backfill changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("ResumesAfterInterruption", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// 3 customer pages, then the second subscription page fails.
		b.fake.FailAfter(4)
		if _, err := b.syncer.Backfill(context.Background()); err == nil || !strings.Contains(err.Error(), "resumable") {
			t.Fatalf("interrupted backfill: err %v, want a resumable failure", err)
		}
		cur, err := b.store.BackfillCursors(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !cur["customers"].Done || cur["subscriptions"].CreatedLTE == nil || cur["subscriptions"].Objects != 3 {
			t.Fatalf("cursors after interruption: %+v", cur)
		}
		partial := b.count(t, `SELECT count(*) FROM subscriptions`)
		b.fake.ResetRequests()
		sum := b.backfill(t)
		if !sum.Resumed || sum.Customers.Listed != 0 {
			t.Errorf("resumed summary %+v: want resumed, customers not listed again", sum)
		}
		reqs := b.fake.Requests()
		if len(reqs) == 0 || reqs[0].Path != "/v1/subscriptions" || reqs[0].Query.Get("created[lte]") == "" {
			t.Fatalf("resumed run's first request %+v, want subscriptions from the cursor", reqs)
		}
		if sum.Subscriptions.Listed >= len(b.subs) || partial == 0 {
			t.Errorf("resume listed %d of %d (stored %d before): want only the rest (plus the cursor's second)", sum.Subscriptions.Listed, len(b.subs), partial)
		}
		if n := b.count(t, `SELECT count(*) FROM subscriptions`); n != len(b.subs) {
			t.Errorf("%d subscriptions after resuming, want %d", n, len(b.subs))
		}
	})
	t.Run("PartialFailuresAreListedAndKeepTheRest", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		bad := b.subs[0]
		bad.ID, bad.Status = "sub_Bad", "bogus_status"
		b.fake.PutSubscription(bad)
		sum, err := b.syncer.Backfill(context.Background())
		if err == nil || !strings.Contains(err.Error(), "1 objects could not be applied") {
			t.Fatalf("err %v, want the failure counted", err)
		}
		if len(sum.Failures) != 1 || sum.Failures[0].ID != "sub_Bad" || !strings.Contains(sum.Failures[0].Err, "status") {
			t.Errorf("failures %+v, want sub_Bad's status", sum.Failures)
		}
		if n := b.count(t, `SELECT count(*) FROM subscriptions`); n != len(b.subs) {
			t.Errorf("%d subscriptions stored, want the %d good ones", n, len(b.subs))
		}
	})
	t.Run("OrderedAgainstEvents", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.backfill(t) // Stripe answered at about now: sub_T00 active
		ctx := context.Background()
		sub := func(status billing.Status) *billing.Subscription {
			s, err := b.store.SubscriptionStates(ctx, []string{"sub_T00"})
			if err != nil {
				t.Fatal(err)
			}
			x := s["sub_T00"]
			x.Status = status
			return &x
		}
		apply := func(id string, at time.Time, s *billing.Subscription) billing.Outcome {
			out, err := b.store.ApplyEvent(ctx, billing.Event{ID: id, Type: "customer.subscription.updated", Created: at, Subscription: s})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		// An event created before Stripe answered loses; one after wins.
		if out := apply("evt_before", time.Now().Add(-time.Minute), sub(billing.StatusPastDue)); out != billing.OutcomeStale {
			t.Errorf("event older than the fetch: %s, want stale", out)
		}
		if out := apply("evt_after", time.Now().Add(time.Minute), sub(billing.StatusCanceled)); out != billing.OutcomeApplied {
			t.Errorf("event newer than the fetch: %s, want applied", out)
		}
		// Stripe still answers "active" (as of now, before that event):
		// another backfill must not undo the newer event.
		sum := b.backfill(t)
		if sum.Subscriptions.Skipped != 1 {
			t.Errorf("summary %+v, want the older API copy skipped", sum.Subscriptions)
		}
		if n := b.count(t, `SELECT count(*) FROM subscriptions WHERE stripe_subscription_id = 'sub_T00' AND status = 'canceled'`); n != 1 {
			t.Error("a backfill answer older than an event replaced it")
		}
	})
	t.Run("RetriesRateLimits", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.fake.RateLimit(3)
		b.backfill(t)
		var limited int
		for _, r := range b.fake.Requests() {
			if r.Status == 429 {
				limited++
			}
		}
		if limited != 3 {
			t.Errorf("%d requests answered 429, want 3", limited)
		}
		if n := b.count(t, `SELECT count(*) FROM subscriptions`); n != len(b.subs) {
			t.Errorf("%d subscriptions after rate limits, want %d", n, len(b.subs))
		}
	})
	t.Run("ErrAuthIsOneClearLine", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c, err := stripeapi.New(stripeapi.Config{Key: "sk_test_wrong", Base: b.fake.URL})
		if err != nil {
			t.Fatal(err)
		}
		s := &stripeapi.Syncer{Client: c, Store: b.store}
		_, err = s.Backfill(context.Background())
		if !errors.Is(err, stripeapi.ErrAuth) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "STRIPE_API_KEY") {
			t.Errorf("wrong key: err %v, want one line wrapping ErrAuth", err)
		}
	})
	t.Run("BusyWhileAnotherRunHoldsTheLock", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		release, ok, err := b.store.TryStripeSyncLock(context.Background())
		if err != nil || !ok {
			t.Fatalf("lock: %v %v", ok, err)
		}
		defer release()
		if _, err := b.syncer.Backfill(context.Background()); !errors.Is(err, stripeapi.ErrBusy) {
			t.Errorf("err %v, want ErrBusy", err)
		}
	})
}
