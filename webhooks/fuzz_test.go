package webhooks_test

import (
	"net/http"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// fuzzSeeds are garbage and near-misses besides every fixture.
var fuzzSeeds = []string{
	``, `null`, `[]`, `{}`, `"evt"`, `{"id":"evt_1","type":"customer.created"}`,
	`{"id":"evt_1","type":"customer.created","created":1,"data":{"object":null}}`,
	`{"id":"evt_1","type":"customer.created","created":1,"data":{"object":{"id":"cus_1","metadata":"x"}}}`,
	`{"id":"evt_1","type":"customer.subscription.updated","created":99999999999999,"data":{"object":{}}}`,
	`{"id":"evt_1","type":"customer.subscription.updated","created":1700000000,"data":{"object":{"id":"sub_1","customer":"cus_1","status":"active","currency":"usd","items":{"data":[{"quantity":-5,"price":{"unit_amount":-1,"recurring":{"interval":"month","interval_count":999}}}]}}}}`,
	`{"id":"evt_1","type":"invoice.paid","created":1700000000,"data":{"object":{"customer":"cus_1","subscription":"sub_1","attempt_count":2147483648}}}`,
	`{"id":"evt_1","type":"checkout.session.completed","created":1700000000,"data":{"object":{"customer":{"id":7},"client_reference_id":"\u0000"}}}`,
	"{\"id\":\"evt_\u0000\",\"type\":\"customer.created\"}",
}

// FuzzHandler feeds signed garbage through the real handler into a real
// database: it must never panic or answer 5xx, since a signed payload that
// can never be stored must not make Stripe retry for days. As a plain test
// it runs the seed corpus (every fixture and the seeds above).
func FuzzHandler(f *testing.F) {
	for _, fx := range webhookstest.Fixtures(f) {
		f.Add(fx.Payload)
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	b := setupWith(f, pgtest.Open(f), webhooks.Config{})
	f.Fuzz(func(t *testing.T, payload []byte) {
		r := webhookstest.Post(t, b.handler, webhookstest.Secret, payload)
		if r.Status >= 500 {
			t.Fatalf("status %d for %q: %s", r.Status, payload, r.Body)
		}
		if r.Status != http.StatusOK && r.Status != http.StatusBadRequest {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
	})
}

// FuzzDecodeEvent checks the pure decoder alone, much faster per input:
// no panics, and anything it accepts names its object with valid IDs.
func FuzzDecodeEvent(f *testing.F) {
	for _, fx := range webhookstest.Fixtures(f) {
		f.Add(fx.Payload)
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev, err := webhooks.DecodeEvent(payload, webhooks.DecodeOptions{})
		if err != nil || ev.Connect {
			return
		}
		switch {
		case ev.Subscription != nil:
			if !ev.Subscription.Status.Valid() || len(ev.Subscription.Currency) != 3 {
				t.Fatalf("accepted invalid subscription %+v", ev.Subscription)
			}
		case ev.Schedule != nil:
			if !ev.Schedule.Status.Valid() || ev.Schedule.CustomerID == "" {
				t.Fatalf("accepted invalid schedule %+v", ev.Schedule)
			}
		case ev.Entitlements != nil:
			for _, k := range ev.Entitlements.Features {
				if !billing.ValidFeatureKey(k) {
					t.Fatalf("accepted invalid lookup key %q", k)
				}
			}
		case ev.TestClock != nil:
			if ev.TestClock.FrozenTime.IsZero() || ev.TestClock.Livemode || ev.TestClock.Status == "" {
				t.Fatalf("accepted invalid test clock %+v", ev.TestClock)
			}
		case ev.Price != nil:
			if ev.Price.ID == "" || len(ev.Price.Nickname) > 4*billing.MaxCatalogName {
				t.Fatalf("accepted invalid price %+v", ev.Price)
			}
		case ev.Product != nil:
			if ev.Product.ID == "" || len(ev.Product.Name) > 4*billing.MaxCatalogName {
				t.Fatalf("accepted invalid product %+v", ev.Product)
			}
		case ev.Customer == nil && ev.Invoice == nil && ev.Checkout == nil && ev.Schedule == nil && ev.Entitlements == nil && ev.TestClock == nil &&
			ev.Price == nil && ev.Product == nil:
			t.Fatalf("accepted event without object: %+v", ev)
		}
	})
}
