package webhooks_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/webhooks/webhookstest"
	"github.com/stripe/stripe-go/v76/webhook"
)

// edit returns a fixture with its envelope and data.object changed by f.
func edit(t *testing.T, name string, f func(ev, obj map[string]any)) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(webhookstest.FixtureNamed(t, name).Payload, &ev); err != nil {
		t.Fatal(err)
	}
	f(ev, ev["data"].(map[string]any)["object"].(map[string]any))
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// postSignedAt posts payload signed with a signature timestamp of at.
func postSignedAt(t *testing.T, h http.Handler, payload []byte, at time.Time) webhookstest.Response {
	t.Helper()
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: webhookstest.Secret, Timestamp: at})
	return webhookstest.PostHeader(t, h, signed.Header, payload)
}

// TestFutureDatedEventAcknowledgedNotApplied: a signed event created in
// year 9999 used to become its subscription's newest version for good, so
// a later genuine deletion was answered "stale". Now it is acknowledged
// (a retry cannot fix it), counted, recorded by ID only, and changes
// nothing; the genuine deletion applies. Events a little ahead of this
// replica's clock (within the tolerance, or no later than the signature's
// own timestamp allows) still apply.
func TestFutureDatedEventAcknowledgedNotApplied(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if r := b.post(t, webhookstest.FixtureNamed(t, "v2023_05_customer.subscription.updated.active").Payload); r.Outcome() != "applied" {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	versions := b.count(t, "subscription_versions")
	future := edit(t, "v2023_05_customer.subscription.updated.active", func(ev, obj map[string]any) {
		ev["id"], ev["created"] = "evt_1PiiFromYear9999", 253402300000
		obj["status"] = "past_due"
	})
	r := b.post(t, future)
	if r.Status != http.StatusOK || r.Outcome() != string(billing.OutcomeFutureDated) {
		t.Fatalf("future-dated event: %d %s, want 200 future_dated", r.Status, r.Body)
	}
	if got := b.counter(t, "billingd_webhook_events_total", "type", "customer.subscription.updated", "outcome", "future_dated"); got != 1 {
		t.Fatalf("future_dated counter %v", got)
	}
	if s := b.sub(t, "sub_PiiLife1"); s.Status != "active" || s.VersionEvent != "evt_1PiiSubActive" {
		t.Fatalf("state changed by a future-dated event: %+v", s)
	}
	if n := b.count(t, "subscription_versions"); n != versions {
		t.Fatalf("subscription_versions %d, want %d: the event became a version", n, versions)
	}
	if o, err := b.store.EventOutcome(ctx, "evt_1PiiFromYear9999"); err != nil || o != billing.OutcomeFutureDated {
		t.Fatalf("stored outcome %q %v", o, err)
	}
	if r := b.post(t, future); r.Outcome() != "duplicate" {
		t.Fatalf("redelivery: %s", r.Body)
	}
	if r := b.post(t, webhookstest.FixtureNamed(t, "v2023_15_customer.subscription.deleted").Payload); r.Outcome() != "applied" {
		t.Fatalf("genuine deletion after a future-dated event: %d %s, want applied", r.Status, r.Body)
	}
	if s := b.sub(t, "sub_PiiLife1"); s.Status != "canceled" {
		t.Fatalf("status %s after the deletion", s.Status)
	}

	now := time.Now()
	ahead := func(id string, created time.Time) []byte {
		return edit(t, "v2023_03_customer.subscription.created", func(ev, obj map[string]any) {
			ev["id"], ev["created"] = "evt_"+id, created.Unix()
			obj["id"], obj["customer"] = "sub_"+id, "cus_"+id
		})
	}
	tests := []struct {
		name     string
		created  time.Time
		signedAt time.Time
		want     billing.Outcome
	}{
		{"WithinTolerance", now.Add(4 * time.Minute), now, billing.OutcomeApplied},
		{"BeyondTolerance", now.Add(6 * time.Minute), now, billing.OutcomeFutureDated},
		// This replica's clock behind Stripe's: the signature was made
		// "in the future" too, and the event was created before it.
		{"ClockBehindStripe", now.Add(8 * time.Minute), now.Add(4 * time.Minute), billing.OutcomeApplied},
		{"CreatedLongAfterSigning", now.Add(10 * time.Minute), now.Add(4 * time.Minute), billing.OutcomeFutureDated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "Ahead" + tt.name
			r := postSignedAt(t, b.handler, ahead(id, tt.created), tt.signedAt)
			if r.Status != http.StatusOK || r.Outcome() != string(tt.want) {
				t.Fatalf("%d %s, want %s", r.Status, r.Body, tt.want)
			}
			var n int
			if err := b.store.DB().Get(&n, `SELECT count(*) FROM subscriptions WHERE stripe_subscription_id = $1`, "sub_"+id); err != nil {
				t.Fatal(err)
			}
			if applied := n == 1; applied != (tt.want == billing.OutcomeApplied) {
				t.Fatalf("subscription stored: %v, want %v", applied, tt.want == billing.OutcomeApplied)
			}
		})
	}
}

