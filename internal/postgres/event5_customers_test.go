package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// TestCustomerEventsOnTheBatchRows: customer, invoice and checkout events
// work on the customer rows the batch locked (no second lock per event),
// alone or in a batch with the customer's other events: the customer's
// version only moves forward, a deletion earlier in a batch holds for the
// events after it, and a link made earlier in a batch is not made twice.
func TestCustomerEventsOnTheBatchRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	t0 := time.Date(2026, time.April, 1, 12, 0, 0, 0, time.UTC)
	customer := func(id, cus string, at time.Time, hint string, deleted bool) billing.Event {
		return billing.Event{ID: id, Type: "customer.updated", Created: at, Livemode: true,
			Customer: &billing.Customer{ID: cus, Livemode: true, AccountHint: hint, Deleted: deleted}}
	}
	type row struct {
		Deleted   bool       `db:"deleted"`
		AccountID *string    `db:"account_id"`
		VersionAt *time.Time `db:"version_at"`
		Event     *string    `db:"version_event"`
	}
	read := func(cus string) row {
		t.Helper()
		var r row
		if err := st.DB().GetContext(ctx, &r, `SELECT deleted, account_id, version_at, version_event FROM customers WHERE stripe_customer_id = $1`, cus); err != nil {
			t.Fatal(err)
		}
		return r
	}
	apply := func(evs ...billing.Event) []billing.Outcome {
		t.Helper()
		outs, errs, err := postgres.ApplyBatch(ctx, st, evs)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range errs {
			if e != nil {
				t.Fatalf("event %d: %v", i, e)
			}
		}
		return outs
	}

	t.Run("VersionMovesForward", func(t *testing.T) {
		apply(customer("evt_CV2", "cus_CV1", t0.Add(2*time.Second), "", false))
		apply(customer("evt_CV1", "cus_CV1", t0.Add(time.Second), "", false)) // late
		if r := read("cus_CV1"); r.VersionAt == nil || !r.VersionAt.Equal(t0.Add(2*time.Second)) || r.Event == nil || *r.Event != "evt_CV2" {
			t.Fatalf("after a late event: version %v %v", r.VersionAt, r.Event)
		}
		// Two in one batch, the newer first in the input.
		apply(customer("evt_CV4", "cus_CV1", t0.Add(4*time.Second), "", false), customer("evt_CV3", "cus_CV1", t0.Add(3*time.Second), "", false))
		if r := read("cus_CV1"); !r.VersionAt.Equal(t0.Add(4*time.Second)) || *r.Event != "evt_CV4" {
			t.Fatalf("after a batch: version %v %v", r.VersionAt, *r.Event)
		}
	})

	t.Run("DeletedEarlierInTheBatch", func(t *testing.T) {
		apply(customer("evt_CD1", "cus_CD1", t0, "acct_cd", false))
		if r := read("cus_CD1"); r.AccountID == nil || *r.AccountID != "acct_cd" {
			t.Fatalf("not linked: %+v", r)
		}
		outs := apply(
			customer("evt_CD2", "cus_CD1", t0.Add(time.Second), "", true),
			customer("evt_CD3", "cus_CD1", t0.Add(2*time.Second), "acct_other", false),
			billing.Event{ID: "evt_CD4", Type: "checkout.session.completed", Created: t0.Add(3 * time.Second), Livemode: true,
				Checkout: &billing.CheckoutSession{CustomerID: "cus_CD1", Livemode: true, AccountHint: "acct_other"}},
		)
		r := read("cus_CD1")
		if !r.Deleted || r.AccountID != nil || *r.Event != "evt_CD3" {
			t.Fatalf("after delete then hints: %+v", r)
		}
		for i, o := range outs {
			if o != billing.OutcomeApplied {
				t.Errorf("event %d: %s, want applied (a deleted customer's hint is dropped)", i, o)
			}
		}
	})

	t.Run("LinkedOnceInTheBatch", func(t *testing.T) {
		var before int
		if err := st.DB().GetContext(ctx, &before, `SELECT count(*) FROM cache_invalidations`); err != nil {
			t.Fatal(err)
		}
		outs := apply(
			customer("evt_CL1", "cus_CL1", t0, "acct_cl", false),
			billing.Event{ID: "evt_CL2", Type: "checkout.session.completed", Created: t0.Add(time.Second), Livemode: true,
				Checkout: &billing.CheckoutSession{CustomerID: "cus_CL1", Livemode: true, AccountHint: "acct_cl"}},
			billing.Event{ID: "evt_CL3", Type: "checkout.session.completed", Created: t0.Add(2 * time.Second), Livemode: true,
				Checkout: &billing.CheckoutSession{CustomerID: "cus_CL1", Livemode: true, AccountHint: "acct_else"}},
			billing.Event{ID: "evt_CL4", Type: "invoice.paid", Created: t0.Add(3 * time.Second), Livemode: true,
				Invoice: &billing.Invoice{CustomerID: "cus_CL1", SubscriptionID: "sub_CL1", Livemode: true, Status: billing.InvoicePaid, AttemptCount: 1}},
		)
		want := []billing.Outcome{billing.OutcomeApplied, billing.OutcomeApplied, billing.OutcomeLinkConflict, billing.OutcomeApplied}
		for i := range want {
			if outs[i] != want[i] {
				t.Errorf("event %d: %s, want %s", i, outs[i], want[i])
			}
		}
		if r := read("cus_CL1"); r.AccountID == nil || *r.AccountID != "acct_cl" {
			t.Fatalf("link: %+v", r)
		}
		// One row for the link; the checkout that names the same account
		// changes nothing, and the invoice of an unknown subscription waits
		// in pending_invoice_facts without touching entitlement.
		var after int
		if err := st.DB().GetContext(ctx, &after, `SELECT count(*) FROM cache_invalidations`); err != nil {
			t.Fatal(err)
		}
		if after-before != 1 {
			t.Errorf("%d cache invalidations for one link, want 1", after-before)
		}
		var pending int
		if err := st.DB().GetContext(ctx, &pending, `SELECT count(*) FROM pending_invoice_facts WHERE stripe_subscription_id = 'sub_CL1'`); err != nil || pending != 1 {
			t.Errorf("pending invoice facts: %d, %v", pending, err)
		}
	})
}
