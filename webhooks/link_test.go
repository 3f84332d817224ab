package webhooks_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// Account hints link an unlinked customer and never move a linked one.
func TestLinking(t *testing.T) {
	t.Parallel()
	key := []byte("link-signing-key-for-webhook-tests")
	b := setupWith(t, pgtest.Open(t), webhooks.Config{LinkSigningKey: key})
	created := webhookstest.FixtureNamed(t, "v2023_01_customer.created").Payload
	checkout := webhookstest.FixtureNamed(t, "v2023_20_checkout.session.completed").Payload

	t.Run("CustomerMetadataLinks", func(t *testing.T) {
		if r := b.post(t, created); r.Outcome() != "applied" {
			t.Fatalf("%s", r.Body)
		}
		c := b.customer(t, "cus_PiiLife1")
		if c.AccountID == nil || *c.AccountID != "acct_life_1" || *c.LinkedVia != "customer_metadata" {
			t.Fatalf("customer %+v", c)
		}
	})
	t.Run("OtherAccountHintIsConflict", func(t *testing.T) {
		p := webhookstest.Rewrite(created, `"acct_life_1"`, `"acct_intruder"`, "evt_1PiiCustCreated", "evt_1PiiCustMoved")
		r := b.post(t, p)
		if r.Status != http.StatusOK || r.Outcome() != "link_conflict" {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if c := b.customer(t, "cus_PiiLife1"); *c.AccountID != "acct_life_1" {
			t.Fatalf("customer moved to %s", *c.AccountID)
		}
		o, err := b.store.EventOutcome(context.Background(), "evt_1PiiCustMoved")
		if err != nil || o != billing.OutcomeLinkConflict {
			t.Fatalf("stored outcome %q %v", o, err)
		}
		if got := b.counter(t, "billingd_webhook_events_total", "type", "customer.created", "outcome", "link_conflict"); got != 1 {
			t.Fatalf("link_conflict counter %v", got)
		}
	})
	t.Run("UnsignedCheckoutReferenceIgnored", func(t *testing.T) {
		if r := b.post(t, checkout); r.Outcome() != "applied" {
			t.Fatalf("%s", r.Body)
		}
		if c := b.customer(t, "cus_PiiKenji2"); c.AccountID != nil {
			t.Fatalf("linked from an unsigned reference: %+v", c)
		}
	})
	t.Run("SignedCheckoutReferenceLinks", func(t *testing.T) {
		p := webhookstest.Rewrite(checkout, `"acct_kenji_2"`, `"`+billing.SignLinkReference(key, "acct_kenji_2")+`"`,
			"evt_1PiiCheckout2", "evt_1PiiCheckoutSigned")
		if r := b.post(t, p); r.Outcome() != "applied" {
			t.Fatalf("%s", r.Body)
		}
		c := b.customer(t, "cus_PiiKenji2")
		if c.AccountID == nil || *c.AccountID != "acct_kenji_2" || *c.LinkedVia != "checkout" {
			t.Fatalf("customer %+v", c)
		}
	})
	t.Run("DeletedCustomerNeverRelinked", func(t *testing.T) {
		del := webhookstest.FixtureNamed(t, "v2023_16_customer.deleted").Payload
		if r := b.post(t, del); r.Outcome() != "applied" {
			t.Fatalf("%s", r.Body)
		}
		// A late customer.updated with the hint arrives after deletion.
		upd := webhookstest.FixtureNamed(t, "v2023_02_customer.updated").Payload
		if r := b.post(t, upd); r.Status != http.StatusOK {
			t.Fatalf("%s", r.Body)
		}
		if c := b.customer(t, "cus_PiiLife1"); !c.Deleted || c.AccountID != nil {
			t.Fatalf("customer %+v", c)
		}
	})
}

// ApplyEvent serves backfill and reconcile: an object fetched from the API
// has no event ID (no stripe_events row) and its version is the fetch time,
// newer than any event already seen, so it replaces current state.
func TestApplyFetchedObject(t *testing.T) {
	t.Parallel()
	b := setup(t)
	webhookstest.ReplayFixtures(t, b.handler, webhookstest.Secret)
	events := b.count(t, "stripe_events")

	raw := []byte(`{"id":"sub_PiiLife1","object":"subscription","customer":{"id":"cus_PiiLife1","object":"customer","email":"jane.piiperson@example.com"},
		"status":"active","currency":"usd","livemode":true,"metadata":{"account_id":"acct_life_1"},
		"items":{"object":"list","has_more":false,"data":[{"id":"si_1","quantity":3,"current_period_start":1800000000,"current_period_end":1802592000,
		"price":{"id":"price_PiiGold","product":"prod_PiiGold","currency":"usd","unit_amount":4500,"unit_amount_decimal":"4500","billing_scheme":"per_unit",
		"recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"}}}]},"discounts":[]}`)
	s, err := webhooks.DecodeSubscription(raw)
	if err != nil {
		t.Fatal(err)
	}
	ev := billing.Event{Type: webhooks.TypeSubscriptionUpdated, Created: time.Now(), Livemode: true, Subscription: &s}
	out, err := b.store.ApplyEvent(context.Background(), ev)
	if err != nil || out != billing.OutcomeApplied {
		t.Fatalf("ApplyEvent = %q, %v", out, err)
	}
	st := b.sub(t, "sub_PiiLife1")
	if st.Status != "active" || st.MRR != 13500 || st.VersionEvent != "" || st.PeriodStart == nil || st.PeriodStart.Unix() != 1800000000 {
		t.Fatalf("state %+v", st)
	}
	if got := b.count(t, "stripe_events"); got != events {
		t.Fatalf("stripe_events grew from %d to %d", events, got)
	}
	// An event created before the fetch is now stale.
	late := webhookstest.Rewrite(webhookstest.FixtureNamed(t, "v2023_15_customer.subscription.deleted").Payload, "evt_1PiiSubDeleted", "evt_1PiiSubDeletedLate")
	if r := b.post(t, late); r.Outcome() != "stale" {
		t.Fatalf("late event: %s", r.Body)
	}
}
