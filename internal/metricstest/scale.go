package metricstest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/billingd/billingd/internal/postgres"
)

// ScalePlans is how many plans SeedScale spreads subscriptions over:
// price_bench_0 … price_bench_7 (6 monthly, 2 yearly) of three products.
const ScalePlans = 8

// SeedProgress, when set, is told how long each step of SeedScale took
// (the benchmark prints them).
var SeedProgress func(step string, took time.Duration)

// SeedScale writes a synthetic revenue history for the scale benchmarks,
// set-based (generate_series, a handful of INSERT … SELECT statements) and
// deterministic (the same arguments give the same rows), straight into the
// tables the event path and `metrics rebuild` write and the reports read:
// subs subscriptions (one customer each, reference md5 of its number) over
// the `months` months before end's month, in usd (60%), eur (25%), gbp
// (10%) and jpy (5%), each on one of ScalePlans plans. Each starts in a
// month drawn from its number; its seat count (1–3) is redrawn every
// quarter (upgrades and downgrades); about 40% churn after 3–26 months and
// half of those come back 2–11 months later (reactivation). Movements land
// on a day and second spread through the month.
//
// It writes what a derivation of the same history writes
// (TestSeedScaleMatchesDerivation compares every report with those after
// `metrics rebuild`): a subscription_versions row per change (the state
// after it), the movements (mrr_movements) and activity, the daily totals
// (revenue_daily, through the ledger view), the segment and cohort rollup
// summed per day as the facts would sum (revenue_segments_daily) and its
// months. revenue_facts stays empty: reports read facts only for the
// current day, and a million customers' facts (four per movement) would
// triple the seed. It returns the number of movements.
func SeedScale(ctx context.Context, st *postgres.Store, subs, months int, end time.Time) (int64, error) {
	start := time.Date(end.Year(), end.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -months, 0)
	conn, err := st.DB().Conn(ctx) // the work table lives in one session
	if err != nil {
		return 0, fmt.Errorf("seed scale: %w", err)
	}
	defer conn.Close()
	exec := func(name, q string, args ...any) error {
		t0 := time.Now()
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("seed scale: %s: %w", name, err)
		}
		if SeedProgress != nil {
			SeedProgress(name, time.Since(t0))
		}
		return nil
	}
	if err := exec("settings", `SET maintenance_work_mem = '256MB'; SET work_mem = '64MB'; SET temp_buffers = '512MB';
SET synchronous_commit = off`); err != nil {
		return 0, err
	}
	if err := exec("changes", qSeedChanges, subs, months, start); err != nil {
		return 0, err
	}
	// Indexes are built once after the load, from sorted input, rather
	// than maintained row by row in random (uuid) order.
	tables := []string{"mrr_movements", "subscription_activity", "subscription_versions", "revenue_segments_daily"}
	var drops, creates string
	if err := conn.QueryRowContext(ctx, qSecondaryIndexes, strings.Join(tables, ",")).Scan(&drops, &creates); err != nil {
		return 0, fmt.Errorf("seed scale: list indexes: %w", err)
	}
	var indexes []string
	if creates != "" {
		indexes = strings.Split(creates, "\x1f")
		for _, d := range strings.Split(drops, "\x1f") {
			if err := exec("drop index", d); err != nil {
				return 0, err
			}
		}
	}
	for _, s := range []struct{ name, q string }{
		{"movements", qSeedMovements}, {"activity", qSeedActivity}, {"versions", qSeedVersions},
		{"segments", qSeedSegments}, {"drop", `DROP TABLE seed_changes`},
	} {
		if err := exec(s.name, s.q); err != nil {
			return 0, err
		}
	}
	for _, def := range indexes {
		if err := exec("index "+indexName(def), def); err != nil {
			return 0, err
		}
	}
	var n int64
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM mrr_movements`).Scan(&n); err != nil {
		return 0, fmt.Errorf("seed scale: count: %w", err)
	}
	if err := exec("daily", qSeedDaily); err != nil {
		return n, err
	}
	if err := exec("months", qSeedMonths); err != nil {
		return n, err
	}
	// What autovacuum would do soon after a bulk load: statistics and the
	// visibility map (index-only scans).
	for _, t := range append(tables, "revenue_daily", "revenue_segments_monthly") {
		if err := exec("vacuum "+t, `VACUUM ANALYZE `+t); err != nil {
			return n, err
		}
	}
	return n, nil
}

// qSecondaryIndexes lists the tables' ($1, comma-separated) indexes and
// unique constraints other than primary keys: the statements that drop
// them and those that recreate them, each joined by a unit separator.
const qSecondaryIndexes = `
WITH x AS (
    SELECT 'DROP INDEX ' || i.indexrelid::regclass::text AS drop_stmt, pg_get_indexdef(i.indexrelid) AS create_stmt
    FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
    WHERE t.relname = ANY(string_to_array($1, ',')) AND t.relnamespace = 'public'::regnamespace
      AND NOT i.indisprimary AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
    UNION ALL
    SELECT format('ALTER TABLE %I DROP CONSTRAINT %I', t.relname, c.conname),
           format('ALTER TABLE %I ADD CONSTRAINT %I %s', t.relname, c.conname, pg_get_constraintdef(c.oid))
    FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
    WHERE t.relname = ANY(string_to_array($1, ',')) AND t.relnamespace = 'public'::regnamespace AND c.contype = 'u'
)
SELECT coalesce(string_agg(drop_stmt, chr(31)), ''), coalesce(string_agg(create_stmt, chr(31)), '') FROM x`

// indexName is the name an index or constraint definition creates.
func indexName(def string) string {
	f := strings.Fields(def)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "INDEX" || f[i] == "CONSTRAINT" {
			return f[i+1]
		}
	}
	return def
}

// mrrAt is subscription g's MRR in month m (an SQL expression over the
// columns of seed_subs' rows): 0 before its start month and while churned,
// its base price times 1–3 seats (redrawn each quarter) otherwise.
func mrrAt(m string) string {
	return strings.NewReplacer("M", m).Replace(`CASE
    WHEN M < s.start_m THEN 0
    WHEN s.churn_after IS NOT NULL AND M >= s.start_m + s.churn_after
         AND (s.back_after IS NULL OR M < s.start_m + s.churn_after + s.back_after) THEN 0
    ELSE s.base * (1 + (hashint4(s.g * 31 + (M) / 3) & 2147483647) % 3)
