package stripeapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/internal/stripefake"
	"github.com/billingd/billingd/webhooks"
)

const resolveT0 = 1750000000

// apply decodes and applies one event payload.
func apply(t *testing.T, st *postgres.Store, raw string) billing.Outcome {
	t.Helper()
	ev, err := webhooks.DecodeEvent([]byte(raw), webhooks.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := st.ApplyEvent(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ledger is the customer's movements as text.
func ledger(t *testing.T, st *postgres.Store, cus string) string {
	t.Helper()
	var rows []string
	if err := st.DB().Select(&rows, `
SELECT m.kind || ' ' || m.delta_minor || ' @' || (extract(epoch FROM m.effective_at)::bigint - $2)
FROM mrr_movements m JOIN customers c USING (customer_ref)
WHERE c.stripe_customer_id = $1 ORDER BY m.effective_at, m.kind`, cus, resolveT0); err != nil {
		t.Fatal(err)
	}
	return strings.Join(rows, "; ")
}

// basilSub is a subscription event in the 2025-03-31 shape whose discounts
// are bare IDs.
func basilSub(evt, typ, sub, cus string, created int64, discounts string) string {
	return fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2025-03-31.basil","created":%d,"livemode":true,"type":%q,
"data":{"object":{"id":%q,"object":"subscription","customer":%q,"status":"active","currency":"usd","livemode":true,
"created":%d,"start_date":%d,"cancel_at_period_end":false,"discounts":%s,
"items":{"object":"list","has_more":false,"data":[{"id":"si_1","quantity":1,"current_period_start":%d,"current_period_end":%d,
"price":{"id":"price_R","product":"prod_R","currency":"usd","unit_amount":8000,"billing_scheme":"per_unit",
"recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"}}}]}}}}`,
		evt, created, typ, sub, cus, resolveT0, resolveT0, discounts, resolveT0, resolveT0+30*86400)
}

// Discounts that arrive as bare IDs count nothing until one Stripe job
// (queued once, however many events list them) fetches their amounts;
// then the customer's ledger is re-derived as if they had been known from
// the start. The job's payload is scrubbed once done.
func TestBareDiscountIDsResolvedByJob(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	start := time.Unix(resolveT0, 0).UTC()
	fake.PutCustomer(stripefake.Customer{ID: "cus_Res1", Livemode: true})
	fake.PutSubscription(stripefake.Subscription{ID: "sub_Res1", CustomerID: "cus_Res1", Status: "active", Livemode: true,
		Currency: "usd", Created: start, PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0),
		Items: []stripefake.Item{{PriceID: "price_R", UnitAmount: 8000, Interval: "month", Quantity: 1}},
		Discounts: []stripefake.Discount{{ID: "di_Res1", Start: start,
			Coupon: stripefake.Coupon{ID: "Res25", PercentOff: 25, Duration: "forever"}}}})
	fake.PutCoupon(stripefake.Coupon{ID: "Vip10Res", AmountOff: 1000, Currency: "usd", Duration: "forever"})

	apply(t, st, basilSub("evt_Res1", "customer.subscription.created", "sub_Res1", "cus_Res1", resolveT0, `["di_Res1"]`))
	apply(t, st, basilSub("evt_Res2", "customer.subscription.updated", "sub_Res1", "cus_Res1", resolveT0+10, `["di_Res1"]`))
	if got := ledger(t, st, "cus_Res1"); got != "new 8000 @0" {
		t.Fatalf("before the job: %q", got)
	}
	rows := stripeRows(t, st)
	if len(rows) != 1 || rows[0].Action != billing.StripeResolveDiscounts || !strings.Contains(string(rows[0].Payload), "sub_Res1") {
		t.Fatalf("jobs %+v, want one resolve_discounts job for the subscription", rows)
	}
	drain(t, newWorker(t, st, fake.URL))
	if got := ledger(t, st, "cus_Res1"); got != "new 6000 @0" {
		t.Fatalf("after the job: %q, want the 25%% coupon from the start", got)
	}
	if n := count(fake, "GET /v1/subscriptions/sub_Res1"); n != 1 {
		t.Fatalf("subscription fetched %d times, want once", n)
	}
	assertScrubbed(t, stripeRows(t, st), "sent")
	// Later events listing the same discount find it resolved: no new job.
	apply(t, st, basilSub("evt_Res3", "customer.subscription.updated", "sub_Res1", "cus_Res1", resolveT0+20, `["di_Res1"]`))
	if rows := stripeRows(t, st); len(rows) != 1 {
		t.Fatalf("%d jobs after a later event, want still 1", len(rows))
	}
	if got := ledger(t, st, "cus_Res1"); got != "new 6000 @0" {
		t.Fatalf("after a later event: %q", got)
	}

	// A customer's own discount whose coupon is a bare ID: its coupon is
	// fetched; the subscription of that customer has no discount of its
	// own, so the customer's applies.
	apply(t, st, basilSub("evt_Res4", "customer.subscription.created", "sub_Res2", "cus_Res2", resolveT0, `[]`))
	apply(t, st, fmt.Sprintf(`{"id":"evt_Res5","object":"event","api_version":"2025-03-31.basil","created":%d,"livemode":true,
"type":"customer.discount.created","data":{"object":{"id":"di_Res2","object":"discount","customer":"cus_Res2",
"source":{"coupon":"Vip10Res","type":"coupon"},"start":%d,"end":null,"subscription":null,"invoice":null}}}`, resolveT0+100, resolveT0+100))
	if got := ledger(t, st, "cus_Res2"); got != "new 8000 @0" {
		t.Fatalf("customer discount before the job: %q", got)
	}
	drain(t, newWorker(t, st, fake.URL))
	if got := ledger(t, st, "cus_Res2"); got != "new 8000 @0; contraction -1000 @100" {
		t.Fatalf("customer discount after the job: %q", got)
	}
	if n := count(fake, "GET /v1/coupons/Vip10Res"); n != 1 {
		t.Fatalf("coupon fetched %d times, want once", n)
	}
	assertScrubbed(t, stripeRows(t, st), "sent")
	// Rebuild equality with resolved discounts.
	var ref string
	if err := st.DB().Get(&ref, `SELECT customer_ref::text FROM customers WHERE stripe_customer_id = 'cus_Res2'`); err != nil {
		t.Fatal(err)
	}
	if err := st.RebuildCustomerLedger(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	if got := ledger(t, st, "cus_Res2"); got != "new 8000 @0; contraction -1000 @100" {
		t.Fatalf("after rebuild: %q", got)
	}
}

// Backfill reads the merchant's catalog too: names appear in the plan
// names; a second run changes nothing.
func TestBackfillCatalog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fake.PutCatalog(map[string]any{"id": "prod_app", "object": "product", "active": true, "livemode": false,
		"name": "App", "description": "for " + stripefake.PersonalName})
	b.fake.PutCatalog(map[string]any{"id": "price_basic", "object": "price", "active": true, "livemode": false,
		"product": "prod_app", "nickname": nil, "currency": "eur", "unit_amount": 1000, "billing_scheme": "per_unit",
		"recurring": map[string]any{"interval": "month", "interval_count": 1, "usage_type": "licensed"}})
	for range 2 {
		sum, err := b.syncer.BackfillCatalog(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if sum.Products.Listed != 1 || sum.Prices.Listed != 1 || sum.Products.Failed+sum.Prices.Failed != 0 {
			t.Fatalf("%+v", sum)
		}
	}
	plans, err := b.store.PlanNames(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 1 || plans[0].PlanName != "App (monthly)" || plans[0].Currency != "eur" {
		t.Fatalf("plans %+v", plans)
	}
	if strings.Contains(b.dump(t), stripefake.PersonalName) {
		t.Fatal("the catalog kept a product description")
	}
}

// Erasing an account whose history holds discounts known by ID writes
// their amounts into the re-keyed history and forgets the IDs, the
// resolutions and the pending jobs: nothing ties the kept figures back to
// Stripe, and a rebuild gives the same ledger.
func TestErasureForgetsDiscountIDs(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	start := time.Unix(resolveT0, 0).UTC()
	for _, id := range []string{"Er1", "Er2"} {
		fake.PutSubscription(stripefake.Subscription{ID: "sub_" + id, CustomerID: "cus_" + id, Status: "active", Livemode: true,
			Currency: "usd", Created: start, PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0),
			Items:     []stripefake.Item{{PriceID: "price_R", UnitAmount: 8000, Interval: "month", Quantity: 1}},
			Discounts: []stripefake.Discount{{ID: "di_" + id, Start: start, Coupon: stripefake.Coupon{ID: "C50", PercentOff: 50, Duration: "forever"}}}})
		raw := basilSub("evt_"+id, "customer.subscription.created", "sub_"+id, "cus_"+id, resolveT0, `["di_`+id+`"]`)
		raw = strings.Replace(raw, `"livemode":true,
"created"`, `"livemode":true,"metadata":{"account_id":"acct_`+id+`"},
"created"`, 1)
		apply(t, st, raw)
	}
	drain(t, newWorker(t, st, fake.URL)) // resolves di_Er1 and di_Er2
	// A later bare ID of Er1 stays unresolved: its job is pending at erasure.
	apply(t, st, strings.Replace(basilSub("evt_Er1b", "customer.subscription.updated", "sub_Er1", "cus_Er1", resolveT0+50, `["di_Er1","di_Er1x"]`),
		`"livemode":true,
"created"`, `"livemode":true,"metadata":{"account_id":"acct_Er1"},
"created"`, 1))
	var before string
	if err := st.DB().Get(&before, `SELECT string_agg(kind || delta_minor, ',' ORDER BY effective_at, id) FROM mrr_movements m
		JOIN customers c USING (customer_ref) WHERE c.stripe_customer_id = 'cus_Er1'`); err != nil {
		t.Fatal(err)
	}
	if before != "new4000" {
		t.Fatalf("before erasure: %s", before)
	}
	if _, err := st.EraseAccount(context.Background(), billing.ErasureRequest{AccountID: "acct_Er1", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	dump := dumpAll(t, st)
	for _, s := range []string{"di_Er1", "di_Er1x", "cus_Er1", "sub_Er1", "acct_Er1"} {
		if i := strings.Index(dump, s); i >= 0 {
			t.Errorf("after erasure the database still holds %s: %s", s, dump[max(0, i-300):min(len(dump), i+100)])
		}
	}
	if !strings.Contains(dump, "di_Er2") {
		t.Error("another account's discount was forgotten too")
	}
	refs, err := st.LedgerCustomers(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if err := st.RebuildCustomerLedger(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	var after []string
	if err := st.DB().Select(&after, `SELECT kind || delta_minor FROM mrr_movements ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(after, ",") != "new4000,new4000" {
		t.Fatalf("after erasure and rebuild: %v, want both customers' 50%% off kept", after)
	}
}
