package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// segmentRows is every change the segment, cohort and trial reports sum,
// as revenueRows is for the totals: the monthly rollup
// revenue_segments_monthly for whole months before $7 (a month's first
// day, monthCutoff), the daily rollup revenue_segments_daily for the days
// from $7 up to $4 (a date) and for its rows not yet folded into their
// month, and the raw revenue_facts effective from $5 (that date's
// midnight) up to $6 (exclusive). A trial conversion is filed under its
// trial's start day, which may be before $4: the rollups hold it already,
// so the raw tail only takes facts filed from $4 on. $1 livemode, $2
// dimension, $3 currency (” for all). t is the day (or month) a row is
// filed under.
const segmentRows = `
WITH r AS (
    SELECT currency, segment, month::timestamp AT TIME ZONE 'UTC' AS t, mrr_delta, new_minor, expansion_minor,
           contraction_minor, churn_minor, reactivation_minor, paying_delta, churned_customers, new_customers,
           active_delta, retained_delta, trial_starts, trial_conversions
    FROM revenue_segments_monthly
    WHERE livemode = $1 AND dimension = $2 AND ($3 = '' OR currency = $3) AND month < $7::date
    UNION ALL
    SELECT currency, segment, day::timestamp AT TIME ZONE 'UTC' AS t, mrr_delta, new_minor, expansion_minor,
           contraction_minor, churn_minor, reactivation_minor, paying_delta::numeric, churned_customers::numeric,
           new_customers::numeric, active_delta::numeric, retained_delta, trial_starts::numeric,
           trial_conversions::numeric
    FROM revenue_segments_daily
    WHERE livemode = $1 AND dimension = $2 AND ($3 = '' OR currency = $3) AND day < $4::date AND day >= $7::date
    UNION ALL
    SELECT currency, segment, day::timestamp AT TIME ZONE 'UTC' AS t, mrr_delta, new_minor, expansion_minor,
           contraction_minor, churn_minor, reactivation_minor, paying_delta::numeric, churned_customers::numeric,
           new_customers::numeric, active_delta::numeric, retained_delta, trial_starts::numeric,
           trial_conversions::numeric
    FROM revenue_segments_daily
    WHERE livemode = $1 AND dimension = $2 AND ($3 = '' OR currency = $3) AND day < $4::date AND day < $7::date
      AND NOT folded
    UNION ALL
    SELECT currency, segment, day::timestamp AT TIME ZONE 'UTC', d,
           CASE WHEN kind = 'new' THEN d ELSE 0 END,
           CASE WHEN kind = 'expansion' THEN d ELSE 0 END,
           CASE WHEN kind = 'contraction' THEN -d ELSE 0 END,
           CASE WHEN kind = 'churn' THEN -d ELSE 0 END,
           CASE WHEN kind = 'reactivation' THEN d ELSE 0 END,
           CASE WHEN kind IN ('new', 'reactivation') THEN 1 WHEN kind = 'churn' THEN -1 ELSE 0 END,
           CASE WHEN kind = 'churn' THEN 1 ELSE 0 END,
           CASE WHEN kind = 'new' THEN 1 ELSE 0 END,
           active_delta, retained_delta::numeric, trial_start, trial_conversion
    FROM (SELECT currency, segment, day, kind, delta_minor::numeric AS d, active_delta, retained_delta, trial_start,
                 trial_conversion
          FROM revenue_facts
          WHERE livemode = $1 AND dimension = $2 AND ($3 = '' OR currency = $3)
            AND effective_at >= $5 AND effective_at < $6 AND day >= $4::date) f
)`

// segmentRevenue is Revenue grouped by rq.GroupBy: one series per
// currency and segment, from the segment rollup.
func (s *Store) segmentRevenue(ctx context.Context, rq billing.RevenueQuery, rollEnd, rawEnd time.Time) ([]billing.PeriodTotals, error) {
	if !rq.GroupBy.GroupBy() {
		return nil, fmt.Errorf("revenue: %w: cannot group by %q", billing.ErrInvalid, rq.GroupBy)
	}
	const q = segmentRows + `
SELECT currency, segment,
       CASE WHEN t < $8 THEN NULL ELSE date_trunc($9, t, 'UTC') END AS bucket,
       sum(mrr_delta) AS delta, sum(new_minor) AS new_mrr, sum(expansion_minor) AS expansion,
       sum(contraction_minor) AS contraction, sum(churn_minor) AS churn, sum(reactivation_minor) AS reactivation,
       sum(paying_delta) AS paying_delta, sum(churned_customers) AS churned, sum(active_delta) AS active_delta,
       sum(trial_starts) AS trial_starts, sum(trial_conversions) AS trial_conversions
FROM r
GROUP BY 1, 2, 3`
	var rows []bucketSums
	err := s.db.SelectContext(ctx, &rows, q, rq.Livemode, string(rq.GroupBy), rq.Currency, rollEnd.Format(time.DateOnly),
		rollEnd, rawEnd, segmentCutoff(rq, rollEnd), rq.From, string(rq.Bucket))
	if err != nil {
		return nil, fmt.Errorf("revenue by %s: %w", rq.GroupBy, translate(err))
	}
	return assembleRevenue(rq, rows), nil
}

