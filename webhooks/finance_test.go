package webhooks_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// Revenue inputs beyond a subscription's own state (issue 20 item 1):
// customer-level discounts, tax-inclusive prices and paid invoice lines,
// delivered in every order, end in the same ledger, and a rebuild from the
// stored inputs gives it again.

const finT0 = 1750000000 // 2025-06-15

// finEvent renders a signed-to-be event around obj.
func finEvent(id, typ string, created int64, obj string) []byte {
	return []byte(fmt.Sprintf(`{"id":"evt_%s","object":"event","api_version":"2023-10-16","created":%d,"livemode":true,
"data":{"object":%s},"type":%q}`, id, created, obj, typ))
}

// finSub is an active monthly subscription object of one item.
func finSub(sub, cus string, price string, amount int64, extraItem, extraSub string) string {
	return fmt.Sprintf(`{"id":%q,"object":"subscription","customer":%q,"status":"active","currency":"usd","livemode":true,
"created":%d,"start_date":%d,"current_period_start":%d,"current_period_end":%d,"cancel_at_period_end":false,
"description":"for Jane Q. Piiperson PII-DESC","metadata":{"account_id":"acct_fin"},
"items":{"object":"list","has_more":false,"data":[{"id":"si_1","quantity":1%s,
"price":{"id":%q,"product":"prod_fin","currency":"usd","unit_amount":%d,"unit_amount_decimal":"%d","billing_scheme":"per_unit",
"tax_behavior":"inclusive","recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"}}}]},
"discount":null%s}`, sub, cus, finT0, finT0, finT0, finT0+30*86400, extraItem, price, amount, amount, extraSub)
}

// movementsOf is the customer's ledger as text, times relative to finT0.
func (b *bundle) movementsOf(t *testing.T, cus string) string {
	t.Helper()
	var rows []string
	err := b.store.DB().Select(&rows, `
SELECT m.kind || ' ' || m.delta_minor || ' @' || (extract(epoch FROM m.effective_at)::bigint - $2)
FROM mrr_movements m JOIN customers c USING (customer_ref)
WHERE c.stripe_customer_id = $1 ORDER BY m.effective_at, m.kind, m.delta_minor`, cus, finT0)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(rows, "; ")
}

