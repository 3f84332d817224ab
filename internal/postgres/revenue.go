package postgres

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
)

// revenueRows is every change the reports sum, as one row set: the daily
// rollup for whole days before $3 (a date), and the raw movements and
// activity from $4 (that date's midnight UTC) up to $5 (exclusive). The
// raw tail is the current day at most, so a report never reads more than
// one day of raw ledger; the rollup holds one row per (mode, currency, day)
// once compacted. $1 livemode, $2 currency (” for all).
//
// Amounts are numeric throughout (the rollup's columns are, migration
// 0094; movements are cast before they are negated or summed), so no
// stored combination of amounts can make a report fail with "bigint out
// of range"; Go clamps the sums (billing.ClampAmount).
const revenueRows = `
WITH r AS (
    SELECT currency, day::timestamp AT TIME ZONE 'UTC' AS t, mrr_delta, new_minor, expansion_minor,
           contraction_minor, churn_minor, reactivation_minor, paying_delta::numeric, churned_customers::numeric,
           active_delta::numeric
    FROM revenue_daily
    WHERE livemode = $1 AND ($2 = '' OR currency = $2) AND day < $3::date
    UNION ALL
    SELECT currency, effective_at, d,
           CASE WHEN kind = 'new' THEN d ELSE 0 END,
           CASE WHEN kind = 'expansion' THEN d ELSE 0 END,
           CASE WHEN kind = 'contraction' THEN -d ELSE 0 END,
           CASE WHEN kind = 'churn' THEN -d ELSE 0 END,
           CASE WHEN kind = 'reactivation' THEN d ELSE 0 END,
           CASE WHEN kind IN ('new', 'reactivation') THEN 1 WHEN kind = 'churn' THEN -1 ELSE 0 END,
           CASE WHEN kind = 'churn' THEN 1 ELSE 0 END,
           0
    FROM (SELECT currency, effective_at, kind, delta_minor::numeric AS d FROM mrr_movements
          WHERE livemode = $1 AND ($2 = '' OR currency = $2) AND effective_at >= $4 AND effective_at < $5) m
    UNION ALL
    SELECT currency, effective_at, 0, 0, 0, 0, 0, 0, 0, 0, delta
    FROM subscription_activity
    WHERE livemode = $1 AND ($2 = '' OR currency = $2) AND effective_at >= $4 AND effective_at < $5
)`

// numericSum scans a numeric (or integer) column of any size: the reports'
// sums, which a ledger of absurd amounts can push past int64.
type numericSum struct{ v big.Int }

// Scan implements sql.Scanner.
func (n *numericSum) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case nil:
		n.v.SetInt64(0)
		return nil
	case int64:
		n.v.SetInt64(v)
		return nil
	case []byte:
		s = string(v)
	case string:
		s = v
	default:
		return fmt.Errorf("scan numeric sum: unexpected %T", src)
	}
	if _, ok := n.v.SetString(s, 10); ok {
		return nil
	}
	// A sum of integers has no fraction, but a numeric may print one.
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return fmt.Errorf("scan numeric sum: %q is not a number", s)
	}
	n.v.Quo(r.Num(), r.Denom())
	return nil
}

// clamp returns n limited to the report range, and records in *flag
// whether it had to be limited.
func clamp(n *big.Int, flag *bool) int64 {
	v, c := billing.ClampAmount(n)
	*flag = *flag || c
	return v
}

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
	s.catchUpFacts(ctx) // the facts of events already committed
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
	if rq.GroupBy != "" {
		return s.segmentRevenue(ctx, rq, rollEnd, rawEnd)
	}
	err := s.db.SelectContext(ctx, &rows, q, rq.Livemode, rq.Currency, rollEnd.Format(time.DateOnly), rollEnd, rawEnd,
		rq.From, string(rq.Bucket))
	if err != nil {
		return nil, fmt.Errorf("revenue: %w", translate(err))
	}
	out := assembleRevenue(rq, rows)
	if err := s.addTrials(ctx, rq, rollEnd, rawEnd, out); err != nil {
		return nil, err
	}
	return out, nil
}

// bucketSums is one group of the revenue query: a bucket of one currency,
// or (Bucket nil) everything before the report's start.
type bucketSums struct {
	Currency     string     `db:"currency"`
	Segment      string     `db:"segment"` // GroupBy reports only
	Bucket       *time.Time `db:"bucket"`
	Delta        numericSum `db:"delta"`
	New          numericSum `db:"new_mrr"`
	Expansion    numericSum `db:"expansion"`
	Contraction  numericSum `db:"contraction"`
	Churn        numericSum `db:"churn"`
	Reactivation numericSum `db:"reactivation"`
	PayingDelta  numericSum `db:"paying_delta"`
	Churned      numericSum `db:"churned"`
	ActiveDelta  numericSum `db:"active_delta"`
	TrialStarts  numericSum `db:"trial_starts"`
	TrialConv    numericSum `db:"trial_conversions"`
}

