package metricstest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/metricstest"
)

func tp(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func monthly(amount, qty int64) billing.Item {
	return billing.Item{PriceID: "price_m", Quantity: qty, UnitAmount: amount, Interval: billing.IntervalMonth, IntervalCount: 1}
}

func act(items ...billing.Item) billing.Subscription {
	return billing.Subscription{Status: billing.StatusActive, Livemode: true, Items: items}
}

func st(status billing.Status, items ...billing.Item) billing.Subscription {
	return billing.Subscription{Status: status, Livemode: true, Items: items}
}

// ver builds one version of subscription ref at time at.
func ver(ref, at string, rank int, s billing.Subscription) billing.SubscriptionVersion {
	if s.Currency == "" {
		s.Currency = "usd"
	}
	return billing.SubscriptionVersion{SubscriptionRef: ref, At: *tp(at), Rank: rank, Event: "evt_" + ref + at, State: s}
}

// workedExample is metrics.md's example: A monthly 20.00 from Jan 3, two
// seats from Feb 10, cancelled to end Apr 3; B yearly 240.00 from Jan 20.
func workedExample() map[string][]billing.SubscriptionVersion {
	a := act(monthly(2000, 1))
	a2 := act(monthly(2000, 2))
	a3 := a2
	a3.CancelAtPeriodEnd = true
	a3.CurrentPeriodEnd = tp("2026-04-03T09:00:00Z")
	return map[string][]billing.SubscriptionVersion{
		"A": {
			ver("subA", "2026-01-03T09:00:00Z", 0, a),
			ver("subA", "2026-02-10T12:00:00Z", 0, a2),
			ver("subA", "2026-03-15T08:00:00Z", 0, a3),
			ver("subA", "2026-04-03T09:00:01Z", 0, st(billing.StatusCanceled, monthly(2000, 2))),
		},
		"B": {ver("subB", "2026-01-20T15:00:00Z", 0, act(billing.Item{Quantity: 1, UnitAmount: 24000, Interval: billing.IntervalYear, IntervalCount: 1}))},
	}
}

// TestWorkedExample: the in-memory reference over billing's derivation
// gives metrics.md's figures for its worked example, month by month.
func TestWorkedExample(t *testing.T) {
	t.Parallel()
	var ledgers []metricstest.CustomerMovements
	for _, c := range []string{"A", "B"} {
		ledgers = append(ledgers, metricstest.CustomerMovements{CustomerRef: c, Movements: billing.DeriveLedger(workedExample()[c]).Movements})
	}
	from := *tp("2026-01-01T00:00:00Z")
	to := *tp("2026-05-01T00:00:00Z")
	periods := metricstest.Periods(ledgers, true, "usd", billing.BucketMonth, from, to)
	if len(periods) != 4 {
		t.Fatalf("got %d periods, want 4", len(periods))
	}
	f := func(p billing.PeriodTotals) billing.PeriodFigures { return p.Figures(billing.BucketMonth) }
	tests := []struct {
		name  string
		month int
		check func(billing.PeriodFigures) string
	}{
		{"JanMRRAndNew", 0, func(p billing.PeriodFigures) string {
			if p.MRREnd != 4000 || p.Movements.New != 4000 || p.NetNew != 4000 || p.PayingEnd != 2 || p.ARR != 48000 {
				return fmt.Sprintf("%+v", p)
			}
			if p.CustomerChurnRate != nil || p.GrossMRRChurnRate != nil {
				return "rates with zero denominators must be nil"
			}
			return ""
		}},
		{"FebExpansion", 1, func(p billing.PeriodFigures) string {
			if p.MRREnd != 6000 || p.Movements.Expansion != 2000 || p.NetNew != 2000 || *p.ARPA != 3000 {
				return fmt.Sprintf("%+v", p)
			}
			if *p.NetMRRChurnRate != -0.5 || *p.NetRevenueRetention != 1.5 {
				return fmt.Sprintf("net churn %v nrr %v", *p.NetMRRChurnRate, *p.NetRevenueRetention)
			}
			return ""
		}},
		{"MarUnchangedThoughCancelScheduled", 2, func(p billing.PeriodFigures) string {
			if p.MRREnd != 6000 || p.Movements != (billing.MovementSums{}) {
				return fmt.Sprintf("%+v", p)
			}
			return ""
		}},
		{"AprChurn", 3, func(p billing.PeriodFigures) string {
			if p.MRREnd != 2000 || p.Movements.Churn != 4000 || p.NetNew != -4000 || p.ChurnedCustomers != 1 {
				return fmt.Sprintf("%+v", p)
			}
			if p.CustomerChurnRate == nil || *p.CustomerChurnRate != 0.5 {
				return fmt.Sprintf("customer churn rate %v, want 0.5", p.CustomerChurnRate)
			}
			if *p.GrossMRRChurnRate != 4000.0/6000.0 && *p.GrossMRRChurnRate != 0.666667 {
				return fmt.Sprintf("gross MRR churn %v", *p.GrossMRRChurnRate)
			}
			if p.LTV == nil || *p.LTV != 4000 { // ARPA 2000 ÷ 0.5
				return fmt.Sprintf("LTV %v", p.LTV)
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if msg := tc.check(f(periods[tc.month])); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}
