package billing

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func day(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }

func tptr(t time.Time) *time.Time { return &t }

// monthly80 is an active monthly subscription billing 80.00.
func monthly80() Subscription {
	return Subscription{Status: StatusActive, Currency: "usd", Livemode: true,
		Items: []Item{{PriceID: "price_A", Quantity: 1, UnitAmount: 8000, Interval: IntervalMonth, IntervalCount: 1}}}
}

// Every discount and tax case of metrics.md, at one instant.
func TestMRRDiscountAndTaxCases(t *testing.T) {
	t.Parallel()
	forever := func(d Discount) Discount { d.Duration = "forever"; return d }
	net := func(n, g int64) func(string) (int64, int64, bool) {
		return func(string) (int64, int64, bool) { return n, g, true }
	}
	tests := []struct {
		name string
		sub  func(*Subscription)
		adj  Adjustments
		want int64
	}{
		{name: "NoDiscount", want: 8000},
		{name: "CustomerAmountOff", adj: Adjustments{CustomerDiscounts: []Discount{forever(Discount{AmountOff: 2000, Currency: "usd"})}}, want: 6000},
		{name: "CustomerPercentOff", adj: Adjustments{CustomerDiscounts: []Discount{forever(Discount{PercentOffBP: 2500})}}, want: 6000},
		{name: "CustomerOnceCouponNoMRRChange", adj: Adjustments{CustomerDiscounts: []Discount{{PercentOffBP: 5000, Duration: "once"}}}, want: 8000},
		{name: "CustomerRepeatingInForce", adj: Adjustments{CustomerDiscounts: []Discount{{PercentOffBP: 5000, Duration: "repeating", End: tptr(day(20))}}}, want: 4000},
		{name: "CustomerRepeatingEnded", adj: Adjustments{CustomerDiscounts: []Discount{{PercentOffBP: 5000, Duration: "repeating", End: tptr(day(5))}}}, want: 8000},
		{name: "CustomerOtherCurrencyAmountOff", adj: Adjustments{CustomerDiscounts: []Discount{forever(Discount{AmountOff: 2000, Currency: "eur"})}}, want: 8000},
		{
			name: "SubscriptionDiscountWins",
			sub:  func(s *Subscription) { s.Discounts = []Discount{forever(Discount{PercentOffBP: 1000})} },
			adj:  Adjustments{CustomerDiscounts: []Discount{forever(Discount{PercentOffBP: 5000})}},
			want: 7200,
		},
		{
			name: "SubscriptionDiscountEndedCustomerApplies",
			sub: func(s *Subscription) {
				s.Discounts = []Discount{{PercentOffBP: 1000, Duration: "repeating", End: tptr(day(5))}}
			},
			adj:  Adjustments{CustomerDiscounts: []Discount{forever(Discount{PercentOffBP: 5000})}},
			want: 4000,
		},
		{
			name: "SubscriptionOnceCouponStillTakesPrecedence",
			sub:  func(s *Subscription) { s.Discounts = []Discount{{PercentOffBP: 1000, Duration: "once"}} },
			adj:  Adjustments{CustomerDiscounts: []Discount{forever(Discount{PercentOffBP: 5000})}},
			want: 8000,
		},
		{
			name: "UnresolvedSubscriptionDiscountTakesPrecedenceCountsNothing",
			sub:  func(s *Subscription) { s.Discounts = []Discount{{ID: "di_X"}} },
			adj:  Adjustments{CustomerDiscounts: []Discount{forever(Discount{PercentOffBP: 5000})}},
			want: 8000,
		},
		{
			name: "ResolvedSubscriptionDiscount",
			sub: func(s *Subscription) {
				s.Discounts = Resolve([]Discount{{ID: "di_X", Start: tptr(day(1))}},
					map[string]DiscountResolution{"di_X": {DiscountID: "di_X", PercentOffBP: 2500, Duration: "forever"}})
			},
			want: 6000,
		},
		{name: "InclusiveTaxRate", sub: func(s *Subscription) { s.Items[0].UnitAmount, s.Items[0].InclusiveTaxBP = 11900, 1900 }, want: 10000},
		{
			name: "InclusiveTaxRatesAdd",
			sub:  func(s *Subscription) { s.Items[0].UnitAmount, s.Items[0].InclusiveTaxBP = 12000, 2000 },
			want: 10000,
		},
		{
			name: "InclusiveTaxAndAmountOff",
			sub: func(s *Subscription) {
				s.Items[0].UnitAmount, s.Items[0].InclusiveTaxBP = 11900, 1900
				s.Discounts = []Discount{forever(Discount{AmountOff: 1190, Currency: "usd"})}
			},
			want: 9000,
		},
		{
			name: "AutomaticTaxInclusiveFromInvoice",
			sub: func(s *Subscription) {
				s.AutomaticTax, s.Items[0].UnitAmount, s.Items[0].TaxBehavior = true, 11900, "inclusive"
			},
			adj:  Adjustments{NetOf: net(10000, 11900)},
			want: 10000,
		},
		{
			name: "AutomaticTaxInclusiveNoInvoiceYet",
			sub: func(s *Subscription) {
				s.AutomaticTax, s.Items[0].UnitAmount, s.Items[0].TaxBehavior = true, 11900, "inclusive"
			},
			want: 11900,
		},
		{
			name: "AutomaticTaxExclusivePriceIsNet",
			sub: func(s *Subscription) {
				s.AutomaticTax, s.Items[0].UnitAmount, s.Items[0].TaxBehavior = true, 10000, "exclusive"
			},
			adj:  Adjustments{NetOf: net(8000, 10000)},
			want: 10000,
		},
		{
			name: "InclusiveWithoutAutomaticTaxHasNoTax",
			sub:  func(s *Subscription) { s.Items[0].UnitAmount, s.Items[0].TaxBehavior = 11900, "inclusive" },
			adj:  Adjustments{NetOf: net(10000, 11900)},
			want: 11900,
		},
		{
			name: "MixedItemsTaxOnOneOnly",
			sub: func(s *Subscription) {
				s.Items[0].UnitAmount, s.Items[0].InclusiveTaxBP = 11900, 1900
				s.Items = append(s.Items, Item{PriceID: "price_B", Quantity: 2, UnitAmount: 1000, Interval: IntervalMonth})
			},
			want: 12000,
		},
		{
			name: "CustomerDiscountWithInclusiveTax",
			sub:  func(s *Subscription) { s.Items[0].UnitAmount, s.Items[0].InclusiveTaxBP = 11900, 1900 },
			adj:  Adjustments{CustomerDiscounts: []Discount{forever(Discount{PercentOffBP: 5000})}},
			want: 5000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := monthly80()
			if tt.sub != nil {
				tt.sub(&s)
			}
			if got := MRRAtWith(s, day(10), tt.adj); got != tt.want {
				t.Fatalf("MRR %d, want %d", got, tt.want)
			}
		})
	}
}

