package billing

import (
	"testing"
	"time"
)

// FuzzDeriveMovements builds a customer history from fuzz bytes and checks
// the ledger's invariants: each movement's Before + Delta = After, kinds
// match the direction, a customer's first movement in a currency is "new",
// "new" happens at most once, and the last After equals the customer's MRR
// after the last point in time.
func FuzzDeriveMovements(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{9, 9, 9, 0, 0, 0, 200, 17, 3, 255, 128, 64})
	f.Add([]byte("a churn, a coupon and a cancel at period end"))
	statuses := []Status{StatusActive, StatusPastDue, StatusTrialing, StatusCanceled, StatusPaused, StatusUnpaid}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var vs []SubscriptionVersion
		for i := 0; i+3 < len(data) && len(vs) < 40; i += 4 {
			b0, b1, b2, b3 := data[i], data[i+1], data[i+2], data[i+3]
			s := Subscription{Status: statuses[int(b0)%len(statuses)], Livemode: true, Currency: []string{"usd", "eur"}[b3%2],
				Items: []Item{{Quantity: int64(b1%4) + 1, UnitAmount: int64(b2) * 10, Interval: []Interval{IntervalMonth, IntervalYear, IntervalWeek}[b1%3], IntervalCount: 1}}}
			at := base.Add(time.Duration(b3) * 24 * time.Hour)
			if b0&0x40 != 0 {
				end := at.Add(time.Duration(b2%30+1) * 24 * time.Hour)
				s.CancelAtPeriodEnd, s.CurrentPeriodEnd = true, &end
			}
			if b0&0x80 != 0 {
				end := at.Add(time.Duration(b1%20+1) * 24 * time.Hour)
				s.Discounts = []Discount{{PercentOffBP: int64(b2) * 30, Duration: "repeating", End: &end}}
			}
			vs = append(vs, SubscriptionVersion{SubscriptionRef: []string{"a", "b", "c"}[b1%3], At: at, Rank: int(b2 % 3), Event: string(rune('A' + i)), State: s})
		}
		ms := deriveMovements(vs)
		seen := map[string]bool{}
		last := map[string]int64{}
		for _, m := range ms {
			if m.Before+m.Delta != m.After || m.Delta == 0 || m.Before < 0 || m.After < 0 {
				t.Fatalf("inconsistent movement %+v", m)
			}
			ok := false
			switch m.Kind {
			case MovementNew:
				ok = m.Before == 0 && !seen[m.Currency]
			case MovementReactivation:
				ok = m.Before == 0 && seen[m.Currency]
			case MovementChurn:
				ok = m.After == 0 && m.Before > 0
			case MovementExpansion:
				ok = m.Before > 0 && m.After > m.Before
			case MovementContraction:
				ok = m.After > 0 && m.After < m.Before
			}
			if !ok {
				t.Fatalf("movement %+v has the wrong kind", m)
			}
			if last[m.Currency] != m.Before {
				t.Fatalf("movement %+v does not start where the previous one ended (%d)", m, last[m.Currency])
			}
			seen[m.Currency] = true
			last[m.Currency] = m.After
		}
	})
}
