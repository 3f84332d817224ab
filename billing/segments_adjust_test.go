package billing

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// The segments, cohorts and trials are split from the ledger's MRR: with a
// customer-level discount or a tax-inclusive price the segments of every
// dimension still add up to the ledger's MRR at every instant, in any
// delivery order.
func TestDeriveFactsAdjustedAddUpToLedger(t *testing.T) {
	t.Parallel()
	forever := func(d Discount) Discount { d.Duration = "forever"; return d }
	plan := func(price string, amount int64) Item {
		return Item{PriceID: price, ProductID: "prod_" + price, Quantity: 1, UnitAmount: amount, Interval: IntervalMonth, IntervalCount: 1}
	}
	autoTax := func(items ...Item) Subscription {
		s := act(items...)
		s.AutomaticTax = true
		return s
	}
	inclusive := func(it Item) Item { it.TaxBehavior = "inclusive"; return it }
	cdv := func(at string, ds ...Discount) CustomerDiscountVersion {
		return CustomerDiscountVersion{At: *tp(at), Event: "evt_c" + at, Discounts: ds}
	}
	tests := []struct {
		name string
		h    CustomerHistory
		// mrr is the customer's MRR (and so every dimension's segment
		// total) after the last instant.
		mrr int64
		// plans is the plan segments' MRR after the last instant.
		plans map[string]int64
	}{
		{
			name: "CustomerCouponAmountOff",
			h: CustomerHistory{
				Versions:          []SubscriptionVersion{ver("a", "2026-01-01T00:00:00Z", 0, act(plan("price_a", 5000), plan("price_b", 3000)))},
				CustomerDiscounts: []CustomerDiscountVersion{cdv("2026-02-01T00:00:00Z", forever(Discount{AmountOff: 2000, Currency: "usd"}))},
			},
			mrr: 6000, plans: map[string]int64{"price_a": 3750, "price_b": 2250},
		},
		{
			name: "CustomerCouponRepeatingEnds",
			h: CustomerHistory{
				Versions: []SubscriptionVersion{ver("a", "2026-01-01T00:00:00Z", 0, act(plan("price_a", 8000)))},
				CustomerDiscounts: []CustomerDiscountVersion{cdv("2026-01-10T00:00:00Z",
					Discount{PercentOffBP: 2500, Duration: "repeating", Start: tp("2026-01-10T00:00:00Z"), End: tp("2026-04-10T00:00:00Z")})},
			},
			mrr: 8000, plans: map[string]int64{"price_a": 8000},
		},
		{
			name: "CustomerCouponRemovedOverTwoSubscriptions",
			h: CustomerHistory{
				Versions: []SubscriptionVersion{
					ver("a", "2026-01-01T00:00:00Z", 0, act(plan("price_a", 8000))),
					ver("b", "2026-02-01T00:00:00Z", 0, act(plan("price_b", 2000))),
				},
				CustomerDiscounts: []CustomerDiscountVersion{
					cdv("2026-01-05T00:00:00Z", forever(Discount{PercentOffBP: 5000})),
					cdv("2026-03-01T00:00:00Z", forever(Discount{PercentOffBP: 1000})),
				},
			},
			mrr: 9000, plans: map[string]int64{"price_a": 7200, "price_b": 1800},
		},
		{
			name: "SubscriptionDiscountWinsOverCustomer",
			h: CustomerHistory{
				Versions: []SubscriptionVersion{ver("a", "2026-01-01T00:00:00Z", 0, func() Subscription {
					s := act(plan("price_a", 8000))
					s.Discounts = []Discount{forever(Discount{PercentOffBP: 1000})}
					return s
				}())},
				CustomerDiscounts: []CustomerDiscountVersion{cdv("2026-01-02T00:00:00Z", forever(Discount{PercentOffBP: 5000}))},
			},
			mrr: 7200, plans: map[string]int64{"price_a": 7200},
		},
		{
			name: "TaxInclusiveAutomaticTax",
			h: CustomerHistory{
				Versions: []SubscriptionVersion{ver("a", "2026-01-01T00:00:00Z", 0, autoTax(inclusive(plan("price_a", 11900)), plan("price_b", 2000)))},
				TaxFacts: []TaxFact{{PriceID: "price_a", At: *tp("2026-01-01T00:00:00Z"), Gross: 11900, Net: 10000}},
			},
			mrr: 12000, plans: map[string]int64{"price_a": 10000, "price_b": 2000},
		},
		{
			name: "TaxShareChangesBetweenInvoices",
			h: CustomerHistory{
				Versions: []SubscriptionVersion{ver("a", "2026-01-01T00:00:00Z", 0, autoTax(inclusive(plan("price_a", 12000))))},
				TaxFacts: []TaxFact{
					{PriceID: "price_a", At: *tp("2026-01-01T00:00:00Z"), Gross: 12000, Net: 10000},
					{PriceID: "price_a", At: *tp("2026-02-01T00:00:00Z"), Gross: 12000, Net: 10909},
				},
			},
			mrr: 10909, plans: map[string]int64{"price_a": 10909},
		},
		{
			name: "InclusiveTaxRateAndCustomerCoupon",
			h: CustomerHistory{
				Versions: []SubscriptionVersion{ver("a", "2026-01-01T00:00:00Z", 0, act(
					Item{PriceID: "price_a", Quantity: 1, UnitAmount: 11900, InclusiveTaxBP: 1900, Interval: IntervalMonth, IntervalCount: 1},
					plan("price_b", 5000)))},
				CustomerDiscounts: []CustomerDiscountVersion{cdv("2026-01-15T00:00:00Z", forever(Discount{PercentOffBP: 5000}))},
			},
			mrr: 7500, plans: map[string]int64{"price_a": 5000, "price_b": 2500},
		},
		{
			name: "TrialConvertsUnderCustomerCoupon",
			h: CustomerHistory{
				Versions: []SubscriptionVersion{
					ver("a", "2026-01-01T00:00:00Z", 0, func() Subscription {
						s := st(StatusTrialing, plan("price_a", 8000))
						s.TrialEnd = tp("2026-01-15T00:00:00Z")
						return s
					}()),
					ver("a", "2026-01-15T00:00:00Z", 0, act(plan("price_a", 8000))),
				},
				CustomerDiscounts: []CustomerDiscountVersion{cdv("2026-01-01T00:00:00Z", forever(Discount{AmountOff: 2000, Currency: "usd"}))},
			},
			mrr: 6000, plans: map[string]int64{"price_a": 6000},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := DeriveCustomerLedger(tc.h)
			facts := DeriveFacts(tc.h)
			if len(l.Movements) == 0 {
				t.Fatal("no movements: the case tests nothing")
			}
			// At every movement of the ledger, every dimension's segments
			// (and the cohorts) add up to the customer's MRR.
			for _, d := range []Dimension{DimensionPlan, DimensionProduct, DimensionInterval, DimensionCohort} {
				for _, m := range l.Movements {
					var sum int64
					for _, f := range facts {
						if f.Dimension == d && !f.At.After(m.At) && f.Currency == m.Currency && f.Livemode == m.Livemode {
							sum += f.Delta
						}
					}
					if sum != m.After {
						t.Errorf("%s: segments add up to %d at %s, ledger MRR %d", d, sum, m.At.Format(time.RFC3339), m.After)
					}
				}
				// And no segment moves where the ledger does not.
				at := map[time.Time]bool{}
				for _, m := range l.Movements {
					at[m.At] = true
				}
				for _, f := range facts {
					if f.Dimension == d && f.Delta != 0 && !at[f.At] {
						t.Errorf("%s: segment %s moves %d at %s, the ledger does not", d, f.Segment, f.Delta, f.At.Format(time.RFC3339))
					}
				}
			}
			if last := l.Movements[len(l.Movements)-1].After; last != tc.mrr {
				t.Errorf("ledger MRR %d, want %d", last, tc.mrr)
			}
			plans := map[string]int64{}
			for _, f := range facts {
				if f.Dimension == DimensionPlan {
					plans[f.Segment] += f.Delta
				}
			}
			for k, v := range plans {
				if v == 0 {
					delete(plans, k)
				}
			}
			if !reflect.DeepEqual(plans, tc.plans) {
				t.Errorf("plans %v, want %v", plans, tc.plans)
			}
			// Order-independent and idempotent: any order of the inputs,
			// each delivered up to twice, gives the same facts.
			rng := rand.New(rand.NewPCG(7, uint64(len(tc.name))))
			for i := range 20 {
				h := CustomerHistory{
					Versions:          shuffledDup(rng, tc.h.Versions),
					CustomerDiscounts: shuffledDup(rng, tc.h.CustomerDiscounts),
					TaxFacts:          shuffledDup(rng, tc.h.TaxFacts),
				}
				if got := DeriveFacts(h); !reflect.DeepEqual(got, facts) {
					t.Fatalf("delivery %d: facts differ:\n%v\nwant\n%v", i, factLines(got), factLines(facts))
				}
			}
		})
	}
}