// permutations lists every order of n items.
func permutations(n int) [][]int {
	if n == 1 {
		return [][]int{{0}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

func TestFinanceInputsEveryOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name   string
		events func(k int) [][]byte // run k's events, with IDs of its own
		want   string
	}{
		{
			// The case: 80.00 a month with a 20.00 coupon on the
			// customer is 60.00; removing it (customer.updated with no
			// discount) is expansion.
			name: "CustomerCouponAmountOff",
			events: func(k int) [][]byte {
				cus, sub := fmt.Sprintf("cus_FinA%d", k), fmt.Sprintf("sub_FinA%d", k)
				return [][]byte{
					finEvent(fmt.Sprintf("FinA%da", k), "customer.subscription.created", finT0, finSub(sub, cus, "price_A", 8000, "", "")),
					finEvent(fmt.Sprintf("FinA%db", k), "customer.discount.created", finT0+100, fmt.Sprintf(`{"id":"di_FinA%d","object":"discount",
"coupon":{"id":"SummerJane","amount_off":2000,"currency":"usd","duration":"forever","name":"Piiperson PII-COUPON"},
"customer":%q,"subscription":null,"invoice":null,"start":%d,"end":null}`, k, cus, finT0+100)),
					finEvent(fmt.Sprintf("FinA%dc", k), "customer.updated", finT0+200, fmt.Sprintf(`{"id":%q,"object":"customer","livemode":true,
"email":"jane.piiperson@example.com","discount":null}`, cus)),
				}
			},
			want: "new 8000 @0; contraction -2000 @100; expansion 2000 @200",
		},
		{
			// A subscription's own discount wins over the customer's.
			name: "SubscriptionDiscountWins",
			events: func(k int) [][]byte {
				cus, sub := fmt.Sprintf("cus_FinB%d", k), fmt.Sprintf("sub_FinB%d", k)
				own := `,"discount":{"coupon":{"percent_off":10,"duration":"forever"},"start":1750000000}`
				return [][]byte{
					finEvent(fmt.Sprintf("FinB%da", k), "customer.subscription.created", finT0,
						strings.Replace(finSub(sub, cus, "price_B", 8000, "", own), `"discount":null,`, ``, 1)),
					finEvent(fmt.Sprintf("FinB%db", k), "customer.created", finT0+100, fmt.Sprintf(`{"id":%q,"object":"customer","livemode":true,
"discount":{"coupon":{"percent_off":50,"duration":"forever"},"start":%d}}`, cus, finT0+100)),
				}
			},
			want: "new 7200 @0",
		},
		{
			// 119.00 with a 19% inclusive tax rate is 100.00 of revenue.
			name: "InclusiveTaxRate",
			events: func(k int) [][]byte {
				cus, sub := fmt.Sprintf("cus_FinC%d", k), fmt.Sprintf("sub_FinC%d", k)
				return [][]byte{
					finEvent(fmt.Sprintf("FinC%da", k), "customer.subscription.created", finT0,
						finSub(sub, cus, "price_C", 11900, "", `,"default_tax_rates":[{"id":"txr_1","percentage":19,"inclusive":true,"display_name":"VAT"}]`)),
				}
			},
			want: "new 10000 @0",
		},
		{
			// Automatic tax: the paid invoice (2023-10-16 shape) says 100.00
			// of 119.00 is revenue, for the whole life of the price.
			name: "AutomaticTaxFromInvoice2023",
			events: func(k int) [][]byte {
				cus, sub := fmt.Sprintf("cus_FinD%d", k), fmt.Sprintf("sub_FinD%d", k)
				return [][]byte{
					finEvent(fmt.Sprintf("FinD%da", k), "customer.subscription.created", finT0,
						finSub(sub, cus, "price_D", 11900, "", `,"automatic_tax":{"enabled":true}`)),
					finEvent(fmt.Sprintf("FinD%db", k), "invoice.paid", finT0+60, fmt.Sprintf(`{"id":"in_FinD%d","object":"invoice",
"customer":%q,"subscription":%q,"livemode":true,"currency":"usd","attempt_count":1,"customer_email":"jane.piiperson@example.com",
"lines":{"object":"list","has_more":false,"data":[{"id":"il_1","type":"subscription","amount":11900,"amount_excluding_tax":10000,
"description":"1 × Pro for Jane Q. Piiperson","period":{"start":%d,"end":%d},
"price":{"id":"price_D","billing_scheme":"per_unit","recurring":{"interval":"month","usage_type":"licensed"}}}]}}`,
						k, cus, sub, finT0, finT0+30*86400)),
				}
			},
			want: "new 10000 @0",
		},
		{
			// The same in the 2025-03-31 shape: taxes[] and pricing.
			name: "AutomaticTaxFromInvoice2025",
			events: func(k int) [][]byte {
				cus, sub := fmt.Sprintf("cus_FinE%d", k), fmt.Sprintf("sub_FinE%d", k)
				return [][]byte{
					finEvent(fmt.Sprintf("FinE%da", k), "customer.subscription.created", finT0,
						finSub(sub, cus, "price_E", 11900, "", `,"automatic_tax":{"enabled":true}`)),
					finEvent(fmt.Sprintf("FinE%db", k), "invoice.paid", finT0+60, fmt.Sprintf(`{"id":"in_FinE%d","object":"invoice",
"customer":%q,"livemode":true,"currency":"usd","attempt_count":1,
"parent":{"type":"subscription_details","subscription_details":{"subscription":%q}},
"lines":{"object":"list","has_more":false,"data":[{"id":"il_1","amount":11900,"description":"Pro for Piiperson",
"parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":%q,"subscription_item":"si_1","proration":false}},
"pricing":{"type":"price_details","price_details":{"price":"price_E","product":"prod_fin"}},
"taxes":[{"amount":1900,"tax_behavior":"inclusive","taxable_amount":10000,"type":"tax_rate_details"}],
"period":{"start":%d,"end":%d}}]}}`, k, cus, sub, sub, finT0, finT0+30*86400)),
				}
			},
			want: "new 10000 @0",
		},
	}
	run := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(tt.events(0))
			for _, order := range permutations(n) {
				run++
				k := run
				evs := tt.events(k)
				for _, i := range order {
					if r := b.post(t, evs[i]); r.Status != http.StatusOK {
						t.Fatalf("order %v: %d %s", order, r.Status, r.Body)
					}
				}
				cus := fmt.Sprintf("cus_Fin%s%d", string(tt.events(0)[0][len(`{"id":"evt_Fin`)]), k)
				if got := b.movementsOf(t, cus); got != tt.want {
					t.Fatalf("order %v: movements %q, want %q", order, got, tt.want)
				}
				// Duplicated delivery: every event again, newest first,
				// changes nothing.
				for i := len(order) - 1; i >= 0; i-- {
					if r := b.post(t, evs[order[i]]); r.Status != http.StatusOK {
						t.Fatalf("order %v: redelivery: %d %s", order, r.Status, r.Body)
					}
				}
				if got := b.movementsOf(t, cus); got != tt.want {
					t.Fatalf("order %v: after redelivery %q, want %q", order, got, tt.want)
				}
				// Rebuild equality: re-deriving from the stored inputs
				// changes nothing.
				var ref string
				if err := b.store.DB().Get(&ref, `SELECT customer_ref::text FROM customers WHERE stripe_customer_id = $1`, cus); err != nil {
					t.Fatal(err)
				}
				if err := b.store.RebuildCustomerLedger(context.Background(), ref); err != nil {
					t.Fatal(err)
				}
				if got := b.movementsOf(t, cus); got != tt.want {
					t.Fatalf("order %v: after rebuild %q, want %q", order, got, tt.want)
				}
			}
		})
	}
}

