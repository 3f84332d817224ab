package stripeapi_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/billingd/billingd/internal/stripefake"
	"github.com/billingd/billingd/webhooks"
)

// TestEntitlementSummaryFetchedInFull: a summary event with more features
// than its one page is stored as it came and answered as incomplete (never
// a silently truncated set), a Stripe job is queued with it, and the job
// fetches every page through the client and applies the complete list;
// a redelivery is a duplicate, an older summary is stale and queues
// nothing, and the job's payload forgets the customer ID once done.
func TestEntitlementSummaryFetchedInFull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	st := pgtest.Open(t)
	const cus, acct = "cus_Ent01", "acct_ent_1"
	fake.PutCustomer(stripefake.Customer{ID: cus, Created: time.Now().Add(-time.Hour)})
	var keys []string
	for i := range 25 {
		keys = append(keys, fmt.Sprintf("feature_%02d", i))
	}
	fake.PutEntitlements(cus, keys)
	if _, err := st.AccountLink(ctx, acct, cus, billing.LinkOptions{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	created := time.Now().Add(-time.Minute).Truncate(time.Second)
	apply := func(id string, at time.Time, page int) billing.Outcome {
		t.Helper()
		raw, err := stripefake.Event(id, webhooks.TypeEntitlementSummaryUpdated, at, false, fake.SummaryObject(cus, false, page))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := webhooks.DecodeEvent(raw, webhooks.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := st.ApplyEvent(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	answer := func() billing.Entitlement {
		t.Helper()
		in, err := st.EntitlementInputs(ctx, acct, false)
		if err != nil {
			t.Fatal(err)
		}
		return billing.ResolveEntitlement(in, false, time.Now(), time.Hour)
	}
	jobs := func(state string) int {
		var n int
		if err := st.DB().Get(&n, `SELECT count(*) FROM outbox WHERE kind = 'stripe' AND action = $1 AND state = $2`,
			stripeapi.ActionFetchEntitlements, state); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if out := apply("evt_EntSummary1", created, 10); out != billing.OutcomeApplied {
		t.Fatalf("summary: %s", out)
	}
	e := answer()
	if len(e.Features) != 10 || !e.FeaturesIncomplete {
		t.Fatalf("after the first page: %d features, incomplete %v; want 10 and incomplete", len(e.Features), e.FeaturesIncomplete)
	}
	if n := jobs("pending"); n != 1 {
		t.Fatalf("%d fetch jobs pending, want 1", n)
	}
	if out := apply("evt_EntSummary1", created, 10); out != billing.OutcomeDuplicate {
		t.Errorf("redelivery: %s", out)
	}
	if out := apply("evt_EntSummary0", created.Add(-time.Second), 10); out != billing.OutcomeStale {
		t.Errorf("older summary: %s", out)
	}
	if n := jobs("pending"); n != 1 {
		t.Errorf("%d fetch jobs pending after a duplicate and a stale summary, want 1", n)
	}

	client, err := stripeapi.New(stripeapi.Config{Key: stripefake.Key, Base: fake.URL, PageSize: 7, RateLimitBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := &stripeapi.JobWorker{Store: st, Stripe: client, Events: st}
	fake.RateLimit(1) // a rate-limited page is retried, not a lost feature
	if n, err := w.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("run jobs: %d, %v", n, err)
	}
	e = answer()
	got := make([]string, 0, len(e.Features))
	for k, f := range e.Features {
		if f.Limit != nil {
			t.Errorf("%s has limit %d: Stripe's features are on/off", k, *f.Limit)
		}
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, keys) || e.FeaturesIncomplete {
		t.Fatalf("after the fetch: %v (incomplete %v), want all 25", got, e.FeaturesIncomplete)
	}
	if pages := fake.Count("GET", "/v1/entitlements/active_entitlements"); pages < 4 {
		t.Errorf("%d list requests, want every page of 7 (4) and the rate-limited one", pages)
	}
	if jobs("sent") != 1 || jobs("pending") != 0 {
		t.Errorf("jobs sent %d pending %d, want the one sent", jobs("sent"), jobs("pending"))
	}
	var payload string
	if err := st.DB().Get(&payload, `SELECT payload::text FROM outbox WHERE action = $1`, stripeapi.ActionFetchEntitlements); err != nil || payload != "{}" {
		t.Errorf("done job payload %q (%v), want {}", payload, err)
	}
	// The fetched list, versioned in the very second of the event that
	// queued it, still replaces the truncated one.
	if out := apply("evt_EntSummary3", created.Add(2*time.Hour), 10); out != billing.OutcomeApplied {
		t.Fatalf("truncated summary: %s", out)
	}
	full := &billing.EntitlementSummary{CustomerID: cus, Features: keys, Complete: true}
	if out, err := st.ApplyEvent(ctx, billing.Event{Type: webhooks.TypeEntitlementSummaryUpdated, Created: created.Add(2 * time.Hour),
		Entitlements: full}); err != nil || out != billing.OutcomeApplied {
		t.Fatalf("fetched list in the same second: %s %v", out, err)
	}
	if e := answer(); len(e.Features) != 25 || e.FeaturesIncomplete {
		t.Errorf("after a same-second fetch: %d features, incomplete %v", len(e.Features), e.FeaturesIncomplete)
	}
	// A later event (Stripe's truth changed) replaces the fetched list.
	fake.PutEntitlements(cus, keys[:2])
	if out := apply("evt_EntSummary2", created.Add(3*time.Hour), 10); out != billing.OutcomeApplied {
		t.Fatalf("later summary: %s", out)
	}
	if e := answer(); len(e.Features) != 2 || e.FeaturesIncomplete {
		t.Errorf("after a later complete summary: %d features, incomplete %v", len(e.Features), e.FeaturesIncomplete)
	}
}

// TestActiveEntitlementsAgainstStripeMock: the list request is one
// Stripe's OpenAPI spec accepts, and its objects decode.
func TestActiveEntitlementsAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := stripefake.StartStripeMock(t)
	client, err := stripeapi.New(stripeapi.Config{Key: "sk_test_123", Base: base})
	if err != nil {
		t.Fatal(err)
	}
	keys, at, err := client.ActiveEntitlements(context.Background(), "cus_123")
	if err != nil {
		t.Fatalf("list active entitlements against stripe-mock: %v", err)
	}
	if len(keys) == 0 || at.IsZero() {
		t.Fatalf("keys %v at %v: want stripe-mock's fixture", keys, at)
	}
	if _, err := webhooks.EntitlementKeys(keys); err != nil {
		t.Errorf("stripe-mock's lookup keys %v: %v", keys, err)
	}
}
