package webhooks_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// fixtureReference is the signed client_reference_id in the checkout
// fixture (webhookstest.LinkKey, 48 hours after the event).
func fixtureReference(t *testing.T) string {
	t.Helper()
	ref, err := billing.SignLinkReference(webhookstest.LinkKey, "acct_kenji_2", time.Unix(1700000030, 0).Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// Account hints link an unlinked customer and never move a linked one; a
// checkout reference links only when signed by a key of the ring and not
// expired when the checkout completed (references are signed by default).
func TestLinking(t *testing.T) {
	t.Parallel()
	key := []byte("link-signing-key-for-webhook-tests")
	b := setupWith(t, pgtest.Open(t), webhooks.Config{Links: billing.NewLinkVerifier([]billing.LinkKey{{Key: key}}, false)})
	created := webhookstest.FixtureNamed(t, "v2023_01_customer.created").Payload
	checkout := webhookstest.FixtureNamed(t, "v2023_20_checkout.session.completed").Payload
	completed := time.Unix(1700000030, 0) // the checkout event's created
	withRef := func(ref, eventID string) []byte {
		return webhookstest.Rewrite(checkout, fixtureReference(t), ref, "evt_1PiiCheckout2", eventID)
	}
	sign := func(key []byte, exp time.Time) string {
		ref, err := billing.SignLinkReference(key, "acct_kenji_2", exp)
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}

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
	for _, tt := range []struct {
		name, ref string
		why       billing.LinkRejection
	}{
		{"UnsignedReferenceIgnored", "acct_kenji_2", billing.LinkUnsigned},
		{"ReferenceOfAnotherKeyIgnored", fixtureReference(t), billing.LinkUnknownKey},
		{"ExpiredReferenceIgnored", sign(key, completed.Add(-time.Second)), billing.LinkExpired},
		{"TamperedReferenceIgnored", strings.Replace(sign(key, completed.Add(time.Hour)), "acct_kenji_2", "acct_kenji_3", 1), billing.LinkBadSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if r := b.post(t, withRef(tt.ref, "evt_"+strings.ReplaceAll(tt.name, "Ignored", ""))); r.Outcome() != "applied" {
				t.Fatalf("%s", r.Body)
			}
			if c := b.customer(t, "cus_PiiKenji2"); c.AccountID != nil {
				t.Fatalf("linked from a refused reference: %+v", c)
			}
			if got := b.counter(t, "billingd_link_references_rejected_total", "reason", string(tt.why)); got != 1 {
				t.Fatalf("rejected{reason=%q} = %v, want 1", tt.why, got)
			}
		})
	}
	t.Run("SignedCheckoutReferenceLinks", func(t *testing.T) {
		// Valid until the very second the checkout completed: it counts as
		// of the event's creation, however late Stripe delivers it.
		if r := b.post(t, withRef(sign(key, completed), "evt_1PiiCheckoutSigned")); r.Outcome() != "applied" {
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

// TestLinkKeyRotation: with LINK_SIGNING_KEYS=new,old a reference the old
// key signed before the rotation still links, and one the new key signs
// does too; once the old key leaves the ring, its references no longer do.
// LINK_REQUIRE_SIGNATURE=false accepts a plain account ID as well.
func TestLinkKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := []byte("old-link-signing-key-0123456789"), []byte("new-link-signing-key-0123456789")
	checkout := webhookstest.FixtureNamed(t, "v2023_20_checkout.session.completed").Payload
	exp := time.Unix(1700000030, 0).Add(billing.DefaultLinkReferenceTTL)
	tests := []struct {
		name     string
		ring     [][]byte
		unsigned bool
		key      []byte // signs the reference; nil: the plain account ID
		linked   bool
	}{
		{"OldKeyInRing", [][]byte{newKey, oldKey}, false, oldKey, true},
		{"NewKeySigns", [][]byte{newKey, oldKey}, false, newKey, true},
		{"OldKeyRetired", [][]byte{newKey}, false, oldKey, false},
		{"UnsignedRefused", [][]byte{newKey}, false, nil, false},
		{"UnsignedAllowedOptOut", [][]byte{newKey}, true, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var keys []billing.LinkKey
			for _, k := range tt.ring {
				keys = append(keys, billing.LinkKey{Key: k})
			}
			b := setupWith(t, pgtest.Open(t), webhooks.Config{Links: billing.NewLinkVerifier(keys, tt.unsigned)})
			ref := "acct_kenji_2"
			if tt.key != nil {
				var err error
				if ref, err = billing.SignLinkReference(tt.key, "acct_kenji_2", exp); err != nil {
					t.Fatal(err)
				}
			}
			if r := b.post(t, webhookstest.Rewrite(checkout, fixtureReference(t), ref)); r.Outcome() != "applied" {
				t.Fatalf("%s", r.Body)
			}
			c := b.customer(t, "cus_PiiKenji2")
			if got := c.AccountID != nil && *c.AccountID == "acct_kenji_2"; got != tt.linked {
				t.Fatalf("linked = %v, want %v", got, tt.linked)
			}
		})
	}
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