// assembleRevenue turns grouped sums into consecutive buckets per currency,
// carrying the running MRR, paying customers and active subscriptions.
// Running sums are exact (big.Int); each figure is clamped only as it is
// reported, so one absurd bucket does not wrap the ones after it.
func assembleRevenue(rq billing.RevenueQuery, rows []bucketSums) []billing.PeriodTotals {
	type series struct{ cur, seg string }
	type key struct {
		series
		bucket int64 // unix seconds; baseline for the rows before From
	}
	const baseline = -1 << 62
	m := map[key]*bucketSums{}
	set := map[series]bool{}
	if rq.Currency != "" && rq.GroupBy == "" {
		set[series{rq.Currency, ""}] = true
	}
	for i := range rows {
		r := &rows[i]
		k := key{series{r.Currency, r.Segment}, baseline}
		if r.Bucket != nil {
			k.bucket = r.Bucket.Unix()
		}
		m[k] = r
		set[k.series] = true
	}
	all := make([]series, 0, len(set))
	for c := range set {
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b series) int {
		if a.cur != b.cur {
			return strings.Compare(a.cur, b.cur)
		}
		return strings.Compare(a.seg, b.seg)
	})
	var zero bucketSums
	get := func(k key) *bucketSums {
		if r := m[k]; r != nil {
			return r
		}
		return &zero
	}
	var out []billing.PeriodTotals
	for _, c := range all {
		base := get(key{c, baseline})
		var mrr, paying, active big.Int
		mrr.Set(&base.Delta.v)
		paying.Set(&base.PayingDelta.v)
		active.Set(&base.ActiveDelta.v)
		for s := rq.From; s.Before(rq.To); s = rq.Bucket.Next(s) {
			p := billing.PeriodTotals{Start: s, End: rq.Bucket.Next(s), Currency: c.cur, Segment: c.seg}
			p.MRRStart, p.PayingStart = clamp(&mrr, &p.Clamped), clamp(&paying, &p.Clamped)
			r := get(key{c, s.Unix()})
			mrr.Add(&mrr, &r.Delta.v)
			paying.Add(&paying, &r.PayingDelta.v)
			active.Add(&active, &r.ActiveDelta.v)
			p.MRREnd, p.PayingEnd, p.ActiveSubscriptions = clamp(&mrr, &p.Clamped), clamp(&paying, &p.Clamped), clamp(&active, &p.Clamped)
			p.ChurnedCustomers = clamp(&r.Churned.v, &p.Clamped)
			p.Movements = billing.MovementSums{New: clamp(&r.New.v, &p.Clamped), Expansion: clamp(&r.Expansion.v, &p.Clamped),
				Contraction: clamp(&r.Contraction.v, &p.Clamped), Churn: clamp(&r.Churn.v, &p.Clamped),
				Reactivation: clamp(&r.Reactivation.v, &p.Clamped)}
			p.TrialStarts, p.TrialConversions = clamp(&r.TrialStarts.v, &p.Clamped), clamp(&r.TrialConv.v, &p.Clamped)
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
		Currency     string     `db:"currency"`
		MRR          numericSum `db:"mrr"`
		Paying       numericSum `db:"paying"`
		Active       numericSum `db:"active"`
		New          numericSum `db:"new_mrr"`
		Expansion    numericSum `db:"expansion"`
		Contraction  numericSum `db:"contraction"`
		Churn        numericSum `db:"churn"`
		Reactivation numericSum `db:"reactivation"`
		First        *time.Time `db:"first_at"`
	}
	// $5 is asOf (exclusive: a movement at exactly asOf has not happened
	// yet), $6 the 30-day window's start.
	const q = revenueRows + `
SELECT currency, sum(mrr_delta) AS mrr, sum(paying_delta) AS paying, sum(active_delta) AS active,
       coalesce(sum(new_minor) FILTER (WHERE t >= $6), 0) AS new_mrr,
       coalesce(sum(expansion_minor) FILTER (WHERE t >= $6), 0) AS expansion,
       coalesce(sum(contraction_minor) FILTER (WHERE t >= $6), 0) AS contraction,
       coalesce(sum(churn_minor) FILTER (WHERE t >= $6), 0) AS churn,
       coalesce(sum(reactivation_minor) FILTER (WHERE t >= $6), 0) AS reactivation,
       min(t) AS first_at
FROM r
GROUP BY currency
ORDER BY currency`
	err := s.db.SelectContext(ctx, &rows, q, livemode, "", today.Format(time.DateOnly), today, asOf,
		today.AddDate(0, 0, -30))
	if err != nil {
		return sum, fmt.Errorf("revenue summary: %w", translate(err))
	}
	for i := range rows {
		r := &rows[i]
		c := billing.CurrencySummary{Currency: r.Currency}
		f := &c.Clamped
		c.MRR, c.ActiveSubscriptions, c.PayingCustomers = clamp(&r.MRR.v, f), clamp(&r.Active.v, f), clamp(&r.Paying.v, f)
		c.Movements30d = billing.MovementSums{New: clamp(&r.New.v, f), Expansion: clamp(&r.Expansion.v, f),
			Contraction: clamp(&r.Contraction.v, f), Churn: clamp(&r.Churn.v, f), Reactivation: clamp(&r.Reactivation.v, f)}
		c.FillSummary()
		if r.First != nil {
			c.FirstActivity = r.First.UTC().Format(time.DateOnly)
		}
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
