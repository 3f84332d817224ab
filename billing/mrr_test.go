package billing

import (
	"testing"
	"time"
)

func monthly(amount, qty int64) Item {
	return Item{PriceID: "price_m", Quantity: qty, UnitAmount: amount, Interval: IntervalMonth, IntervalCount: 1}
}

func tp(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func TestSubscriptionMRR(t *testing.T) {
	t.Parallel()
	active := func(items ...Item) Subscription {
		return Subscription{Status: StatusActive, Currency: "usd", Items: items}
	}
	withDiscounts := func(s Subscription, d ...Discount) Subscription { s.Discounts = d; return s }
	withStatus := func(s Subscription, st Status) Subscription { s.Status = st; return s }
	tests := []struct {
		name      string
		sub       Subscription
		want      int64
		wantFixed bool
	}{
		{"Monthly", active(monthly(2000, 1)), 2000, true},
		{"Quantity", active(monthly(2000, 3)), 6000, true},
		{"Yearly", active(Item{Quantity: 1, UnitAmount: 24000, Interval: IntervalYear, IntervalCount: 1}), 2000, true},
		{"YearlyRoundsHalfEven", active(Item{Quantity: 1, UnitAmount: 1000, Interval: IntervalYear, IntervalCount: 1}), 83, true}, // 83.33
		{"Weekly", active(Item{Quantity: 1, UnitAmount: 1200, Interval: IntervalWeek, IntervalCount: 1}), 5200, true},             // 1200×52/12
		{"Daily", active(Item{Quantity: 1, UnitAmount: 100, Interval: IntervalDay, IntervalCount: 1}), 3042, true},                // 100×365/12 = 3041.67
		{"IntervalCountQuarterly", active(Item{Quantity: 1, UnitAmount: 9000, Interval: IntervalMonth, IntervalCount: 3}), 3000, true},
		{"IntervalCountZeroIsOne", active(Item{Quantity: 1, UnitAmount: 500, Interval: IntervalMonth}), 500, true},
		{"EveryTwoWeeks", active(Item{Quantity: 1, UnitAmount: 1000, Interval: IntervalWeek, IntervalCount: 2}), 2167, true}, // 1000×52/24 = 2166.67
		{"SeveralItems", active(monthly(2000, 2), monthly(500, 1)), 4500, true},
		{"RoundOnceNotPerItem", active(
			Item{Quantity: 1, UnitAmount: 1, Interval: IntervalYear, IntervalCount: 1},
			Item{Quantity: 1, UnitAmount: 5, Interval: IntervalYear, IntervalCount: 1}), 0, true}, // 6/12 = 0.5 → 0 (even); per-item rounding would give 0+0 too
		{"RoundOnceSumsFractions", active(
			Item{Quantity: 1, UnitAmount: 6, Interval: IntervalYear, IntervalCount: 1},
			Item{Quantity: 1, UnitAmount: 6, Interval: IntervalYear, IntervalCount: 1}), 1, true}, // 0.5+0.5 = 1; per-item half-even would give 0
		{"HalfEvenUp", active(Item{Quantity: 1, UnitAmount: 18, Interval: IntervalYear, IntervalCount: 1}), 2, true},                                 // 1.5 → 2
		{"DecimalUnitAmount", active(Item{Quantity: 3, UnitAmount: 12, UnitAmountDec: "12.5", Interval: IntervalMonth, IntervalCount: 1}), 38, true}, // 37.5 → 38
		{"DecimalUnitAmountExact", active(Item{Quantity: 4, UnitAmountDec: "0.25", Interval: IntervalMonth, IntervalCount: 1}), 1, true},
		{"BadDecimalFallsBack", active(Item{Quantity: 1, UnitAmount: 700, UnitAmountDec: "1e9", Interval: IntervalMonth, IntervalCount: 1}), 700, true},
		{"TransformDown", active(Item{Quantity: 25, UnitAmount: 1000, TransformDivideBy: 10, TransformRound: "down", Interval: IntervalMonth, IntervalCount: 1}), 2000, true},
		{"TransformUp", active(Item{Quantity: 25, UnitAmount: 1000, TransformDivideBy: 10, TransformRound: "up", Interval: IntervalMonth, IntervalCount: 1}), 3000, true},
		{"MeteredIsNotFixed", active(Item{Quantity: 0, UnitAmount: 10, UsageType: "metered", Interval: IntervalMonth, IntervalCount: 1}), 0, false},
		{"TieredIsNotFixed", active(Item{Quantity: 5, BillingScheme: "tiered", Interval: IntervalMonth, IntervalCount: 1}), 0, false},
		{"MeteredBesideLicensed", active(monthly(2000, 1), Item{UsageType: "metered", Interval: IntervalMonth, IntervalCount: 1}), 2000, false},
		{"ItemsIncomplete", Subscription{Status: StatusActive, Currency: "usd", Items: []Item{monthly(100, 1)}, ItemsIncomplete: true}, 100, false},
		{"UnknownInterval", active(Item{Quantity: 1, UnitAmount: 100, Interval: "fortnight"}), 0, false},
		{"Free", active(monthly(0, 1)), 0, true},
		{"PercentOff", withDiscounts(active(monthly(2000, 1)), Discount{PercentOffBP: 2500, Duration: "forever"}), 1500, true},
		{"PercentOffFractional", withDiscounts(active(monthly(999, 1)), Discount{PercentOffBP: 3333, Duration: "repeating"}), 666, true}, // 999×0.6667 = 666.03
		{"PercentOffHundred", withDiscounts(active(monthly(2000, 1)), Discount{PercentOffBP: 10000, Duration: "forever"}), 0, true},
		{"AmountOffMonthly", withDiscounts(active(monthly(2000, 1)), Discount{AmountOff: 500, Currency: "usd", Duration: "forever"}), 1500, true},
		{"AmountOffYearlyPerMonth", withDiscounts(active(Item{Quantity: 1, UnitAmount: 24000, Interval: IntervalYear, IntervalCount: 1}),
			Discount{AmountOff: 2400, Currency: "usd", Duration: "forever"}), 1800, true},
		{"AmountOffBiggerThanInvoice", withDiscounts(active(monthly(2000, 1)), Discount{AmountOff: 5000, Currency: "usd", Duration: "forever"}), 0, true},
		{"AmountOffOtherCurrencyIgnored", withDiscounts(active(monthly(2000, 1)), Discount{AmountOff: 500, Currency: "eur", Duration: "forever"}), 2000, true},
		{"OnceCouponIgnored", withDiscounts(active(monthly(2000, 1)), Discount{PercentOffBP: 5000, Duration: "once"}), 2000, true},
		{"TwoDiscountsInOrder", withDiscounts(active(monthly(2000, 1)),
			Discount{PercentOffBP: 5000, Duration: "forever"}, Discount{AmountOff: 100, Currency: "usd", Duration: "forever"}), 900, true},
		{"PastDueCounts", withStatus(active(monthly(2000, 1)), StatusPastDue), 2000, true},
		{"Trialing", withStatus(active(monthly(2000, 1)), StatusTrialing), 0, true},
		{"Incomplete", withStatus(active(monthly(2000, 1)), StatusIncomplete), 0, true},
		{"IncompleteExpired", withStatus(active(monthly(2000, 1)), StatusIncompleteExpired), 0, true},
		{"Paused", withStatus(active(monthly(2000, 1)), StatusPaused), 0, true},
		{"Unpaid", withStatus(active(monthly(2000, 1)), StatusUnpaid), 0, true},
		{"Canceled", withStatus(active(monthly(2000, 1)), StatusCanceled), 0, true},
		{"ZeroDecimalCurrency", Subscription{Status: StatusActive, Currency: "jpy", Items: []Item{{Quantity: 1, UnitAmount: 12000, Interval: IntervalYear, IntervalCount: 1}}}, 1000, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, fixed := SubscriptionMRR(tc.sub)
			if got != tc.want || fixed != tc.wantFixed {
				t.Fatalf("SubscriptionMRR = %d, fixed %v; want %d, fixed %v", got, fixed, tc.want, tc.wantFixed)
			}
		})
	}
}