// shuffledDup is xs in a random order with some elements twice, as a
// redelivered event would add them if a store let it.
func shuffledDup[T any](rng *rand.Rand, xs []T) []T {
	out := slices.Clone(xs)
	for _, x := range xs {
		if rng.IntN(2) == 0 {
			out = append(out, x)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// ItemSharesWith adds up to the ledger's MRR of the subscription, and
// weighs each item net of its tax.
func TestItemSharesWith(t *testing.T) {
	t.Parallel()
	s := act(Item{PriceID: "price_a", Quantity: 1, UnitAmount: 11900, InclusiveTaxBP: 1900, Interval: IntervalMonth, IntervalCount: 1},
		Item{PriceID: "price_b", Quantity: 1, UnitAmount: 10000, Interval: IntervalMonth, IntervalCount: 1})
	s.Currency = "usd"
	at := *tp("2026-01-01T00:00:00Z")
	for _, tc := range []struct {
		adj  Adjustments
		want []int64
	}{
		{Adjustments{}, []int64{10000, 10000}},
		{Adjustments{CustomerDiscounts: []Discount{{PercentOffBP: 5000, Duration: "forever"}}}, []int64{5000, 5000}},
		{Adjustments{CustomerDiscounts: []Discount{{AmountOff: 30000, Duration: "forever", Currency: "usd"}}}, []int64{0, 0}},
	} {
		t.Run(fmt.Sprint(tc.want), func(t *testing.T) {
			got := ItemSharesWith(s, at, tc.adj)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("shares %v, want %v", got, tc.want)
			}
			var sum int64
			for _, v := range got {
				sum += v
			}
			if m := MRRAtWith(s, at, tc.adj); sum != m {
				t.Errorf("shares add up to %d, MRR %d", sum, m)
			}
		})
	}
}

// The movers' plans are those with MRR in the ledger: a customer coupon
// that makes a plan free leaves it out.
func TestPlansAroundCustomerDiscount(t *testing.T) {
	t.Parallel()
	h := CustomerHistory{
		Versions: []SubscriptionVersion{ver("a", "2026-01-01T00:00:00Z", 0, act(monthly(8000, 1)))},
		CustomerDiscounts: []CustomerDiscountVersion{{At: *tp("2026-02-01T00:00:00Z"), Event: "evt_c",
			Discounts: []Discount{{PercentOffBP: 10000, Duration: "forever"}}}},
	}
	for _, tc := range []struct {
		at            string
		before, after []string
	}{
		{"2026-01-01T00:00:00Z", []string{}, []string{"price_m"}},
		{"2026-02-01T00:00:00Z", []string{"price_m"}, []string{}},
	} {
		before, after := PlansAround(h, true, "usd", *tp(tc.at))
		if !reflect.DeepEqual(before, tc.before) || !reflect.DeepEqual(after, tc.after) {
			t.Errorf("%s: plans %v → %v, want %v → %v", tc.at, before, after, tc.before, tc.after)
		}
	}
}
