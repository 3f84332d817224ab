package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/billingd/billingd/billing"
)

// revenueRows is every change the reports sum, as one row set: the daily
// rollup for whole days before $3 (a date), and the raw movements and
// activity from $4 (that date's midnight UTC) up to $5 (exclusive). The
// raw tail is the current day at most, so a report never reads more than
// one day of raw ledger; the rollup holds one row per (mode, currency, day)
// once compacted. $1 livemode, $2 currency (” for all).
const revenueRows = `
WITH r AS (
    SELECT currency, day::timestamp AT TIME ZONE 'UTC' AS t, mrr_delta, new_minor, expansion_minor,
           contraction_minor, churn_minor, reactivation_minor, paying_delta, churned_customers, active_delta
    FROM revenue_daily
    WHERE livemode = $1 AND ($2 = '' OR currency = $2) AND day < $3::date
    UNION ALL
    SELECT currency, effective_at, delta_minor,
           CASE WHEN kind = 'new' THEN delta_minor ELSE 0 END,
           CASE WHEN kind = 'expansion' THEN delta_minor ELSE 0 END,
           CASE WHEN kind = 'contraction' THEN -delta_minor ELSE 0 END,
           CASE WHEN kind = 'churn' THEN -delta_minor ELSE 0 END,
           CASE WHEN kind = 'reactivation' THEN delta_minor ELSE 0 END,
           CASE WHEN kind IN ('new', 'reactivation') THEN 1 WHEN kind = 'churn' THEN -1 ELSE 0 END,
           CASE WHEN kind = 'churn' THEN 1 ELSE 0 END,
           0
    FROM mrr_movements
    WHERE livemode = $1 AND ($2 = '' OR currency = $2) AND effective_at >= $4 AND effective_at < $5
    UNION ALL
    SELECT currency, effective_at, 0, 0, 0, 0, 0, 0, 0, 0, delta
    FROM subscription_activity
    WHERE livemode = $1 AND ($2 = '' OR currency = $2) AND effective_at >= $4 AND effective_at < $5
)`

// Revenue computes the revenue report. MRR, paying customers and active
// subscriptions at a time are running sums of deltas, so one grouped pass
// gives every bucket: everything before From collapses into one baseline
// group, and each bucket is a group of its own. Reading the daily rollup
// (revenue_daily), the cost grows with days × currencies in the ledger's
// lifetime, not with its number of movements.
func (s *Store) Revenue(ctx context.Context, rq billing.RevenueQuery) ([]billing.PeriodTotals, error) {
	if !rq.Bucket.Valid() || !rq.From.Before(rq.To) {
		return nil, fmt.Errorf("revenue: %w: bad bucket or range", billing.ErrInvalid)
	}
	s.maybeCompactRollup(ctx)
	rawEnd, rollEnd := rq.To, rq.To
	if !rq.AsOf.IsZero() {
		// Movements after AsOf (scheduled ends) have not happened yet; the
		// rollup cannot split a day, so today comes from the raw ledger.
		rawEnd = minTime(rq.To, rq.AsOf)
		rollEnd = minTime(rq.To, billing.BucketDay.Truncate(rq.AsOf))
	}
	const q = revenueRows + `
SELECT currency,
       CASE WHEN t < $6 THEN NULL ELSE date_trunc($7, t, 'UTC') END AS bucket,
       sum(mrr_delta) AS delta, sum(new_minor) AS new_mrr, sum(expansion_minor) AS expansion,
       sum(contraction_minor) AS contraction, sum(churn_minor) AS churn, sum(reactivation_minor) AS reactivation,
       sum(paying_delta) AS paying_delta, sum(churned_customers) AS churned, sum(active_delta) AS active_delta
FROM r
GROUP BY 1, 2`
	var rows []bucketSums
	err := s.db.SelectContext(ctx, &rows, q, rq.Livemode, rq.Currency, rollEnd.Format(time.DateOnly), rollEnd, rawEnd,
		rq.From, string(rq.Bucket))
	if err != nil {
		return nil, fmt.Errorf("revenue: %w", translate(err))
	}
	return assembleRevenue(rq, rows), nil
}

// bucketSums is one group of the revenue query: a bucket of one currency,
// or (Bucket nil) everything before the report's start.
type bucketSums struct {
	Currency     string     `db:"currency"`
	Bucket       *time.Time `db:"bucket"`
	Delta        int64      `db:"delta"`
	New          int64      `db:"new_mrr"`
	Expansion    int64      `db:"expansion"`
	Contraction  int64      `db:"contraction"`
	Churn        int64      `db:"churn"`
	Reactivation int64      `db:"reactivation"`
	PayingDelta  int64      `db:"paying_delta"`
	Churned      int64      `db:"churned"`
	ActiveDelta  int64      `db:"active_delta"`
}