// Usage revenue (issue 20 item 7): paid metered lines in both invoice
// shapes, one of them paid before its subscription was known, are usage
// revenue of the period they cover; the subscription's fixed MRR is not
// touched by them.
func TestUsageRevenueBothShapes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const day = 86400
	metered := `,{"id":"si_2","quantity":0,"price":{"id":"price_M","product":"prod_fin","currency":"usd","billing_scheme":"per_unit",
"unit_amount":5,"recurring":{"interval":"month","interval_count":1,"usage_type":"metered"}}}`
	sub := strings.Replace(finSub("sub_FinU1", "cus_FinU1", "price_F", 3000, "", ""), `}]},`, `}`+metered+`]},`, 1)
	inv2025 := finEvent("FinU3", "invoice.paid", finT0+61*day, fmt.Sprintf(`{"id":"in_FinU3","object":"invoice",
"customer":"cus_FinU1","livemode":true,"currency":"usd","attempt_count":1,
"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_FinU1"}},
"lines":{"object":"list","has_more":false,"data":[
 {"id":"il_3","amount":3500,"description":"Usage of Jane Q. Piiperson","pricing":{"type":"price_details","price_details":{"price":"price_M"}},
  "parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_FinU1","subscription_item":"si_2"}},
  "taxes":[],"period":{"start":%d,"end":%d}},
 {"id":"il_4","amount":3000,"pricing":{"type":"price_details","price_details":{"price":"price_F"}},
  "parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"sub_FinU1","subscription_item":"si_1"}},
  "taxes":[],"period":{"start":%d,"end":%d}}]}}`, finT0+30*day, finT0+60*day, finT0+60*day, finT0+90*day))
	inv2023 := finEvent("FinU2", "invoice.paid", finT0+31*day, fmt.Sprintf(`{"id":"in_FinU2","object":"invoice",
"customer":"cus_FinU1","subscription":"sub_FinU1","livemode":true,"currency":"usd","attempt_count":1,
"lines":{"object":"list","has_more":false,"data":[
 {"id":"il_1","type":"subscription","amount":2000,"amount_excluding_tax":2000,"period":{"start":%d,"end":%d},
  "description":"Usage PII-DESC","price":{"id":"price_M","billing_scheme":"per_unit","recurring":{"interval":"month","usage_type":"metered"}}},
 {"id":"il_1b","type":"subscription","amount":500,"amount_excluding_tax":500,"period":{"start":%d,"end":%d},
  "price":{"id":"price_M","billing_scheme":"per_unit","recurring":{"interval":"month","usage_type":"metered"}}},
 {"id":"il_2","type":"invoiceitem","amount":999,"period":{"start":%d,"end":%d},"price":{"id":"price_oneoff"}}]}}`,
		finT0, finT0+30*day, finT0, finT0+30*day, finT0, finT0+30*day))
	// The 2025 invoice arrives before the subscription.
	for _, ev := range [][]byte{inv2025, finEvent("FinU1", "customer.subscription.created", finT0, sub), inv2023} {
		if r := b.post(t, ev); r.Status != http.StatusOK {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	}
	if got := b.movementsOf(t, "cus_FinU1"); got != "new 3000 @0" {
		t.Fatalf("movements %q: usage must not change fixed MRR", got)
	}
	from := time.Unix(finT0, 0).UTC().AddDate(0, 0, -14) // 2025-06-01
	q := billing.RevenueQuery{Livemode: true, Bucket: billing.BucketMonth, From: from, To: from.AddDate(0, 3, 0)}
	days, err := b.store.UsageDays(context.Background(), true, "", billing.UsageLookback(q.From), q.To)
	if err != nil {
		t.Fatal(err)
	}
	got := billing.UsageFigures(days, q)
	// Jun 15-Jul 15 (2000 + 500 of prorated lines) ends in July; Jul 15-Aug 14 in August.
	want := []struct{ rev, mrr int64 }{{0, 0}, {2500, 833}, {3500, 2000}}
	if len(got) != len(want) {
		t.Fatalf("usage %+v", got)
	}
	for i, w := range want {
		if got[i].UsageRevenue != w.rev || got[i].UsageMRR != w.mrr {
			t.Errorf("bucket %s: usage %d, usage MRR %d; want %d, %d", got[i].Start.Format(time.DateOnly),
				got[i].UsageRevenue, got[i].UsageMRR, w.rev, w.mrr)
		}
	}
	var kinds string
	if err := b.store.DB().Get(&kinds, `SELECT string_agg(price_id || ':' || usage_kind, ',' ORDER BY period_start, price_id)
FROM invoice_line_amounts`); err != nil {
		t.Fatal(err)
	}
	if kinds != "price_M:metered,price_M:metered,price_F:fixed" {
		t.Fatalf("lines %s (the one-off invoice item is not a subscription line)", kinds)
	}
}

