package webhooks_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/webhooks"
)

// Events built from scratch, dated now, in the 2023-10-16 shape: the
// fixtures' objects are erased in these tests, so hints must come with
// new customer and subscription IDs.
func customerEventJSON(eventID, cus, acct string, at time.Time) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":"customer.updated","created":%d,"livemode":true,
		"data":{"object":{"id":%q,"object":"customer","livemode":true,"email":"new.holder@example.com","metadata":{"account_id":%q}}}}`,
		eventID, at.Unix(), cus, acct))
}

func subscriptionEventJSON(eventID, cus, sub, acct string, at time.Time) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":"customer.subscription.updated","created":%d,"livemode":true,
		"data":{"object":{"id":%q,"object":"subscription","customer":%q,"status":"active","currency":"usd","livemode":true,
		"metadata":{"account_id":%q},"items":{"object":"list","has_more":false,"data":[{"id":"si_1","quantity":1,
		"current_period_start":%d,"current_period_end":%d,"price":{"id":"price_PiiGold","product":"prod_PiiGold","currency":"usd",
		"unit_amount":4500,"unit_amount_decimal":"4500","billing_scheme":"per_unit","recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"}}}]},
		"discounts":[]}}}`,
		eventID, at.Unix(), sub, cus, acct, at.Add(-time.Hour).Unix(), at.AddDate(0, 1, 0).Unix()))
}