END`)
}

// qSeedChanges computes every change of every subscription into a
// temporary work table: $1 subscriptions, $2 months, $3 the first month.
// A subscription's MRR is a pure function of its number and the month, so
// each month's change is computed from that month and the one before,
// without sorting 36 million rows for a window function.
var qSeedChanges = `
CREATE TEMP TABLE seed_changes AS
WITH s AS MATERIALIZED (
    SELECT g,
           md5('billingd-bench:' || g)::uuid AS ref,
           CASE WHEN g % 20 < 12 THEN 'usd' WHEN g % 20 < 17 THEN 'eur' WHEN g % 20 < 19 THEN 'gbp' ELSE 'jpy' END AS currency,
           (1 + (hashint4(g) & 63)) * CASE WHEN g % 20 = 19 THEN 100 ELSE 500 END AS base,
           (hashint4(g * 7) & 2147483647) % $2 AS start_m,
           CASE WHEN (hashint4(g * 11) & 2147483647) % 10 < 4 THEN 3 + (hashint4(g * 13) & 2147483647) % 24 END AS churn_after,
           CASE WHEN (hashint4(g * 17) & 2147483647) % 2 = 0 THEN 2 + (hashint4(g * 19) & 2147483647) % 10 END AS back_after,
           (hashint4(g * 23) & 2147483647) % 8 AS p
    FROM generate_series(1, $1::int) g
), c AS (
    -- MRR changes only in the start month, at a quarter (seats redrawn),
    -- at churn and at reactivation: only those months are evaluated
    SELECT s.g, s.ref, s.currency, s.p, s.start_m, m, ` + mrrAt("m") + ` AS after, ` + mrrAt("m - 1") + ` AS before,
           ` + mrrAt("s.start_m") + ` AS first_mrr
    FROM s CROSS JOIN generate_series(0, $2::int - 1) m
    WHERE m >= s.start_m AND (m % 3 = 0 OR m = s.start_m OR m = s.start_m + s.churn_after
                              OR m = s.start_m + s.churn_after + s.back_after)
)
SELECT ref, currency, p, 'price_bench_' || p AS plan, 'prod_bench_' || (p % 3) AS product,
       CASE WHEN p < 6 THEN 'month' ELSE 'year' END AS iv,
       to_char(($3::timestamptz AT TIME ZONE 'UTC') + make_interval(months => start_m), 'YYYY-MM') AS cohort,
       (($3::timestamptz AT TIME ZONE 'UTC') + make_interval(months => m, days => g % 28, secs => g % 86400))
           AT TIME ZONE 'UTC' AS at,
       CASE WHEN before = 0 AND m = start_m THEN 'new'
            WHEN before = 0 THEN 'reactivation'
            WHEN after = 0 THEN 'churn'
            WHEN after > before THEN 'expansion'
            ELSE 'contraction' END AS kind,
       before::bigint, after::bigint, first_mrr::bigint