// addTrials fills the trial counts of a totals report: every trial is
// filed under exactly one plan, so the plan dimension sums to the totals.
// It reads only rollup rows with trials (a partial index, migration 0620)
// and today's trial facts.
func (s *Store) addTrials(ctx context.Context, rq billing.RevenueQuery, rollEnd, rawEnd time.Time, out []billing.PeriodTotals) error {
	const q = `
SELECT currency, date_trunc($7, t, 'UTC') AS bucket, sum(ts) AS trial_starts, sum(tc) AS trial_conversions
FROM (
    SELECT currency, day::timestamp AT TIME ZONE 'UTC' AS t, trial_starts AS ts, trial_conversions AS tc
    FROM revenue_segments_daily
    WHERE livemode = $1 AND dimension = 'plan' AND (trial_starts <> 0 OR trial_conversions <> 0)
      AND ($2 = '' OR currency = $2) AND day < $3::date AND day >= $6::date
    UNION ALL
    SELECT currency, day::timestamp AT TIME ZONE 'UTC', trial_start, trial_conversion
    FROM revenue_facts
    WHERE livemode = $1 AND dimension = 'plan' AND (trial_start <> 0 OR trial_conversion <> 0)
      AND ($2 = '' OR currency = $2) AND effective_at >= $4 AND effective_at < $5 AND day >= $3::date
) r
GROUP BY 1, 2`
	var rows []struct {
		Currency string     `db:"currency"`
		Bucket   time.Time  `db:"bucket"`
		Starts   numericSum `db:"trial_starts"`
		Conv     numericSum `db:"trial_conversions"`
	}
	err := s.db.SelectContext(ctx, &rows, q, rq.Livemode, rq.Currency, rollEnd.Format(time.DateOnly), rollEnd, rawEnd,
		rq.From.Format(time.DateOnly), string(rq.Bucket))
	if err != nil {
		return fmt.Errorf("revenue trials: %w", translate(err))
	}
	type key struct {
		cur string
		at  int64
	}
	idx := make(map[key]int, len(out))
	for i, p := range out {
		idx[key{p.Currency, p.Start.Unix()}] = i
	}
	for _, r := range rows {
		if i, ok := idx[key{r.Currency, r.Bucket.Unix()}]; ok {
			p := &out[i]
			p.TrialStarts, p.TrialConversions = clamp(&r.Starts.v, &p.Clamped), clamp(&r.Conv.v, &p.Clamped)
		}
	}
	return nil
}

// SegmentSummary is Summary grouped by a dimension: the figures at asOf
// per currency and segment, and the movements of the 30 days before it.
func (s *Store) SegmentSummary(ctx context.Context, livemode bool, dim billing.Dimension, asOf time.Time) (billing.Summary, error) {
	sum := billing.Summary{AsOf: asOf.UTC(), Livemode: livemode, GroupBy: dim, Currencies: []billing.CurrencySummary{}}
	if !dim.GroupBy() {
		return sum, fmt.Errorf("revenue summary: %w: cannot group by %q", billing.ErrInvalid, dim)
	}
	s.catchUpFacts(ctx) // the facts of events already committed
	s.maybeCompactRollup(ctx)
	today := billing.BucketDay.Truncate(asOf)
	var rows []struct {
		Currency     string     `db:"currency"`
		Segment      string     `db:"segment"`
		MRR          numericSum `db:"mrr"`
		Paying       numericSum `db:"paying"`
		Active       numericSum `db:"active"`
		New          numericSum `db:"new_mrr"`
		Expansion    numericSum `db:"expansion"`
		Contraction  numericSum `db:"contraction"`
		Churn        numericSum `db:"churn"`
		Reactivation numericSum `db:"reactivation"`
	}
	const q = segmentRows + `
SELECT currency, segment, sum(mrr_delta) AS mrr, sum(paying_delta) AS paying, sum(active_delta) AS active,
       coalesce(sum(new_minor) FILTER (WHERE t >= $8), 0) AS new_mrr,
       coalesce(sum(expansion_minor) FILTER (WHERE t >= $8), 0) AS expansion,
       coalesce(sum(contraction_minor) FILTER (WHERE t >= $8), 0) AS contraction,
       coalesce(sum(churn_minor) FILTER (WHERE t >= $8), 0) AS churn,
       coalesce(sum(reactivation_minor) FILTER (WHERE t >= $8), 0) AS reactivation
FROM r
GROUP BY currency, segment
ORDER BY currency, segment`
	window := today.AddDate(0, 0, -30)
	err := s.db.SelectContext(ctx, &rows, q, livemode, string(dim), "", today.Format(time.DateOnly), today, asOf,
		monthCutoff(window, today), window)
	if err != nil {
		return sum, fmt.Errorf("revenue summary by %s: %w", dim, translate(err))
	}
	for i := range rows {
		r := &rows[i]
		c := billing.CurrencySummary{Currency: r.Currency, Segment: r.Segment}
		f := &c.Clamped
		c.MRR, c.ActiveSubscriptions, c.PayingCustomers = clamp(&r.MRR.v, f), clamp(&r.Active.v, f), clamp(&r.Paying.v, f)
		c.Movements30d = billing.MovementSums{New: clamp(&r.New.v, f), Expansion: clamp(&r.Expansion.v, f),
			Contraction: clamp(&r.Contraction.v, f), Churn: clamp(&r.Churn.v, f), Reactivation: clamp(&r.Reactivation.v, f)}
		if c.MRR == 0 && c.PayingCustomers == 0 && c.ActiveSubscriptions == 0 && c.Movements30d == (billing.MovementSums{}) {
			continue // a segment that has had nothing for 30 days
		}
		c.FillSummary()
		sum.Currencies = append(sum.Currencies, c)
	}
	return sum, nil
}

