package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/webhooks"
)

// TestFinanceInputsInOneBatch: a new customer's discount and paid lines
// that arrive in the same batch (one transaction) as its first
// subscription, in any order and delivered twice, count as they do when
// each event has a transaction of its own. The event path skips reading
// ledger inputs for a customer first seen in the batch unless the batch
// wrote some (finWork.needsInputs); this is the case that must not be
// skipped.
func TestFinanceInputsInOneBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	const t0 = 1750000000
	event := func(id, typ string, created int64, obj string) billing.Event {
		t.Helper()
		raw := fmt.Sprintf(`{"id":"evt_%s","object":"event","api_version":"2023-10-16","created":%d,"livemode":true,
"data":{"object":%s},"type":%q}`, id, created, obj, typ)
		ev, err := webhooks.DecodeEvent([]byte(raw), webhooks.DecodeOptions{})
		if err != nil {
			t.Fatalf("decode %s: %v", id, err)
		}
		return ev
	}
	sub := func(sub, cus, price string, amount int64, extra string) string {
		return fmt.Sprintf(`{"id":%q,"object":"subscription","customer":%q,"status":"active","currency":"usd","livemode":true,
"created":%d,"start_date":%d,"current_period_start":%d,"current_period_end":%d,"cancel_at_period_end":false,
"metadata":{"account_id":"acct_finbatch"},"discount":null,
"items":{"object":"list","has_more":false,"data":[{"id":"si_1","quantity":1,
"price":{"id":%q,"product":"prod_fin","currency":"usd","unit_amount":%d,"unit_amount_decimal":"%d","billing_scheme":"per_unit",
"tax_behavior":"inclusive","recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"}}}]}%s}`,
			sub, cus, t0, t0, t0, t0+30*86400, price, amount, amount, extra)
	}
	movements := func(cus string) string {
		t.Helper()
		var rows []string
		err := st.DB().SelectContext(ctx, &rows, `
SELECT m.kind || ' ' || m.delta_minor || ' @' || (extract(epoch FROM m.effective_at)::bigint - $2)
FROM mrr_movements m JOIN customers c USING (customer_ref)
WHERE c.stripe_customer_id = $1 ORDER BY m.effective_at, m.kind, m.delta_minor`, cus, t0)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(rows, "; ")
	}
	tests := []struct {
		name   string
		events func(k int) (cus string, evs []billing.Event)
		want   string
		kinds  string // usage kinds of the customer's paid lines, when any
	}{
		{
			name: "CustomerDiscount",
			events: func(k int) (string, []billing.Event) {
				cus := fmt.Sprintf("cus_FBA%d", k)
				return cus, []billing.Event{
					event(fmt.Sprintf("FBA%da", k), "customer.subscription.created", t0, sub(fmt.Sprintf("sub_FBA%d", k), cus, "price_FBA", 8000, "")),
					event(fmt.Sprintf("FBA%db", k), "customer.created", t0+100, fmt.Sprintf(`{"id":%q,"object":"customer","livemode":true,
"email":"jane.piiperson@example.com","discount":{"coupon":{"amount_off":2000,"currency":"usd","duration":"forever"},"start":%d}}`, cus, t0+100)),
				}
			},
			want: "new 8000 @0; contraction -2000 @100",
		},
		{
			// The line comes without its price's kind (2025-03-31 shape):
			// the batch's subscription classifies it.
			name: "AutomaticTaxLine",
			events: func(k int) (string, []billing.Event) {
				cus, s := fmt.Sprintf("cus_FBB%d", k), fmt.Sprintf("sub_FBB%d", k)
				return cus, []billing.Event{
					event(fmt.Sprintf("FBB%da", k), "customer.subscription.created", t0, sub(s, cus, "price_FBB", 11900, `,"automatic_tax":{"enabled":true}`)),
					event(fmt.Sprintf("FBB%db", k), "invoice.paid", t0+60, fmt.Sprintf(`{"id":"in_FBB%d","object":"invoice",
"customer":%q,"livemode":true,"currency":"usd","attempt_count":1,"status":"paid",
"parent":{"type":"subscription_details","subscription_details":{"subscription":%q}},
"lines":{"object":"list","has_more":false,"data":[{"id":"il_1","amount":11900,"description":"Pro for Piiperson",
"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":%q,"subscription_item":"si_1","proration":false}},
"pricing":{"type":"price_details","price_details":{"price":"price_FBB","product":"prod_fin"}},
"taxes":[{"amount":1900,"tax_behavior":"inclusive","taxable_amount":10000,"type":"tax_rate_details"}],
"period":{"start":%d,"end":%d}}]}}`, k, cus, s, s, t0, t0+30*86400)),
				}
			},
			want:  "new 10000 @0",
			kinds: "fixed",
		},
	}
	run := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, base := tt.events(0)
			for _, order := range [][]int{{0, 1}, {1, 0}, {0, 1, 0, 1}, {1, 1, 0, 0}} {
				run++
				cus, evs := tt.events(run)
				batch := make([]billing.Event, 0, len(order))
				for _, i := range order {
					batch = append(batch, evs[i%len(base)])
				}
				_, errs, err := postgres.ApplyBatch(ctx, st, batch)
				if err != nil {
					t.Fatal(err)
				}
				for i, e := range errs {
					if e != nil {
						t.Fatalf("order %v: event %d: %v", order, i, e)
					}
				}
				if got := movements(cus); got != tt.want {
					t.Fatalf("order %v: movements %q, want %q", order, got, tt.want)
				}
				if tt.kinds != "" {
					var kinds string
					if err := st.DB().GetContext(ctx, &kinds, `SELECT string_agg(l.usage_kind, ',' ORDER BY l.price_id)
FROM invoice_line_amounts l JOIN customers c USING (customer_ref) WHERE c.stripe_customer_id = $1`, cus); err != nil {
						t.Fatal(err)
					}
					if kinds != tt.kinds {
						t.Fatalf("order %v: line kinds %q, want %q", order, kinds, tt.kinds)
					}
				}
				// Redelivered one by one afterwards: nothing moves.
				for _, ev := range evs {
					if _, errs, err := postgres.ApplyBatch(ctx, st, []billing.Event{ev}); err != nil || errs[0] != nil {
						t.Fatalf("redelivery: %v %v", err, errs)
					}
				}
				var ref string
				if err := st.DB().GetContext(ctx, &ref, `SELECT customer_ref::text FROM customers WHERE stripe_customer_id = $1`, cus); err != nil {
					t.Fatal(err)
				}
				if err := st.RebuildCustomerLedger(ctx, ref); err != nil {
					t.Fatal(err)
				}
				if got := movements(cus); got != tt.want {
					t.Fatalf("order %v: after redelivery and rebuild %q, want %q", order, got, tt.want)
				}
			}
		})
	}
}