func TestMRRAt(t *testing.T) {
	t.Parallel()
	base := Subscription{Status: StatusActive, Currency: "usd", Items: []Item{monthly(2000, 1)}}
	withCoupon := base
	withCoupon.Discounts = []Discount{{PercentOffBP: 5000, Duration: "repeating", Start: tp("2026-01-01T00:00:00Z"), End: tp("2026-04-01T00:00:00Z")}}
	cancelAtEnd := base
	cancelAtEnd.CancelAtPeriodEnd = true
	cancelAtEnd.CurrentPeriodEnd = tp("2026-04-03T00:00:00Z")
	cancelAt := base
	cancelAt.CancelAt = tp("2026-03-15T00:00:00Z")
	tests := []struct {
		name string
		sub  Subscription
		at   string
		want int64
	}{
		{"CouponBeforeStart", withCoupon, "2025-12-31T23:59:59Z", 2000},
		{"CouponInForce", withCoupon, "2026-02-01T00:00:00Z", 1000},
		{"CouponEnded", withCoupon, "2026-04-01T00:00:00Z", 2000},
		{"CancelAtPeriodEndKeepsMRRUntilEnd", cancelAtEnd, "2026-04-02T23:59:59Z", 2000},
		{"CancelAtPeriodEndEnds", cancelAtEnd, "2026-04-03T00:00:00Z", 0},
		{"CancelAtBefore", cancelAt, "2026-03-14T00:00:00Z", 2000},
		{"CancelAtAfter", cancelAt, "2026-03-15T00:00:00Z", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := MRRAt(tc.sub, *tp(tc.at)); got != tc.want {
				t.Fatalf("MRRAt(%s) = %d, want %d", tc.at, got, tc.want)
			}
		})
	}
}

func TestCurrency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		currency string
		exp      int // decimals of the API's amounts
		decimals int // decimals shown
	}{
		{"usd", 2, 2},
		{"USD", 2, 2},
		{"eur", 2, 2},
		{"jpy", 0, 0},
		{"krw", 0, 0},
		{"ugx", 0, 0},
		{"kwd", 3, 3},
		{"bhd", 3, 3},
		{"jod", 3, 3},
		{"omr", 3, 3},
		{"tnd", 3, 3},
		{"isk", 2, 0}, // Stripe counts hundredths, shown in whole units
		{"huf", 2, 0},
		{"twd", 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.currency, func(t *testing.T) {
			t.Parallel()
			if got := MinorUnitExponent(tc.currency); got != tc.exp {
				t.Errorf("MinorUnitExponent(%s) = %d, want %d", tc.currency, got, tc.exp)
			}
			if got := DisplayDecimals(tc.currency); got != tc.decimals {
				t.Errorf("DisplayDecimals(%s) = %d, want %d", tc.currency, got, tc.decimals)
			}
		})
	}
}