// Catalog names (issue 20 item 2): product.* and price.* events in any
// order end in the same names; the names are cleaned merchant text, and
// nothing else of the objects (descriptions, metadata) is kept.
func TestCatalogNamesEveryOrder(t *testing.T) {
	t.Parallel()
	names := []string{"v2023_80_product.created", "v2023_81_price.created", "v2025_82_product.updated",
		"v2025_83_price.updated", "v2023_84_price.deleted", "v2023_85_product.deleted"}
	var want string
	for k, order := range append([][]int{{0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}, {3, 1, 5, 0, 2, 4}}, []int{2, 0, 4, 1, 5, 3}) {
		b := setup(t)
		for _, i := range order {
			r := b.post(t, webhookstest.FixtureNamed(t, names[i]).Payload)
			if r.Status != http.StatusOK {
				t.Fatalf("%s: %d %s", names[i], r.Status, r.Body)
			}
		}
		plans, err := b.store.PlanNames(context.Background(), true)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range plans {
			got = append(got, p.PriceID+"="+p.PlanName)
		}
		g := strings.Join(got, "; ")
		if k == 0 {
			want = g
			if want != "price_PiiOld=Legacy (Legacy tiers); price_PiiSeats=Team seats Pro (Per seat); price_PiiGoldYear=Team seats Pro (yearly)" {
				t.Fatalf("plan names %q", want)
			}
			if d := b.dump(t); strings.Contains(d, "Priority support") || strings.Contains(d, "unit_label") {
				t.Fatal("the catalog kept more than names")
			}
		} else if g != want {
			t.Fatalf("order %v: plan names %q, want %q", order, g, want)
		}
	}
}
