package api

import (
	"context"
	"slices"
	"time"

	"github.com/billingd/billingd/billing"
)

// addUsage puts the usage revenue and trailing usage MRR of each bucket
// beside its figures, when the revenue store reads usage
// (billing.UsageReader). A currency with usage but no MRR gets its buckets
// too, their MRR figures zero.
func (s *Server) addUsage(ctx context.Context, out *revenueJSON, q billing.RevenueQuery) error {
	ur, ok := s.Revenue.(billing.UsageReader)
	if !ok {
		return nil
	}
	days, err := ur.UsageDays(ctx, q.Livemode, q.Currency, billing.UsageLookback(q.From), q.To)
	if err != nil {
		return err
	}
	byKey := map[string]billing.UsageTotals{}
	for _, u := range billing.UsageFigures(days, q) {
		byKey[u.Currency+" "+u.Start.Format(time.DateOnly)] = u
		if !slices.ContainsFunc(out.Currencies, func(c currencyJSON) bool { return c.Currency == u.Currency }) {
			c := currencyJSON{Currency: u.Currency, Exponent: billing.MinorUnitExponent(u.Currency),
				Decimals: billing.DisplayDecimals(u.Currency), Periods: []periodJSON{}}
			for st := q.From; st.Before(q.To); st = q.Bucket.Next(st) {
				c.Periods = append(c.Periods, toPeriodJSON(billing.PeriodTotals{Start: st, End: q.Bucket.Next(st), Currency: u.Currency}, q.Bucket))
			}
			out.Currencies = append(out.Currencies, c)
		}
	}
	slices.SortStableFunc(out.Currencies, func(a, b currencyJSON) int {
		switch {
		case a.Currency < b.Currency:
			return -1
		case a.Currency > b.Currency:
			return 1
		}
		return 0
	})
	for i := range out.Currencies {
		c := &out.Currencies[i]
		for j := range c.Periods {
			p := &c.Periods[j]
			var rev, mrr int64
			if u, ok := byKey[c.Currency+" "+p.Start]; ok {
				rev, mrr = u.UsageRevenue, u.UsageMRR
			}
			p.UsageRevenue, p.UsageMRR = &rev, &mrr
		}
	}
	return nil
}
