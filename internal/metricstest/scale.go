package metricstest

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/internal/postgres"
)

// SeedScale writes a synthetic ledger straight into mrr_movements and
// subscription_activity with one SQL statement each (generate_series), for
// the scale benchmark: subs subscriptions (one customer each) over the
// `months` months before end, in usd (60%), eur (25%), gbp (10%) and jpy
// (5%). Each starts in a random month; its seat count (1–3) is redrawn
// every quarter (upgrades and downgrades); about 40% churn after 3–26
// months and half of those come back 2–11 months later (reactivation).
// Movements land on a day and second spread through the month. It returns
// the number of movement rows. The daily rollup is rebuilt from them.
func SeedScale(ctx context.Context, st *postgres.Store, subs, months int, end time.Time) (int64, error) {
	start := time.Date(end.Year(), end.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -months, 0)
	const q = `
WITH s AS (
    SELECT g AS id,
           gen_random_uuid() AS ref,
           CASE WHEN g % 20 < 12 THEN 'usd' WHEN g % 20 < 17 THEN 'eur' WHEN g % 20 < 19 THEN 'gbp' ELSE 'jpy' END AS currency,
           (1 + (hashint4(g) & 63)) * CASE WHEN g % 20 = 19 THEN 100 ELSE 500 END AS base,
           (hashint4(g * 7) & 2147483647) % $2 AS start_m,
           CASE WHEN (hashint4(g * 11) & 2147483647) % 10 < 4 THEN 3 + (hashint4(g * 13) & 2147483647) % 24 END AS churn_after,
           CASE WHEN (hashint4(g * 17) & 2147483647) % 2 = 0 THEN 2 + (hashint4(g * 19) & 2147483647) % 10 END AS back_after
    FROM generate_series(1, $1) g
), lv AS (
    SELECT s.id, s.ref, s.currency, m,
           CASE
               WHEN m < s.start_m THEN 0
               WHEN s.churn_after IS NOT NULL AND m >= s.start_m + s.churn_after
                    AND (s.back_after IS NULL OR m < s.start_m + s.churn_after + s.back_after) THEN 0
               ELSE s.base * (1 + (hashint4(s.id * 31 + m / 3) & 2147483647) % 3)
           END AS mrr
    FROM s, generate_series(0, $2 - 1) m
), d AS (
    SELECT id, ref, currency, m, mrr,
           coalesce(lag(mrr) OVER w, 0) AS before,
           coalesce(bool_or(mrr > 0) OVER (PARTITION BY id ORDER BY m ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false) AS paid_before
    FROM lv
    WINDOW w AS (PARTITION BY id ORDER BY m)
), mv AS (
    INSERT INTO mrr_movements (customer_ref, subscription_ref, livemode, currency, effective_at, kind,
                               delta_minor, customer_mrr_before, customer_mrr_after)
    SELECT ref, ref, true, currency,
           $3::timestamptz + make_interval(months => m) + make_interval(days => id % 28, secs => id % 86400),
           CASE WHEN before = 0 AND NOT paid_before THEN 'new'
                WHEN before = 0 THEN 'reactivation'
                WHEN mrr = 0 THEN 'churn'
                WHEN mrr > before THEN 'expansion'
                ELSE 'contraction' END,
           mrr - before, before, mrr
    FROM d WHERE mrr <> before
    RETURNING kind, subscription_ref, currency, effective_at
), act AS (
    INSERT INTO subscription_activity (customer_ref, subscription_ref, livemode, currency, effective_at, delta)
    SELECT subscription_ref, subscription_ref, true, currency, effective_at, CASE WHEN kind = 'churn' THEN -1 ELSE 1 END
    FROM mv WHERE kind IN ('new', 'reactivation', 'churn')
)
SELECT count(*) FROM mv`
	var n int64
	if err := st.DB().GetContext(ctx, &n, q, subs, months, start); err != nil {
		return 0, fmt.Errorf("seed scale ledger: %w", err)
	}
	if err := st.RebuildRevenueRollup(ctx); err != nil {
		return n, err
	}
	// What autovacuum would do soon after a bulk load: statistics and the
	// visibility map (index-only scans).
	for _, t := range []string{"mrr_movements", "subscription_activity", "revenue_daily"} {
		if _, err := st.DB().ExecContext(ctx, `VACUUM ANALYZE `+t); err != nil {
			return n, fmt.Errorf("vacuum %s: %w", t, err)
		}
	}
	return n, nil
}