func checkoutEventJSON(eventID, cus, sub, ref string, at time.Time) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":"checkout.session.completed","created":%d,"livemode":true,
		"data":{"object":{"id":"cs_new","object":"checkout.session","customer":%q,"subscription":%q,"livemode":true,
		"client_reference_id":%q,"customer_details":{"email":"new.holder@example.com"}}}}`,
		eventID, at.Unix(), cus, sub, ref))
}

// TestErasedAccountNeverRelinked: after DELETE
// /v1/accounts/{id}, no hint links anything to it again: a new
// customer's metadata, an existing unlinked customer's metadata, a new
// subscription's metadata, an unsigned checkout reference (refused at
// once by default, and by the account's tombstone when unsigned
// references are allowed) and a signed reference issued before the
// erasure. Each event is applied (customer and subscription recorded,
// unlinked) with outcome link_erased, and the account stays not entitled.
// Only the app's explicit reuse links it again, and even then hints do not.
func TestErasedAccountNeverRelinked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const acct = "acct_relink_1"
	key := []byte("link-signing-key-for-relink-tests")
	st := pgtest.Open(t)
	b := setupWith(t, st, webhooks.Config{Links: billing.NewLinkVerifier([]billing.LinkKey{{Key: key}}, false)})
	// A second replica on the same database with LINK_REQUIRE_SIGNATURE=false.
	optOut := setupWith(t, st, webhooks.Config{Links: billing.NewLinkVerifier([]billing.LinkKey{{Key: key}}, true)})
	entitled := func(t *testing.T) bool {
		t.Helper()
		subs, err := st.AccountSubscriptions(ctx, acct, true)
		if err != nil {
			t.Fatal(err)
		}
		return billing.AccountEntitlement(subs, true, time.Now(), 72*time.Hour).Entitled
	}
	now := time.Now().Truncate(time.Second)
	// Before the erasure: the account is linked (the fixtures), and the app
	// got a signed reference for a checkout it has not finished yet.
	preErasure, err := billing.SignLinkReference(key, acct, now.Add(billing.DefaultLinkReferenceTTL))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{
		customerEventJSON("evt_relink_c0", "cus_PiiOld1", acct, now.Add(-2*time.Minute)),
		subscriptionEventJSON("evt_relink_s0", "cus_PiiOld1", "sub_PiiOld1", acct, now.Add(-time.Minute)),
	} {
		if r := b.post(t, p); r.Outcome() != "applied" {
			t.Fatalf("%s", r.Body)
		}
	}
	if !entitled(t) {
		t.Fatal("the account is not entitled before the erasure: the test would prove nothing")
	}
	if _, err := st.EraseAccount(ctx, billing.ErasureRequest{AccountID: acct, Actor: "test"}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		h       *bundle
		payload []byte
		want    string
		cus     string
	}{
		{"NewCustomerMetadata", b, customerEventJSON("evt_relink_1", "cus_PiiNew1", acct, now), "link_erased", "cus_PiiNew1"},
		{"NewSubscriptionMetadataNewCustomer", b, subscriptionEventJSON("evt_relink_2", "cus_PiiNew2", "sub_PiiNew2", acct, now), "link_erased", "cus_PiiNew2"},
		{"SubscriptionMetadataExistingCustomer", b, subscriptionEventJSON("evt_relink_3", "cus_PiiNew1", "sub_PiiNew1", acct, now), "link_erased", "cus_PiiNew1"},
		{"CustomerMetadataExistingCustomer", b, customerEventJSON("evt_relink_4", "cus_PiiNew2", acct, now.Add(time.Second)), "link_erased", "cus_PiiNew2"},
		{"UnsignedCheckoutRefused", b, checkoutEventJSON("evt_relink_5", "cus_PiiNew3", "sub_PiiNew3", acct, now), "applied", "cus_PiiNew3"},
		{"UnsignedCheckoutAllowedButErased", optOut, checkoutEventJSON("evt_relink_6", "cus_PiiNew4", "sub_PiiNew4", acct, now), "link_erased", "cus_PiiNew4"},
		{"SignedReferenceFromBeforeErasure", b, checkoutEventJSON("evt_relink_7", "cus_PiiNew5", "sub_PiiNew5", preErasure, now), "link_erased", "cus_PiiNew5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.h.post(t, tt.payload)
			if r.Outcome() != tt.want {
				t.Fatalf("outcome %s, want %s", r.Body, tt.want)
			}
			if c := b.customer(t, tt.cus); c.AccountID != nil {
				t.Fatalf("%s linked to %s", tt.cus, *c.AccountID)
			}
			if entitled(t) {
				t.Fatal("the erased account is entitled again")
			}
		})
	}
	if got := b.counter(t, "billingd_webhook_events_total", "outcome", "link_erased"); got < 1 {
		t.Errorf("link_erased counter %v", got)
	}
	var linked int
	if err := st.DB().Get(&linked, `SELECT count(*) FROM customers WHERE account_id = $1`, acct); err != nil || linked != 0 {
		t.Fatalf("%d customers linked to the erased account (err %v)", linked, err)
	}

	t.Run("ReuseOnlyExplicit", func(t *testing.T) {
		if _, err := st.AccountLink(ctx, acct, "cus_PiiNew2", billing.LinkOptions{Actor: "backend"}); !errors.Is(err, billing.ErrAccountErased) {
			t.Fatalf("link without reuse: %v, want ErrAccountErased", err)
		}
		res, err := st.AccountLink(ctx, acct, "cus_PiiNew2", billing.LinkOptions{ReuseErased: true, Actor: "backend"})
		if err != nil || res != billing.LinkReused {
			t.Fatalf("link with reuse: %v, %v", res, err)
		}
		if !entitled(t) {
			t.Fatal("the reused account's new customer's active subscription does not entitle it")
		}
		// Hints still never link to it: billingd cannot tell the former
		// holder's metadata or references from the new holder's.
		if r := b.post(t, subscriptionEventJSON("evt_relink_8", "cus_PiiNew1", "sub_PiiNew1", acct, now.Add(2*time.Second))); r.Outcome() != "link_erased" {
			t.Fatalf("hint after reuse: %s", r.Body)
		}
		if c := b.customer(t, "cus_PiiNew1"); c.AccountID != nil {
			t.Fatal("a hint linked a customer to the reused account")
		}
		// Further API links need no flag once the app reused the ID.
		if res, err := st.AccountLink(ctx, acct, "cus_PiiNew3", billing.LinkOptions{Actor: "backend"}); err != nil || res != billing.LinkCreated {
			t.Fatalf("second API link after reuse: %v, %v", res, err)
		}
	})
}
