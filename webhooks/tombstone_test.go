package webhooks_test

import (
	"context"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// After an account is erased, Stripe's late and retried events about its
// customer and subscription are acknowledged as tombstoned and store
// nothing again (design invariant 4, enforced by the event path's order:
// tombstones are checked before anything is written).
func TestErasedCustomerStaysErased(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, name := range []string{"v2023_01_customer.created", "v2023_03_customer.subscription.created"} {
		if r := b.post(t, webhookstest.FixtureNamed(t, name).Payload); r.Outcome() != "applied" {
			t.Fatalf("%s: %s", name, r.Body)
		}
	}
	if _, err := b.store.EraseAccount(context.Background(), billing.ErasureRequest{AccountID: "acct_life_1", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	late := []string{"v2023_02_customer.updated", "v2023_05_customer.subscription.updated.active",
		"v2023_07_invoice.payment_failed", "v2023_15_customer.subscription.deleted"}
	for _, name := range late {
		t.Run(name, func(t *testing.T) {
			if r := b.post(t, webhookstest.FixtureNamed(t, name).Payload); r.Outcome() != "tombstoned" {
				t.Fatalf("outcome %s", r.Body)
			}
		})
	}
	for _, table := range []string{"customers", "subscriptions", "pending_invoice_facts"} {
		if n := b.count(t, table); n != 0 {
			t.Errorf("%s has %d rows after erasure and late events", table, n)
		}
	}
}
