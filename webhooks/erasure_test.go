package webhooks_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// TestErasureThenReplayFixtures: every account the fixtures link
// is erased; then every fixture is delivered again, as Stripe's retries
// (same event IDs) and as new events dated before and after the erasure.
// Each is acknowledged; those about an erased customer or subscription are
// tombstoned, and no erased account, customer or subscription ID is stored
// again anywhere.
func TestErasureThenReplayFixtures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	webhookstest.ReplayFixtures(t, b.handler, webhookstest.Secret)

	var links []struct {
		Account  string `db:"account_id"`
		Customer string `db:"stripe_customer_id"`
	}
	if err := b.store.DB().Select(&links, `SELECT account_id, stripe_customer_id FROM customers WHERE account_id IS NOT NULL ORDER BY 1, 2`); err != nil {
		t.Fatal(err)
	}
	if len(links) == 0 {
		t.Fatal("the fixtures link no account: nothing to erase")
	}
	erased := map[string]bool{}
	for _, l := range links {
		erased[l.Account], erased[l.Customer] = true, true
		var subs []string
		if err := b.store.DB().Select(&subs, `SELECT stripe_subscription_id FROM subscriptions WHERE stripe_customer_id = $1`, l.Customer); err != nil {
			t.Fatal(err)
		}
		for _, s := range subs {
			erased[s] = true
		}
	}
	for _, l := range links {
		if _, err := b.store.EraseAccount(ctx, billing.ErasureRequest{AccountID: l.Account, Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	assertGone := func(t *testing.T) {
		t.Helper()
		dump := b.dump(t)
		for id := range erased {
			if strings.Contains(dump, id) {
				t.Errorf("the database holds %s after its erasure", id)
			}
		}
	}
	assertGone(t)
	// History rows of the erased customers: erasure moved them to fresh
	// references that no customers row holds.
	history := func(t *testing.T) int {
		t.Helper()
		var n int
		if err := b.store.DB().Get(&n, `SELECT
			(SELECT count(*) FROM subscription_versions v WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_ref = v.customer_ref))
			+ (SELECT count(*) FROM mrr_movements m WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_ref = m.customer_ref))`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	kept := history(t)
	if kept == 0 {
		t.Fatal("the erased customers have no history: the replay checks would prove nothing")
	}

	// about reports whether a payload names an erased customer or subscription.
	about := func(payload []byte) bool {
		for id := range erased {
			if (strings.HasPrefix(id, "cus_") || strings.HasPrefix(id, "sub_")) && strings.Contains(string(payload), `"`+id+`"`) {
				return true
			}
		}
		return false
	}
	// redeliver gives the event a new ID and, when at is set, a new created time.
	redeliver := func(t *testing.T, payload []byte, suffix string, at time.Time) []byte {
		t.Helper()
		var ev map[string]any
		if err := json.Unmarshal(payload, &ev); err != nil {
			t.Fatal(err)
		}
		ev["id"] = ev["id"].(string) + suffix
		if !at.IsZero() {
			ev["created"] = at.Unix()
		}
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	rounds := []struct {
		name      string
		rewrite   func(t *testing.T, p []byte) []byte
		wantAbout string // outcome wanted for fixtures about erased objects
	}{
		{"StripeRetries", func(t *testing.T, p []byte) []byte { return p }, "duplicate"},
		{"NewEventsDatedBefore", func(t *testing.T, p []byte) []byte { return redeliver(t, p, "before", time.Time{}) }, "tombstoned"},
		// After the erasure, yet within the signature tolerance of now: an
		// event further ahead is refused as future-dated before tombstones
		// are even looked at.
		{"NewEventsDatedAfter", func(t *testing.T, p []byte) []byte { return redeliver(t, p, "after", time.Now().Add(2*time.Minute)) }, "tombstoned"},
	}
	for _, r := range rounds {
		t.Run(r.name, func(t *testing.T) {
			n := 0
			for _, f := range webhookstest.Fixtures(t) {
				resp := b.post(t, r.rewrite(t, f.Payload))
				if resp.Status != 200 {
					t.Errorf("%s: status %d: %s", f.Name, resp.Status, resp.Body)
					continue
				}
				if about(f.Payload) {
					n++
					if o := resp.Outcome(); o != r.wantAbout {
						t.Errorf("%s: outcome %q, want %q", f.Name, o, r.wantAbout)
					}
				}
			}
			if n == 0 {
				t.Fatal("no fixture is about an erased object: the replay proves nothing")
			}
			assertGone(t)
			if got := history(t); got != kept {
				t.Errorf("the erased customers' history went from %d to %d rows: counted again", kept, got)
			}
		})
	}
}