// Cohorts computes the cohort report: per currency, the customers who first
// paid in each month from q.From to q.To, and their MRR, retained MRR and
// paying customers at the end of each month since, up to q.AsOf.
func (s *Store) Cohorts(ctx context.Context, cq billing.CohortQuery) ([]billing.CohortTotals, error) {
	s.catchUpFacts(ctx) // the facts of events already committed
	s.maybeCompactRollup(ctx)
	today := billing.BucketDay.Truncate(cq.AsOf)
	const q = segmentRows + `
SELECT currency, segment, date_trunc('month', t, 'UTC') AS month,
       sum(mrr_delta) AS delta, sum(new_minor) AS new_mrr, sum(paying_delta) AS paying_delta,
       sum(new_customers) AS new_customers, sum(retained_delta) AS retained
FROM r
WHERE segment >= $8 AND segment <= $9
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3`
	var rows []struct {
		Currency string     `db:"currency"`
		Segment  string     `db:"segment"`
		Month    time.Time  `db:"month"`
		Delta    numericSum `db:"delta"`
		New      numericSum `db:"new_mrr"`
		Paying   numericSum `db:"paying_delta"`
		NewCust  numericSum `db:"new_customers"`
		Retained numericSum `db:"retained"`
	}
	err := s.db.SelectContext(ctx, &rows, q, cq.Livemode, string(billing.DimensionCohort), cq.Currency,
		today.Format(time.DateOnly), today, cq.AsOf, monthCutoff(today, today), billing.CohortSegment(cq.From),
		billing.CohortSegment(cq.To))
	if err != nil {
		return nil, fmt.Errorf("cohorts: %w", translate(err))
	}
	var out []billing.CohortTotals
	for i := range rows {
		r := &rows[i]
		n := len(out)
		if n == 0 || out[n-1].Currency != r.Currency || out[n-1].Cohort != r.Segment {
			out = append(out, billing.CohortTotals{Currency: r.Currency, Cohort: r.Segment})
			n++
		}
		c := &out[n-1]
		var clamped bool
		c.Months = append(c.Months, billing.CohortMonthSums{Month: r.Month, MRRDelta: clamp(&r.Delta.v, &clamped),
			NewMRR: clamp(&r.New.v, &clamped), PayingDelta: clamp(&r.Paying.v, &clamped),
			NewCustomers: clamp(&r.NewCust.v, &clamped), RetainedDelta: clamp(&r.Retained.v, &clamped)})
		c.Clamped = c.Clamped || clamped
	}
	return out, nil
}

