package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
)

// A customer Stripe deleted before the app erased the account has lost its
// link (customer.deleted), but it still belongs to the account: erasure
// must find it through the keyed hash of its former account and remove it.
func TestEraseFindsCustomersStripeDeleted(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	f := newFixture("D", 2)
	other := newFixture("E", 1)
	applyAll(t, st, f.history())
	applyAll(t, st, other.history())
	applyAll(t, st, []billing.Event{{ID: f.nextEventID(), Type: "customer.deleted", Created: month(2026, time.March), Livemode: true,
		Customer: &billing.Customer{ID: f.cus[0], Livemode: true, Deleted: true}}})
	if n := countRows(t, st, `SELECT count(*) FROM customers WHERE stripe_customer_id = $1 AND account_id IS NULL AND former_account_hmac IS NOT NULL`, f.cus[0]); n != 1 {
		t.Fatalf("deleted customer: %d rows unlinked with a former-account hash, want 1", n)
	}
	exp, err := st.AccountExport(context.Background(), f.account)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp.Customers) != 2 || len(exp.Subscriptions) != 2 {
		t.Errorf("export before erasure: %d customers, %d subscriptions; want the Stripe-deleted one too (2, 2)", len(exp.Customers), len(exp.Subscriptions))
	}
	res := erase(t, st, billing.ErasureRequest{AccountID: f.account})
	if res.Customers != 2 || res.Subscriptions != 2 {
		t.Errorf("erased %d customers, %d subscriptions; want 2 and 2 (the Stripe-deleted one included)", res.Customers, res.Subscriptions)
	}
	assertNoneInDump(t, st, f.ids())
	if n := countRows(t, st, `SELECT count(*) FROM customers WHERE stripe_customer_id = $1`, other.cus[0]); n != 1 {
		t.Errorf("another account's customer was touched")
	}
}
