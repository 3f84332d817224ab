package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/webhooks"
)

// TestFactsAddUpToLedgerWithCustomerInputs: with a customer-level coupon
// (customer.created, customer.updated, customer.discount.*, a coupon
// resolved later by its ID) or a tax-inclusive price under automatic tax,
// the segments (group_by=plan, the plan summary) and cohorts derived after
// the event add up to the ledger's MRR, whatever the order and however
// often the events arrive, one transaction each or all in one; and
// `metrics rebuild` derives the same ledger and facts.
func TestFactsAddUpToLedgerWithCustomerInputs(t *testing.T) {
	t.Parallel()
	const t0 = 1750000000 // 2025-06-15
	const cus, subID, price = "cus_FADJ", "sub_FADJ", "price_FADJ"
	event := func(t *testing.T, id, typ string, created int64, obj string) billing.Event {
		t.Helper()
		raw := fmt.Sprintf(`{"id":"evt_%s","object":"event","api_version":"2023-10-16","created":%d,"livemode":true,
"data":{"object":%s},"type":%q}`, id, created, obj, typ)
		ev, err := webhooks.DecodeEvent([]byte(raw), webhooks.DecodeOptions{})
		if err != nil {
			t.Fatalf("decode %s: %v", id, err)
		}
		return ev
	}
	sub := func(amount int64, extra string) string {
		return fmt.Sprintf(`{"id":%q,"object":"subscription","customer":%q,"status":"active","currency":"usd","livemode":true,
"created":%d,"start_date":%d,"current_period_start":%d,"current_period_end":%d,"cancel_at_period_end":false,
"metadata":{"account_id":"acct_factsadj"},"discount":null,
"items":{"object":"list","has_more":false,"data":[{"id":"si_1","quantity":1,
"price":{"id":%q,"product":"prod_fadj","currency":"usd","unit_amount":%d,"unit_amount_decimal":"%d","billing_scheme":"per_unit",
"tax_behavior":"inclusive","recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"}}}]}%s}`,
			subID, cus, t0, t0, t0, t0+30*86400, price, amount, amount, extra)
	}
	const customer = `{"id":%q,"object":"customer","livemode":true,"email":"jane.piiperson@example.com","name":"Jane Piiperson",
"discount":%s}`
	tests := []struct {
		name   string
		events func(t *testing.T) []billing.Event
		// after runs once the events are applied (a Stripe job's result).
		after func(ctx context.Context, st *postgres.Store) error
		mrr   int64
	}{
		{
			name: "CustomerCreatedCoupon",
			events: func(t *testing.T) []billing.Event {
				return []billing.Event{
					event(t, "FADJa", "customer.subscription.created", t0, sub(8000, "")),
					event(t, "FADJb", "customer.created", t0+100, fmt.Sprintf(customer, cus,
						fmt.Sprintf(`{"coupon":{"amount_off":2000,"currency":"usd","duration":"forever"},"start":%d}`, t0+100))),
				}
			},
			mrr: 6000,
		},
		{
			name: "CustomerDiscountEvents",
			events: func(t *testing.T) []billing.Event {
				disc := func(pct int) string {
					return fmt.Sprintf(`{"id":"di_FADJ","object":"discount","customer":%q,"subscription":null,"invoice":null,
"subscription_item":null,"coupon":{"percent_off":%d,"duration":"forever"},"start":%d}`, cus, pct, t0+100)
				}
				return []billing.Event{
					event(t, "FADJc", "customer.subscription.created", t0, sub(8000, "")),
					event(t, "FADJd", "customer.discount.created", t0+100, disc(50)),
					event(t, "FADJe", "customer.discount.updated", t0+200, disc(25)),
				}
			},
			mrr: 6000,
		},
		{
			name: "CustomerUpdatedCouponThenRemoved",
			events: func(t *testing.T) []billing.Event {
				return []billing.Event{
					event(t, "FADJf", "customer.subscription.created", t0, sub(8000, "")),
					event(t, "FADJg", "customer.updated", t0+100, fmt.Sprintf(customer, cus,
						`{"coupon":{"percent_off":50,"duration":"forever"}}`)),
					event(t, "FADJh", "customer.discount.deleted", t0+86400, fmt.Sprintf(`{"id":"di_FADJ2","object":"discount",
"customer":%q,"subscription":null,"invoice":null,"subscription_item":null,"coupon":{"percent_off":50,"duration":"forever"},"start":%d}`,
						cus, t0+100)),
				}
			},
			mrr: 8000,
		},
		{
			name: "CouponResolvedLater",
			events: func(t *testing.T) []billing.Event {
				return []billing.Event{
					event(t, "FADJi", "customer.subscription.created", t0, sub(8000, "")),
					event(t, "FADJj", "customer.discount.created", t0+100, fmt.Sprintf(`{"id":"di_FADJ3","object":"discount",
"customer":%q,"subscription":null,"invoice":null,"subscription_item":null,"source":{"coupon":"co_FADJ","type":"coupon"},"start":%d}`,
						cus, t0+100)),
				}
			},
			after: func(ctx context.Context, st *postgres.Store) error {
				return st.ResolveDiscounts(ctx, cus, []billing.DiscountResolution{{DiscountID: "di_FADJ3", AmountOff: 3000,
					Currency: "usd", Duration: "forever"}})
			},
			mrr: 5000,
		},
		{
			name: "TaxInclusiveAutomaticTax",
			events: func(t *testing.T) []billing.Event {
				return []billing.Event{
					event(t, "FADJk", "customer.subscription.created", t0, sub(11900, `,"automatic_tax":{"enabled":true}`)),
					event(t, "FADJl", "invoice.paid", t0+60, fmt.Sprintf(`{"id":"in_FADJ","object":"invoice",
"customer":%q,"livemode":true,"currency":"usd","attempt_count":1,"status":"paid",
"parent":{"type":"subscription_details","subscription_details":{"subscription":%q}},
"lines":{"object":"list","has_more":false,"data":[{"id":"il_1","amount":11900,"description":"Pro for Piiperson",
"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":%q,"subscription_item":"si_1","proration":false}},
"pricing":{"type":"price_details","price_details":{"price":%q,"product":"prod_fadj"}},
"taxes":[{"amount":1900,"tax_behavior":"inclusive","taxable_amount":10000,"type":"tax_rate_details"}],
"period":{"start":%d,"end":%d}}]}}`, cus, subID, subID, price, t0, t0+30*86400)),
				}
			},
			mrr: 10000,
		},
	}
	// Deliveries: each event in a transaction of its own in these orders
	// (indexes into the case's events, modulo their number), or all in one
	// batch.
	deliveries := []struct {
		name  string
		order []int
		one   bool
	}{
		{"InOrder", []int{0, 1, 2}, false},
		{"Reversed", []int{5, 4, 3}, false},
		{"ShuffledTwice", []int{1, 0, 2, 2, 0, 1}, false},
		{"OneBatch", []int{2, 0, 1, 0, 1, 2}, true},
	}
	asOf := time.Unix(t0+40*86400, 0).UTC()
	q := billing.RevenueQuery{Livemode: true, Currency: "usd", Bucket: billing.BucketMonth,
		From: at("2025-06-01T00:00:00Z"), To: at("2025-08-01T00:00:00Z"), AsOf: asOf}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			evs := tc.events(t)
			var first string
			for _, d := range deliveries {
				ctx := context.Background()
				st := pgtest.Open(t)
				var batches [][]billing.Event
				for _, i := range d.order {
					ev := evs[i%len(evs)]
					if d.one && len(batches) > 0 {
						batches[0] = append(batches[0], ev)
					} else {
						batches = append(batches, []billing.Event{ev})
					}
				}
				for _, b := range batches {
					_, errs, err := postgres.ApplyBatch(ctx, st, b)
					if err != nil {
						t.Fatalf("%s: %v", d.name, err)
					}
					for i, e := range errs {
						if e != nil {
							t.Fatalf("%s: event %s: %v", d.name, b[i].ID, e)
						}
					}
				}
				if tc.after != nil {
					if err := tc.after(ctx, st); err != nil {
						t.Fatalf("%s: %v", d.name, err)
					}
				}
				if err := st.DrainFacts(ctx); err != nil {
					t.Fatal(err)
				}
				checkFactsAddUp(t, ctx, st, d.name, q, tc.mrr)
				got := derivedRows(t, ctx, st)
				if first == "" {
					first = got
				} else if got != first {
					t.Errorf("%s: derived rows differ from %s's:\n%s\nwant\n%s", d.name, deliveries[0].name, got, first)
				}
				// metrics rebuild: the same ledger and facts.
				var ref string
				if err := st.DB().GetContext(ctx, &ref, `SELECT customer_ref::text FROM customers WHERE stripe_customer_id = $1`, cus); err != nil {
					t.Fatal(err)
				}
				if err := st.RebuildCustomerLedger(ctx, ref); err != nil {
					t.Fatal(err)
				}
				if err := st.RebuildRevenueRollup(ctx); err != nil {
					t.Fatal(err)
				}
				if rebuilt := derivedRows(t, ctx, st); rebuilt != got {
					t.Errorf("%s: rebuild changed the derived rows:\n%s\nwant\n%s", d.name, rebuilt, got)
				}
				checkFactsAddUp(t, ctx, st, d.name+" rebuilt", q, tc.mrr)
			}
		})
	}
}