// The case: a 20.00 coupon on the customer of an 80.00 monthly
// subscription is billed every month, so MRR is 60.00 from when it was
// added, and back to 80.00 when it is removed; any order of the inputs
// gives the same ledger.
func TestDeriveCustomerLedgerCustomerDiscount(t *testing.T) {
	t.Parallel()
	off := []Discount{{AmountOff: 2000, Currency: "usd", Duration: "forever", Start: tptr(day(10))}}
	h := CustomerHistory{
		Versions: []SubscriptionVersion{
			{SubscriptionRef: "s1", At: day(1), Event: "evt_1", State: monthly80()},
		},
		CustomerDiscounts: []CustomerDiscountVersion{
			{At: day(10), Event: "evt_2", Discounts: off},
			{At: day(20), Event: "evt_3", Discounts: []Discount{}},
		},
	}
	want := []Movement{
		{SubscriptionRef: "s1", Livemode: true, Currency: "usd", At: day(1), Kind: MovementNew, Delta: 8000, Before: 0, After: 8000},
		{SubscriptionRef: "s1", Livemode: true, Currency: "usd", At: day(10), Kind: MovementContraction, Delta: -2000, Before: 8000, After: 6000},
		{SubscriptionRef: "s1", Livemode: true, Currency: "usd", At: day(20), Kind: MovementExpansion, Delta: 2000, Before: 6000, After: 8000},
	}
	got := DeriveCustomerLedger(h)
	if !reflect.DeepEqual(got.Movements, want) {
		t.Fatalf("movements\n%+v\nwant\n%+v", got.Movements, want)
	}
	rng := rand.New(rand.NewPCG(20, 1))
	for range 20 {
		s := CustomerHistory{Versions: h.Versions, CustomerDiscounts: append([]CustomerDiscountVersion(nil), h.CustomerDiscounts...)}
		rng.Shuffle(len(s.CustomerDiscounts), func(i, j int) {
			s.CustomerDiscounts[i], s.CustomerDiscounts[j] = s.CustomerDiscounts[j], s.CustomerDiscounts[i]
		})
		if g := DeriveCustomerLedger(s); !reflect.DeepEqual(g, got) {
			t.Fatalf("shuffled inputs give another ledger:\n%+v", g.Movements)
		}
	}
	// A subscription with its own discount is not touched by the
	// customer's.
	own := monthly80()
	own.Discounts = []Discount{{PercentOffBP: 1000, Duration: "forever"}}
	h.Versions = []SubscriptionVersion{{SubscriptionRef: "s1", At: day(1), Event: "evt_1", State: own}}
	if l := DeriveCustomerLedger(h); len(l.Movements) != 1 || l.Movements[0].After != 7200 {
		t.Fatalf("own discount: %+v", l.Movements)
	}
}

// Under automatic tax an inclusive price counts net of the tax its paid
// invoices showed, from the subscription's start (the first invoice's
// share holds before it was paid), and a changed rate moves MRR from the
// period it applies to.
func TestDeriveCustomerLedgerTaxFacts(t *testing.T) {
	t.Parallel()
	s := monthly80()
	s.AutomaticTax, s.Items[0].UnitAmount, s.Items[0].TaxBehavior = true, 11900, "inclusive"
	h := CustomerHistory{
		Versions: []SubscriptionVersion{{SubscriptionRef: "s1", At: day(1), Event: "evt_1", State: s}},
		TaxFacts: []TaxFact{
			{PriceID: "price_A", At: day(1), Gross: 11900, Net: 10000},
			{PriceID: "price_A", At: day(15), Gross: 11900, Net: 11000},
			{PriceID: "price_other", At: day(2), Gross: 100, Net: 1},
		},
	}
	want := []Movement{
		{SubscriptionRef: "s1", Livemode: true, Currency: "usd", At: day(1), Kind: MovementNew, Delta: 10000, Before: 0, After: 10000},
		{SubscriptionRef: "s1", Livemode: true, Currency: "usd", At: day(15), Kind: MovementExpansion, Delta: 1000, Before: 10000, After: 11000},
	}
	got := DeriveCustomerLedger(h)
	if !reflect.DeepEqual(got.Movements, want) {
		t.Fatalf("movements\n%+v\nwant\n%+v", got.Movements, want)
	}
	h.TaxFacts[0], h.TaxFacts[2] = h.TaxFacts[2], h.TaxFacts[0]
	if g := DeriveCustomerLedger(h); !reflect.DeepEqual(g, got) {
		t.Fatalf("reordered facts give another ledger:\n%+v", g.Movements)
	}
}
