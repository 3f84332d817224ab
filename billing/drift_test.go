package billing

import (
	"reflect"
	"testing"
	"time"
)

func TestCompareSubscriptions(t *testing.T) {
	t.Parallel()
	at := func(day int) *time.Time { x := time.Date(2026, 1, day, 0, 0, 0, 0, time.UTC); return &x }
	base := Subscription{ID: "sub_a", CustomerID: "cus_a", Status: StatusActive, Currency: "eur",
		Items:              []Item{{PriceID: "price_basic", Quantity: 1, UnitAmount: 1000, Interval: IntervalMonth, IntervalCount: 1}},
		CurrentPeriodStart: at(1), CurrentPeriodEnd: at(31)}
	with := func(f func(*Subscription)) Subscription {
		s := base
		s.Items = append([]Item(nil), base.Items...)
		f(&s)
		return s
	}
	tests := []struct {
		name           string
		stored, stripe []Subscription
		want           []Drift
	}{
		{"Same", []Subscription{base}, []Subscription{base}, nil},
		{"SameDespiteHintAndLocation", []Subscription{base},
			[]Subscription{with(func(s *Subscription) {
				s.AccountHint = "acct_1"
				x := s.CurrentPeriodEnd.In(time.FixedZone("x", 3600))
				s.CurrentPeriodEnd = &x
			})}, nil},
		{"Missing", nil, []Subscription{base},
			[]Drift{{Kind: DriftMissing, CustomerID: "cus_a", SubscriptionID: "sub_a", Diffs: []Difference{{"status", "-", "active"}}}}},
		{"Extra", []Subscription{base}, nil,
			[]Drift{{Kind: DriftExtra, CustomerID: "cus_a", SubscriptionID: "sub_a", Diffs: []Difference{{"status", "active", "-"}}}}},
		{"Status", []Subscription{base}, []Subscription{with(func(s *Subscription) { s.Status = StatusCanceled; s.EndedAt = at(5) })},
			[]Drift{{Kind: DriftChanged, CustomerID: "cus_a", SubscriptionID: "sub_a", Diffs: []Difference{
				{"status", "active", "canceled"}, {"ended", "-", "2026-01-05T00:00:00Z"}}}}},
		{"PriceAndQuantity", []Subscription{base}, []Subscription{with(func(s *Subscription) {
			s.Items[0].PriceID, s.Items[0].Quantity = "price_pro", 3
		})},
			[]Drift{{Kind: DriftChanged, CustomerID: "cus_a", SubscriptionID: "sub_a", Diffs: []Difference{
				{"price", "price_basic", "price_pro"}, {"quantity", "1", "3"}}}}},
		{"AmountOnly", []Subscription{base}, []Subscription{with(func(s *Subscription) { s.Items[0].UnitAmount = 1200 })},
			[]Drift{{Kind: DriftChanged, CustomerID: "cus_a", SubscriptionID: "sub_a", Diffs: []Difference{
				{"amount", "price_basic 1000/1month", "price_basic 1200/1month"}}}}},
		{"Period", []Subscription{base}, []Subscription{with(func(s *Subscription) { s.CurrentPeriodEnd = at(28) })},
			[]Drift{{Kind: DriftChanged, CustomerID: "cus_a", SubscriptionID: "sub_a", Diffs: []Difference{
				{"period", "2026-01-01T00:00:00Z..2026-01-31T00:00:00Z", "2026-01-01T00:00:00Z..2026-01-28T00:00:00Z"}}}}},
		{"Discount", []Subscription{base}, []Subscription{with(func(s *Subscription) {
			s.Discounts = []Discount{{PercentOffBP: 2550, Duration: "forever"}}
		})},
			[]Drift{{Kind: DriftChanged, CustomerID: "cus_a", SubscriptionID: "sub_a", Diffs: []Difference{
				{"discounts", "-", "25.50%/forever -..-"}}}}},
		{"OrderedByKindThenID",
			[]Subscription{with(func(s *Subscription) { s.ID = "sub_z" }), with(func(s *Subscription) { s.ID = "sub_c" })},
			[]Subscription{with(func(s *Subscription) { s.ID = "sub_c"; s.Status = StatusPastDue }), with(func(s *Subscription) { s.ID = "sub_b" })},
			[]Drift{
				{Kind: DriftMissing, CustomerID: "cus_a", SubscriptionID: "sub_b", Diffs: []Difference{{"status", "-", "active"}}},
				{Kind: DriftChanged, CustomerID: "cus_a", SubscriptionID: "sub_c", Diffs: []Difference{{"status", "active", "past_due"}}},
				{Kind: DriftExtra, CustomerID: "cus_a", SubscriptionID: "sub_z", Diffs: []Difference{{"status", "active", "-"}}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := CompareSubscriptions(tt.stored, tt.stripe)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("CompareSubscriptions:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