// TestOutOfRangeRefusedAndCounted: amounts and quantities near 2^63 used
// to be stored and broke the revenue reports of their currency for good.
// They are refused with 400 value_out_of_range, counted apart, and
// nothing is stored.
func TestOutOfRangeRefusedAndCounted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	payload := webhookstest.FixtureNamed(t, "v2023_03_customer.subscription.created").Payload
	tests := []struct{ name, old, new string }{
		{"UnitAmount", `"unit_amount": 4500`, `"unit_amount": 9223372036854775000`},
		{"Quantity", `"quantity": 1`, `"quantity": 9223372036854775000`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(payload), tt.old) {
				t.Fatalf("fixture lacks %s", tt.old)
			}
			p := webhookstest.Rewrite(payload, tt.old, tt.new, "evt_1PiiSubCreated", "evt_1PiiSubHuge"+tt.name)
			r := b.post(t, p)
			if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, `"code":"value_out_of_range"`) {
				t.Fatalf("%d %s, want 400 value_out_of_range", r.Status, r.Body)
			}
			if got := b.counter(t, "billingd_webhook_rejected_total", "reason", "out_of_range"); got != float64(i+1) {
				t.Fatalf("out_of_range counter %v, want %d", got, i+1)
			}
		})
	}
	for _, table := range []string{"stripe_events", "customers", "subscriptions", "subscription_versions", "mrr_movements"} {
		if n := b.count(t, table); n != 0 {
			t.Errorf("%s has %d rows", table, n)
		}
	}
}

// TestMetadataKeyFoldingAndDuplicatesDoNotLink, through the handler into
// the database: metadata.ACCOUNT_ID used to link like account_id (Go's
// JSON decoding folds case), and with account_id twice the last one won.
// Neither links now; the exact key, once, does.
func TestMetadataKeyFoldingAndDuplicatesDoNotLink(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := string(webhookstest.FixtureNamed(t, "v2023_01_customer.created").Payload)
	const exact = `"account_id": "acct_life_1"`
	if !strings.Contains(created, exact) {
		t.Fatalf("fixture lacks %s", exact)
	}
	tests := []struct {
		name string
		meta string
		want string // "" for no link
	}{
		{"UpperCase", `"ACCOUNT_ID": "acct_folded"`, ""},
		{"MixedCase", `"Account_Id": "acct_folded"`, ""},
		{"Doubled", `"account_id": "acct_first", "account_id": "acct_second"`, ""},
		{"Exact", `"account_id": "acct_exact"`, "acct_exact"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cus := "cus_Meta" + tt.name
			p := webhookstest.Rewrite([]byte(created), exact, tt.meta, "cus_PiiLife1", cus, "evt_1PiiCustCreated", "evt_Meta"+tt.name)
			if r := b.post(t, p); r.Outcome() != "applied" {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			c := b.customer(t, cus)
			switch {
			case tt.want == "" && c.AccountID != nil:
				t.Fatalf("linked to %s", *c.AccountID)
			case tt.want != "" && (c.AccountID == nil || *c.AccountID != tt.want):
				t.Fatalf("customer %+v, want linked to %s", c, tt.want)
			}
		})
	}
}