// assembleRevenue turns grouped sums into consecutive buckets per currency,
// carrying the running MRR, paying customers and active subscriptions.
func assembleRevenue(rq billing.RevenueQuery, rows []bucketSums) []billing.PeriodTotals {
	type key struct {
		cur    string
		bucket int64 // unix seconds; baseline for the rows before From
	}
	const baseline = -1 << 62
	m := map[key]bucketSums{}
	curSet := map[string]bool{}
	if rq.Currency != "" {
		curSet[rq.Currency] = true
	}
	for _, r := range rows {
		k := key{r.Currency, baseline}
		if r.Bucket != nil {
			k.bucket = r.Bucket.Unix()
		}
		m[k] = r
		curSet[r.Currency] = true
	}
	curs := make([]string, 0, len(curSet))
	for c := range curSet {
		curs = append(curs, c)
	}
	slices.Sort(curs)
	var out []billing.PeriodTotals
	for _, c := range curs {
		base := m[key{c, baseline}]
		mrr, paying, active := base.Delta, base.PayingDelta, base.ActiveDelta
		for s := rq.From; s.Before(rq.To); s = rq.Bucket.Next(s) {
			p := billing.PeriodTotals{Start: s, End: rq.Bucket.Next(s), Currency: c, MRRStart: mrr, PayingStart: paying}
			r := m[key{c, s.Unix()}]
			mrr += r.Delta
			paying += r.PayingDelta
			active += r.ActiveDelta
			p.MRREnd, p.PayingEnd, p.ActiveSubscriptions = mrr, paying, active
			p.ChurnedCustomers = r.Churned
			p.Movements = billing.MovementSums{New: r.New, Expansion: r.Expansion, Contraction: r.Contraction, Churn: r.Churn, Reactivation: r.Reactivation}
			out = append(out, p)
		}
	}
	return out
}

// Summary computes the figures at asOf per currency, and the movements of
// the 30 days before it (from midnight UTC 30 days before asOf's day).
func (s *Store) Summary(ctx context.Context, livemode bool, asOf time.Time) (billing.Summary, error) {
	sum := billing.Summary{AsOf: asOf.UTC(), Livemode: livemode, Currencies: []billing.CurrencySummary{}}
	s.maybeCompactRollup(ctx)
	today := billing.BucketDay.Truncate(asOf)
	var rows []struct {
		Currency     string `db:"currency"`
		MRR          int64  `db:"mrr"`
		Paying       int64  `db:"paying"`
		Active       int64  `db:"active"`
		New          int64  `db:"new_mrr"`
		Expansion    int64  `db:"expansion"`
		Contraction  int64  `db:"contraction"`
		Churn        int64  `db:"churn"`
		Reactivation int64  `db:"reactivation"`
	}
	// $5 is asOf (exclusive: a movement at exactly asOf has not happened
	// yet), $6 the 30-day window's start.
	const q = revenueRows + `
SELECT currency, sum(mrr_delta) AS mrr, sum(paying_delta) AS paying, sum(active_delta) AS active,
       coalesce(sum(new_minor) FILTER (WHERE t >= $6), 0) AS new_mrr,
       coalesce(sum(expansion_minor) FILTER (WHERE t >= $6), 0) AS expansion,
       coalesce(sum(contraction_minor) FILTER (WHERE t >= $6), 0) AS contraction,
       coalesce(sum(churn_minor) FILTER (WHERE t >= $6), 0) AS churn,
       coalesce(sum(reactivation_minor) FILTER (WHERE t >= $6), 0) AS reactivation
FROM r
GROUP BY currency
ORDER BY currency`
	err := s.db.SelectContext(ctx, &rows, q, livemode, "", today.Format(time.DateOnly), today, asOf,
		today.AddDate(0, 0, -30))
	if err != nil {
		return sum, fmt.Errorf("revenue summary: %w", translate(err))
	}
	for _, r := range rows {
		c := billing.CurrencySummary{Currency: r.Currency, MRR: r.MRR, ActiveSubscriptions: r.Active, PayingCustomers: r.Paying,
			Movements30d: billing.MovementSums{New: r.New, Expansion: r.Expansion, Contraction: r.Contraction, Churn: r.Churn, Reactivation: r.Reactivation}}
		c.FillSummary()
		sum.Currencies = append(sum.Currencies, c)
	}
	return sum, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
