package metricstest

import (
	"time"

	"github.com/billingd/billingd/billing"
)

// CustomerMovements is one customer's ledger, for the in-memory report.
type CustomerMovements struct {
	CustomerRef string
	Movements   []billing.Movement
}

// Periods computes the report for buckets starting at from (inclusive) up
// to to (exclusive) straight from ledgers in memory (billing.DeriveLedger's
// movements): the reference the SQL report (postgres.Store.Revenue) is
// tested against. Only movements of the given mode and currency
// count. Active subscriptions are not known from movements and stay 0.
func Periods(ledgers []CustomerMovements, livemode bool, currency string, bucket billing.Bucket, from, to time.Time) []billing.PeriodTotals {
	var out []billing.PeriodTotals
	for s := bucket.Truncate(from); s.Before(to); s = bucket.Next(s) {
		e := bucket.Next(s)
		p := billing.PeriodTotals{Start: s, End: e, Currency: currency}
		// MRR "at S" is after everything effective at or before S: a bucket
		// owns the movements in [S, E), so the start state excludes them.
		p.MRRStart, p.PayingStart = mrrBefore(ledgers, livemode, currency, s)
		p.MRREnd, p.PayingEnd = mrrBefore(ledgers, livemode, currency, e)
		for _, l := range ledgers {
			for _, m := range l.Movements {
				if m.Livemode != livemode || m.Currency != currency || m.At.Before(s) || !m.At.Before(e) {
					continue
				}
				p.Movements.Add(m)
				if m.Kind == billing.MovementChurn {
					p.ChurnedCustomers++
				}
			}
		}
		out = append(out, p)
	}
	return out
}

// mrrBefore is the MRR and paying customers just before t: the state after
// every movement effective before t.
func mrrBefore(ledgers []CustomerMovements, livemode bool, currency string, t time.Time) (mrr, paying int64) {
	for _, l := range ledgers {
		var last int64
		for _, m := range l.Movements {
			if m.Livemode == livemode && m.Currency == currency && m.At.Before(t) {
				last = m.After
			}
		}
		mrr += last
		if last > 0 {
			paying++
		}
	}
	return mrr, paying
}
