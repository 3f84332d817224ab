package stripeapi_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/billingd/billingd/internal/stripefake"
)

func kinds(r stripeapi.ReconcileReport) map[string]billing.DriftKind {
	out := map[string]billing.DriftKind{}
	for _, d := range r.Drift {
		key := d.SubscriptionID
		if key == "" {
			key = d.CustomerID
		}
		out[key] = d.Kind
	}
	return out
}

func TestReconcile(t *testing.T) {
	t.Parallel()
	t.Run("NoDriftAfterBackfill", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.backfill(t)
		rep, err := b.syncer.Reconcile(context.Background(), stripeapi.ReconcileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Drift) != 0 || rep.Checked != len(b.subs) {
			t.Errorf("report %+v, want %d checked and no drift", rep, len(b.subs))
		}
	})
	t.Run("FindsAndFixesDrift", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.backfill(t)
		ctx := context.Background()
		// Drift in the database: a lost cancellation, a lost deletion of
		// a whole subscription row, a wrong quantity.
		b.exec(t, (`UPDATE subscriptions SET status = 'active', ended_at = NULL, canceled_at = NULL WHERE stripe_subscription_id = 'sub_T02'`))
		b.exec(t, (`DELETE FROM subscriptions WHERE stripe_subscription_id = 'sub_T09'`))
		// Drift in Stripe: lost webhooks for an upgrade, a deletion of a
		// customer, and a customer Stripe no longer knows at all.
		b.fake.UpdateSubscription("sub_T00", func(s *stripefake.Subscription) { s.Items[0].Quantity = 7 })
		c := b.custs[5]
		c.Deleted = true
		b.fake.PutCustomer(c)
		b.fake.Forget(b.custs[6].ID)
		// An extra subscription Stripe never had.
		extra := billing.Subscription{ID: "sub_Ghost", CustomerID: "cus_T01", Status: billing.StatusActive, Currency: "eur",
			Items: []billing.Item{{PriceID: "price_basic", Quantity: 1, UnitAmount: 900, Interval: billing.IntervalMonth, IntervalCount: 1}}}
		if _, err := b.store.ApplyEvent(ctx, billing.Event{Type: "customer.subscription.updated", Created: time.Now().Add(-time.Hour), Subscription: &extra}); err != nil {
			t.Fatal(err)
		}
		movementsBefore := b.count(t, `SELECT count(*) FROM mrr_movements`)
		b.fake.Advance(time.Second) // Stripe answers after the backfill's second

		rep, err := b.syncer.Reconcile(ctx, stripeapi.ReconcileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]billing.DriftKind{
			"sub_T02": billing.DriftChanged, "sub_T09": billing.DriftMissing, "sub_T00": billing.DriftChanged,
			"sub_Ghost": billing.DriftExtra, "cus_T05": billing.DriftCustomerDeleted, "cus_T06": billing.DriftCustomerDeleted,
		}
		if got := kinds(rep); !equalKinds(got, want) {
			t.Fatalf("drift %v, want %v", got, want)
		}
		var table bytes.Buffer
		if err := rep.WriteTable(&table); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"status: active → canceled", "quantity: 1 → 7", "1 missing, 2 changed, 1 extra, 0 undecodable, 0 of erased accounts (ignored); 2 customers deleted; 0 fixed"} {
			if !strings.Contains(table.String(), s) {
				t.Errorf("table lacks %q:\n%s", s, table.String())
			}
		}
		if n := b.count(t, `SELECT count(*) FROM mrr_movements`); n != movementsBefore {
			t.Errorf("a report-only run changed the ledger (%d → %d movements)", movementsBefore, n)
		}

		rep, err = b.syncer.Reconcile(ctx, stripeapi.ReconcileOptions{Fix: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Fixed() != 5 || len(rep.Unfixed()) != 1 || rep.Unfixed()[0].SubscriptionID != "sub_Ghost" || rep.Unfixed()[0].Err == "" {
			t.Fatalf("fix: %d fixed, unfixed %+v; want all but the ghost fixed", rep.Fixed(), rep.Unfixed())
		}
		if n := b.count(t, `SELECT count(*) FROM subscriptions WHERE stripe_subscription_id = 'sub_T02' AND status = 'canceled'`); n != 1 {
			t.Error("sub_T02 not canceled again")
		}
		if n := b.count(t, `SELECT count(*) FROM subscriptions WHERE stripe_subscription_id = 'sub_T09'`); n != 1 {
			t.Error("sub_T09 not restored")
		}
		if n := b.count(t, `SELECT count(*) FROM subscriptions WHERE stripe_subscription_id = 'sub_T00' AND items->0->>'quantity' = '7'`); n != 1 {
			t.Error("sub_T00 quantity not repaired")
		}
		if n := b.count(t, `SELECT count(*) FROM customers WHERE stripe_customer_id IN ('cus_T05', 'cus_T06') AND deleted AND account_id IS NULL`); n != 2 {
			t.Errorf("%d of 2 customers marked deleted", n)
		}
		if n := b.count(t, `SELECT count(*) FROM mrr_movements WHERE kind = 'expansion'`); n == 0 {
			t.Error("the repaired upgrade recorded no expansion movement")
		}

		rep, err = b.syncer.Reconcile(ctx, stripeapi.ReconcileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(rep); !equalKinds(got, map[string]billing.DriftKind{"sub_Ghost": billing.DriftExtra}) {
			t.Errorf("after --fix: drift %v, want only the ghost", got)
		}
	})
	t.Run("ErasedAccountsAreNotDrift", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.backfill(t)
		ctx := context.Background()
		// acct_00 owns cus_T00, whose subscriptions are sub_T00 and sub_T07.
		if _, err := b.store.EraseAccount(ctx, billing.ErasureRequest{AccountID: "acct_00", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		b.fake.Advance(time.Second)
		rep, err := b.syncer.Reconcile(ctx, stripeapi.ReconcileOptions{Fix: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Drift) != 0 || rep.Erased != 2 {
			t.Errorf("after erasure: drift %+v, %d erased; want no drift and 2 erased subscriptions ignored", rep.Drift, rep.Erased)
		}
		sum := b.backfill(t)
		if sum.Subscriptions.Applied != 0 || sum.Customers.Applied != 0 {
			t.Errorf("backfill after erasure applied %+v / %+v", sum.Customers, sum.Subscriptions)
		}
		if n := b.count(t, `SELECT count(*) FROM customers WHERE stripe_customer_id = 'cus_T00'`) +
			b.count(t, `SELECT count(*) FROM subscriptions WHERE stripe_subscription_id IN ('sub_T00', 'sub_T07')`); n != 0 {
			t.Errorf("%d rows of the erased account stored again", n)
		}
	})
	t.Run("SinceLimitsToRecentSubscriptions", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.backfill(t)
		b.exec(t, (`UPDATE subscriptions SET status = 'past_due' WHERE stripe_subscription_id IN ('sub_T00', 'sub_T10')`))
		// sub_T10 was created 80 days ago, sub_T00 90 days ago.
		b.fake.ResetRequests()
		rep, err := b.syncer.Reconcile(context.Background(), stripeapi.ReconcileOptions{Since: 85 * 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(rep); !equalKinds(got, map[string]billing.DriftKind{"sub_T10": billing.DriftChanged}) || rep.Checked >= len(b.subs) {
			t.Errorf("--since: drift %v after %d checked, want only sub_T10 among the recent ones", got, rep.Checked)
		}
		for _, r := range b.fake.Requests() {
			if r.Path == "/v1/subscriptions" && r.Query.Get("status") == "all" && r.Query.Get("created[gte]") == "" {
				t.Errorf("--since listed subscriptions without created[gte]: %v", r.Query)
			}
		}
	})
}

// TestReconcileCountsAddUp: every subscription a run checks is counted
// once, whether Stripe listed it or it was asked for by ID because the
// listing left it out (the run that printed "checked 1 subscriptions: 0
// missing, 20 changed" counted only the listed ones).
func TestReconcileCountsAddUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.backfill(t)
	ctx := context.Background()
	// sub_T00 and sub_T01 were created 90 and 89 days ago: a stored
	// creation time inside an 85-day window keeps them in the stored set
	// while Stripe's listing (by Stripe's creation time) leaves them out,
	// so the run asks for each by ID and finds it changed.
	b.exec(t, `UPDATE subscriptions SET created = now() - interval '1 day' WHERE stripe_subscription_id IN ('sub_T00', 'sub_T01')`)
	b.exec(t, `UPDATE subscriptions SET status = 'past_due' WHERE stripe_subscription_id = 'sub_T10'`)
	rep, err := b.syncer.Reconcile(ctx, stripeapi.ReconcileOptions{Since: 85 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	by := rep.ByKind()
	if rep.Fetched != 2 || by[billing.DriftChanged] != 3 || rep.Listed == 0 {
		t.Fatalf("listed %d, fetched %d, drift %v: want 2 asked for by ID and 3 changed", rep.Listed, rep.Fetched, kinds(rep))
	}
	if rep.Checked != rep.Listed+rep.Fetched {
		t.Errorf("checked %d != listed %d + fetched %d", rep.Checked, rep.Listed, rep.Fetched)
	}
	if sum := rep.InStep + by[billing.DriftMissing] + by[billing.DriftChanged] + by[billing.DriftExtra] + len(rep.Failures) + rep.Erased; sum != rep.Checked {
		t.Errorf("in step %d + drift %v + undecodable %d + erased %d = %d, but %d checked", rep.InStep, by, len(rep.Failures), rep.Erased, sum, rep.Checked)
	}
	if rep.InStep != rep.Listed-1 {
		t.Errorf("in step %d, want every listed subscription but sub_T10 (%d)", rep.InStep, rep.Listed-1)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("checked %d subscriptions (%d listed by Stripe, 2 asked for by ID): %d in step, 0 missing, 3 changed", rep.Checked, rep.Listed, rep.InStep)
	if !strings.Contains(table.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, table.String())
	}
}

func equalKinds(a, b map[string]billing.DriftKind) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func (b *bundle) exec(t *testing.T, q string) {
	t.Helper()
	if _, err := b.store.DB().Exec(q); err != nil {
		t.Fatal(err)
	}
}