// compactSegmentRollup folds revenue_segments_daily as compaction folds
// revenue_daily (CompactRevenueRollup holds the lock and has just run the
// monthly fold), returning the rows removed. Rows already added to their
// month (folded) and rows not yet added are summed apart, so the monthly
// fold counts each change once. The rollup is far larger than
// revenue_daily (a row per segment and day), so only keys with a row
// appended since this store's last compaction (ID above after) are looked
// at, through the primary key, instead of grouping the whole table before
// every report. A row whose ID was taken before that compaction but
// committed after it, or committed between the fold and this statement
// (compacted unfolded, folded by the next fold), is left for the next
// full pass (the first of each process): reports sum every row, so an
// uncompacted row costs a little speed, never a wrong figure.
func compactSegmentRollup(ctx context.Context, tx *sqlx.Tx, after int64) (removed, maxID int64, err error) {
	const q = `
WITH recent AS (
    SELECT DISTINCT livemode, currency, dimension, segment, day, folded FROM revenue_segments_daily WHERE $1 > 0 AND id > $1
), dup AS (
    SELECT r.* FROM recent r
    WHERE (SELECT count(*) FROM revenue_segments_daily x
           WHERE x.livemode = r.livemode AND x.dimension = r.dimension AND x.day = r.day
             AND x.currency = r.currency AND x.segment = r.segment AND x.folded = r.folded) > 1
    UNION ALL
    -- the first pass of a process: the whole table
    SELECT livemode, currency, dimension, segment, day, folded FROM revenue_segments_daily WHERE $1 = 0
    GROUP BY livemode, currency, dimension, segment, day, folded HAVING count(*) > 1
), gone AS (
    DELETE FROM revenue_segments_daily r USING dup
    WHERE r.livemode = dup.livemode AND r.currency = dup.currency AND r.dimension = dup.dimension
      AND r.segment = dup.segment AND r.day = dup.day AND r.folded = dup.folded
    RETURNING r.*
), summed AS (
    INSERT INTO revenue_segments_daily (livemode, currency, dimension, segment, day, folded, mrr_delta, new_minor,
        expansion_minor, contraction_minor, churn_minor, reactivation_minor, paying_delta, churned_customers,
        new_customers, active_delta, retained_delta, trial_starts, trial_conversions)
    SELECT livemode, currency, dimension, segment, day, folded, m, n, e, c, ch, r, p, cc, nc, a, rt, ts, tc FROM (
        SELECT livemode, currency, dimension, segment, day, folded, sum(mrr_delta) AS m, sum(new_minor) AS n,
               sum(expansion_minor) AS e, sum(contraction_minor) AS c, sum(churn_minor) AS ch,
               sum(reactivation_minor) AS r, sum(paying_delta) AS p, sum(churned_customers) AS cc,
               sum(new_customers) AS nc, sum(active_delta) AS a, sum(retained_delta) AS rt, sum(trial_starts) AS ts,
               sum(trial_conversions) AS tc
        FROM gone
        GROUP BY livemode, currency, dimension, segment, day, folded) g
    WHERE ROW(g.m, g.n, g.e, g.c, g.ch, g.r, g.p, g.cc, g.nc, g.a, g.rt, g.ts, g.tc) <> ROW(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    RETURNING id
)
SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM summed) AS removed,
       greatest((SELECT max(id) FROM revenue_segments_daily WHERE id > $1), (SELECT max(id) FROM summed), $1) AS max_id`
	var res struct {
		Removed int64 `db:"removed"`
		MaxID   int64 `db:"max_id"`
	}
	if err := tx.GetContext(ctx, &res, q, after); err != nil {
		return 0, 0, fmt.Errorf("compact segment rollup: %w", translate(err))
	}
	return res.Removed, res.MaxID, nil
}

// qRebuildSegmentRollup recomputes revenue_segments_daily from
// revenue_facts in one statement (see RebuildRevenueRollup).
const qRebuildSegmentRollup = `
WITH gone AS (DELETE FROM revenue_segments_daily)
INSERT INTO revenue_segments_daily (livemode, currency, dimension, segment, day, mrr_delta, new_minor,
    expansion_minor, contraction_minor, churn_minor, reactivation_minor, paying_delta, churned_customers,
    new_customers, active_delta, retained_delta, trial_starts, trial_conversions)
SELECT livemode, currency, dimension, segment, day, sum(d),
       sum(CASE WHEN kind = 'new' THEN d ELSE 0 END),
       sum(CASE WHEN kind = 'expansion' THEN d ELSE 0 END),
       sum(CASE WHEN kind = 'contraction' THEN -d ELSE 0 END),
       sum(CASE WHEN kind = 'churn' THEN -d ELSE 0 END),
       sum(CASE WHEN kind = 'reactivation' THEN d ELSE 0 END),
       sum(CASE WHEN kind IN ('new', 'reactivation') THEN 1 WHEN kind = 'churn' THEN -1 ELSE 0 END),
       sum(CASE WHEN kind = 'churn' THEN 1 ELSE 0 END),
       sum(CASE WHEN kind = 'new' THEN 1 ELSE 0 END),
       sum(active_delta), sum(retained_delta::numeric), sum(trial_start), sum(trial_conversion)
FROM (SELECT livemode, currency, dimension, segment, day, kind, delta_minor::numeric AS d, active_delta,
             retained_delta, trial_start, trial_conversion FROM revenue_facts) f
GROUP BY livemode, currency, dimension, segment, day`
