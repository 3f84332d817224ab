package billing

import (
	"math"
	"math/big"
	"testing"
	"time"
)

func TestClampAmount(t *testing.T) {
	t.Parallel()
	huge, _ := new(big.Int).SetString("1000000000000000000000000000000", 10)
	tests := []struct {
		name    string
		v       *big.Int
		want    int64
		clamped bool
	}{
		{"Zero", big.NewInt(0), 0, false},
		{"Max", big.NewInt(MaxReportAmount), MaxReportAmount, false},
		{"MaxPlusOne", big.NewInt(MaxReportAmount + 1), MaxReportAmount, true},
		{"MinusMax", big.NewInt(-MaxReportAmount), -MaxReportAmount, false},
		{"BeyondInt64", huge, MaxReportAmount, true},
		{"BeyondInt64Negative", new(big.Int).Neg(huge), -MaxReportAmount, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, c := ClampAmount(tt.v); got != tt.want || c != tt.clamped {
				t.Fatalf("ClampAmount(%v) = %d %v, want %d %v", tt.v, got, c, tt.want, tt.clamped)
			}
		})
	}
}

func TestSatAdd(t *testing.T) {
	t.Parallel()
	tests := []struct{ a, b, want int64 }{
		{1, 2, 3},
		{math.MaxInt64, 1, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64, math.MaxInt64},
		{math.MaxInt64 - 5, 5, math.MaxInt64},
		{-5, 3, -2},
		{math.MinInt64, -1, math.MinInt64},
	}
	for _, tt := range tests {
		if got := satAdd(tt.a, tt.b); got != tt.want {
			t.Errorf("satAdd(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// A customer whose subscriptions each saturate MRR keeps the maximum: its
// total never wraps to a negative figure, so no movement is garbage.
func TestDeriveLedgerSaturates(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	huge := Subscription{Status: StatusActive, Livemode: true, Currency: "usd",
		Items: []Item{{PriceID: "p", Quantity: 1 << 62, UnitAmount: 1 << 62, Interval: IntervalMonth, IntervalCount: 1}}}
	ms := deriveMovements([]SubscriptionVersion{
		{SubscriptionRef: "a", At: t0, State: huge},
		{SubscriptionRef: "b", At: t0.Add(time.Hour), State: huge},
	})
	if len(ms) != 1 || ms[0].After != math.MaxInt64 || ms[0].Kind != MovementNew {
		t.Fatalf("movements %+v, want one new movement to the maximum", ms)
	}
}

// Figures derived from clamped totals stay in range and flag the bucket;
// ordinary totals are not flagged.
func TestFiguresClamp(t *testing.T) {
	t.Parallel()
	p := PeriodTotals{MRRStart: MaxReportAmount, MRREnd: MaxReportAmount, PayingStart: 1, PayingEnd: 1, ChurnedCustomers: 1,
		Movements: MovementSums{New: MaxReportAmount, Expansion: MaxReportAmount, Reactivation: MaxReportAmount}}
	f := p.Figures(BucketMonth)
	if !f.Clamped || f.ARR != MaxReportAmount || f.NetNew != MaxReportAmount || f.LTV == nil || *f.LTV != MaxReportAmount {
		t.Fatalf("figures %+v (LTV %v)", f, f.LTV)
	}
	if g := (PeriodTotals{MRREnd: 1000, PayingEnd: 1}).Figures(BucketMonth); g.Clamped || g.ARR != 12000 {
		t.Fatalf("ordinary figures %+v", g)
	}
	c := CurrencySummary{Currency: "usd", MRR: MaxReportAmount}
	c.FillSummary()
	if !c.Clamped || c.ARR != MaxReportAmount {
		t.Fatalf("summary %+v", c)
	}
}
