package billing

import (
	"context"
	"math/big"
	"slices"
	"time"
)

// Usage revenue (metrics.md): metered and tiered prices have no fixed MRR,
// but their paid invoice lines are revenue. It is reported beside MRR and
// never added to it.

// UsageDay is the usage revenue (net of tax, minor units) of the paid
// metered and tiered invoice lines whose billing period ended on Day (the
// period's last instant, UTC), in one currency.
type UsageDay struct {
	Currency string
	Day      time.Time
	Amount   int64
}

// UsageTotals is the usage revenue of one bucket [Start, End) of one
// currency, and the trailing three-month usage MRR at End: the usage
// revenue of periods ending in [End − 3 months, End), ÷ 3, rounded once,
// half-even.
type UsageTotals struct {
	Currency     string
	Start        time.Time
	End          time.Time
	UsageRevenue int64
	UsageMRR     int64
}

// UsageReader is what the revenue report reads for usage revenue.
type UsageReader interface {
	// UsageDays returns the usage revenue per currency and day of periods
	// ending in [from, to), of one mode and currency ("" for all).
	UsageDays(ctx context.Context, livemode bool, currency string, from, to time.Time) ([]UsageDay, error)
}

// UsageLookback is how far before a report's first bucket UsageDays must
// reach for the first bucket's usage MRR.
func UsageLookback(from time.Time) time.Time { return from.AddDate(0, -3, 0) }

// UsageFigures sums days into the buckets of q ([q.From, q.To)), per
// currency (sorted), every bucket present. days must reach back to
// UsageLookback(q.From).
func UsageFigures(days []UsageDay, q RevenueQuery) []UsageTotals {
	var curs []string
	for _, d := range days {
		if !slices.Contains(curs, d.Currency) {
			curs = append(curs, d.Currency)
		}
	}
	slices.Sort(curs)
	var out []UsageTotals
	for _, c := range curs {
		for s := q.From; s.Before(q.To); s = q.Bucket.Next(s) {
			e := q.Bucket.Next(s)
			t := UsageTotals{Currency: c, Start: s, End: e}
			back := e.AddDate(0, -3, 0)
			var trailing int64
			for _, d := range days {
				if d.Currency != c {
					continue
				}
				if !d.Day.Before(s) && d.Day.Before(e) {
					t.UsageRevenue, _ = clampInt64(t.UsageRevenue + d.Amount)
				}
				if !d.Day.Before(back) && d.Day.Before(e) {
					trailing, _ = clampInt64(trailing + d.Amount)
				}
			}
			t.UsageMRR = roundHalfEven(big.NewRat(trailing, 3))
			out = append(out, t)
		}
	}
	return out
}