// checkFactsAddUp checks that the ledger's MRR is mrr and that the plan
// segments (series and summary), the summary and the cohorts agree.
func checkFactsAddUp(t *testing.T, ctx context.Context, st *postgres.Store, name string, q billing.RevenueQuery, mrr int64) {
	t.Helper()
	var ledger, cohorts int64
	if err := st.DB().GetContext(ctx, &ledger, `SELECT coalesce(sum(delta_minor), 0) FROM mrr_movements`); err != nil {
		t.Fatal(err)
	}
	if err := st.DB().GetContext(ctx, &cohorts, `SELECT coalesce(sum(delta_minor), 0) FROM revenue_facts WHERE dimension = 'cohort'`); err != nil {
		t.Fatal(err)
	}
	tot, err := st.Revenue(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	q.GroupBy = billing.DimensionPlan
	segs, err := st.Revenue(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var segEnd int64
	for _, p := range segs {
		if p.Start.Equal(tot[len(tot)-1].Start) {
			segEnd += p.MRREnd
		}
	}
	sum, err := st.Summary(ctx, true, q.AsOf)
	if err != nil {
		t.Fatal(err)
	}
	plans, err := st.SegmentSummary(ctx, true, billing.DimensionPlan, q.AsOf)
	if err != nil {
		t.Fatal(err)
	}
	var summary, planSummary int64
	for _, c := range sum.Currencies {
		summary += c.MRR
	}
	for _, c := range plans.Currencies {
		planSummary += c.MRR
	}
	got := []int64{ledger, tot[len(tot)-1].MRREnd, segEnd, summary, planSummary, cohorts}
	for i, what := range []string{"ledger", "series", "series by plan", "summary", "summary by plan", "cohorts"} {
		if got[i] != mrr {
			t.Errorf("%s: %s MRR %d, want %d (all: %v)", name, what, got[i], mrr, got)
		}
	}
}

// derivedRows is the ledger and the facts of the database, without the
// (random) customer references: equal across deliveries.
func derivedRows(t *testing.T, ctx context.Context, st *postgres.Store) string {
	t.Helper()
	var rows []string
	err := st.DB().SelectContext(ctx, &rows, `
SELECT * FROM (
    SELECT 'movement ' || kind || ' ' || delta_minor || ' ' || customer_mrr_after || ' @' || effective_at FROM mrr_movements
    UNION ALL
    SELECT 'fact ' || dimension || ' ' || segment || ' ' || coalesce(kind, '-') || ' ' || delta_minor || ' a' || active_delta ||
           ' r' || retained_delta || ' t' || trial_start || '/' || trial_conversion || ' @' || effective_at || ' ' || day
    FROM revenue_facts
) r ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("nothing derived")
	}
	return strings.Join(rows, "\n")
}