FROM c WHERE after <> before`

const qSeedMovements = `
INSERT INTO mrr_movements (customer_ref, subscription_ref, livemode, currency, effective_at, kind,
                           delta_minor, customer_mrr_before, customer_mrr_after)
SELECT ref, ref, true, currency, at, kind, after - before, before, after
FROM seed_changes ORDER BY at, ref`

const qSeedActivity = `
INSERT INTO subscription_activity (customer_ref, subscription_ref, livemode, currency, effective_at, delta)
SELECT ref, ref, true, currency, at, CASE WHEN kind = 'churn' THEN -1 ELSE 1 END
FROM seed_changes WHERE kind IN ('new', 'reactivation', 'churn') ORDER BY at, ref`

// qSeedVersions writes the state after each change as the event path
// records a subscription: canceled with its last price when its MRR went
// to 0 (a yearly price bills 12 × the MRR). The items documents are built
// once per distinct plan and amount (a few thousand), not per row.
const qSeedVersions = `
WITH v AS (
    SELECT ref, currency, at, after, plan, product, iv,
           CASE WHEN iv = 'year' THEN 12 ELSE 1 END * CASE WHEN after = 0 THEN before ELSE after END AS amount
    FROM seed_changes
), items AS MATERIALIZED (
    SELECT plan, amount, jsonb_build_array(jsonb_build_object('price_id', plan, 'product_id', min(product), 'quantity', 1,
               'unit_amount', amount, 'interval', min(iv), 'interval_count', 1)) AS items
    FROM v GROUP BY plan, amount
)
INSERT INTO subscription_versions (subscription_ref, customer_ref, livemode, status, currency, items, mrr_minor,
                                   version_at, version_rank, version_event)
SELECT v.ref, v.ref, true, CASE WHEN v.after = 0 THEN 'canceled' ELSE 'active' END, v.currency, i.items, v.after,
       v.at, 0, 'evt_bench_' || to_char(v.at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS') || '_' || left(v.ref::text, 8)
FROM v JOIN items i USING (plan, amount)
ORDER BY v.ref, v.at`

// qSeedSegments sums the facts a derivation would write for these
// histories, per day, into the segment rollup. With one single-item
// subscription per customer, a customer's movements are its movements in
// its plan, product and interval, each start or stop is one active
// subscription there, and its cohort facts are its movements with the
// change of min(MRR, first MRR) and no active count.
const qSeedSegments = `
WITH pl AS MATERIALIZED (
    -- per plan and day: the plan, product and interval rows are sums of these
    SELECT currency, p, (at AT TIME ZONE 'UTC')::date AS day,
           sum(after - before) AS m,
           sum(after - before) FILTER (WHERE kind = 'new') AS n,
           sum(after - before) FILTER (WHERE kind = 'expansion') AS e,
           -sum(after - before) FILTER (WHERE kind = 'contraction') AS c,
           -sum(after - before) FILTER (WHERE kind = 'churn') AS ch,
           sum(after - before) FILTER (WHERE kind = 'reactivation') AS r,
           sum(CASE WHEN kind IN ('new', 'reactivation') THEN 1 WHEN kind = 'churn' THEN -1 ELSE 0 END) AS pay,
           count(*) FILTER (WHERE kind = 'churn') AS cc, count(*) FILTER (WHERE kind = 'new') AS nc
    FROM seed_changes
    GROUP BY currency, p, day
), co AS (
    SELECT currency, cohort, (at AT TIME ZONE 'UTC')::date AS day,
           sum(after - before) AS m,
           sum(after - before) FILTER (WHERE kind = 'new') AS n,
           sum(after - before) FILTER (WHERE kind = 'expansion') AS e,
           -sum(after - before) FILTER (WHERE kind = 'contraction') AS c,
           -sum(after - before) FILTER (WHERE kind = 'churn') AS ch,
           sum(after - before) FILTER (WHERE kind = 'reactivation') AS r,
           sum(CASE WHEN kind IN ('new', 'reactivation') THEN 1 WHEN kind = 'churn' THEN -1 ELSE 0 END) AS pay,
           count(*) FILTER (WHERE kind = 'churn') AS cc, count(*) FILTER (WHERE kind = 'new') AS nc,
           sum(least(after, first_mrr) - least(before, first_mrr)) AS rt
    FROM seed_changes
    GROUP BY currency, cohort, day
), rows AS (
    SELECT pl.currency, d.dim, d.seg, pl.day, sum(m) AS m, sum(n) AS n, sum(e) AS e, sum(c) AS c, sum(ch) AS ch,
           sum(r) AS r, sum(pay) AS pay, sum(cc) AS cc, sum(nc) AS nc, sum(pay) AS a, 0 AS rt
    FROM pl CROSS JOIN LATERAL (VALUES ('plan', 'price_bench_' || pl.p), ('product', 'prod_bench_' || (pl.p % 3)),
                                       ('interval', CASE WHEN pl.p < 6 THEN 'month' ELSE 'year' END)) AS d(dim, seg)
    GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT currency, 'cohort', cohort, day, m, n, e, c, ch, r, pay, cc, nc, 0, rt FROM co
)
INSERT INTO revenue_segments_daily (livemode, currency, dimension, segment, day, folded, mrr_delta, new_minor,
    expansion_minor, contraction_minor, churn_minor, reactivation_minor, paying_delta, churned_customers, new_customers,
    active_delta, retained_delta, trial_starts, trial_conversions)
SELECT true, currency, dim, seg, day, true, m, coalesce(n, 0), coalesce(e, 0), coalesce(c, 0), coalesce(ch, 0),
       coalesce(r, 0), pay, cc, nc, a, rt, 0, 0
FROM rows`

// qSeedMonths sums the seeded days (inserted folded) into their months, as
// the fold would.
const qSeedMonths = `
INSERT INTO revenue_segments_monthly (livemode, dimension, month, currency, segment, mrr_delta, new_minor,
    expansion_minor, contraction_minor, churn_minor, reactivation_minor, paying_delta, churned_customers,
    new_customers, active_delta, retained_delta, trial_starts, trial_conversions)
SELECT livemode, dimension, date_trunc('month', day)::date, currency, segment, sum(mrr_delta), sum(new_minor),
       sum(expansion_minor), sum(contraction_minor), sum(churn_minor), sum(reactivation_minor), sum(paying_delta),
       sum(churned_customers), sum(new_customers), sum(active_delta), sum(retained_delta), sum(trial_starts),
       sum(trial_conversions)
FROM revenue_segments_daily
GROUP BY 1, 2, 3, 4, 5`

// qSeedDaily is RebuildRevenueRollup's totals part: revenue_daily from the
// ledger through the one view that defines it.
const qSeedDaily = `
INSERT INTO revenue_daily (livemode, currency, day, mrr_delta, new_minor, expansion_minor, contraction_minor,
                           churn_minor, reactivation_minor, paying_delta, churned_customers, active_delta)
SELECT livemode, currency, day, mrr_delta, new_minor, expansion_minor, contraction_minor,
       churn_minor, reactivation_minor, paying_delta, churned_customers, active_delta
FROM revenue_daily_from_ledger`
