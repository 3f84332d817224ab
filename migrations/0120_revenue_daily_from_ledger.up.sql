-- One definition of the daily revenue rollup: revenue_daily_from_ledger is
-- what revenue_daily sums to per (mode, currency, day), computed from the
-- ledger (mrr_movements, subscription_activity). Amounts are magnitudes in
-- minor units, as in billing.MovementSums, made numeric before they are
-- negated (a legacy delta of -2^63 has no bigint negation), as the rollup's
-- columns are since 0094.
--
-- `billingd metrics rebuild` (postgres.Store.RebuildRevenueRollup) refills
-- revenue_daily from this view. Migration 0031 used to fill the new table
-- with a copy of the same query; it now only creates it, and this
-- migration fills it instead, when it is empty: a database that ran the old
-- 0031 has its rows already (its event transactions have appended to them
-- since) and keeps them as they are.
--
-- Compatible with every older binary (migrations/README.md): a new view,
-- and rollup rows only where there were none, of the kind older binaries
-- write and read themselves. No oldest-compatible-binary line.
CREATE VIEW revenue_daily_from_ledger AS
SELECT livemode, currency, day, sum(mrr_delta) AS mrr_delta, sum(new_minor) AS new_minor,
       sum(expansion_minor) AS expansion_minor, sum(contraction_minor) AS contraction_minor,
       sum(churn_minor) AS churn_minor, sum(reactivation_minor) AS reactivation_minor,
       sum(paying_delta) AS paying_delta, sum(churned_customers) AS churned_customers,
       sum(active_delta) AS active_delta
FROM (
    SELECT livemode, currency, (effective_at AT TIME ZONE 'UTC')::date AS day, d AS mrr_delta,
           CASE WHEN kind = 'new' THEN d ELSE 0 END AS new_minor,
           CASE WHEN kind = 'expansion' THEN d ELSE 0 END AS expansion_minor,
           CASE WHEN kind = 'contraction' THEN -d ELSE 0 END AS contraction_minor,
           CASE WHEN kind = 'churn' THEN -d ELSE 0 END AS churn_minor,
           CASE WHEN kind = 'reactivation' THEN d ELSE 0 END AS reactivation_minor,
           CASE WHEN kind IN ('new', 'reactivation') THEN 1 WHEN kind = 'churn' THEN -1 ELSE 0 END AS paying_delta,
           CASE WHEN kind = 'churn' THEN 1 ELSE 0 END AS churned_customers,
           0 AS active_delta
    FROM (SELECT livemode, currency, effective_at, kind, delta_minor::numeric AS d FROM mrr_movements) m
    UNION ALL
    SELECT livemode, currency, (effective_at AT TIME ZONE 'UTC')::date, 0, 0, 0, 0, 0, 0, 0, 0, delta
    FROM subscription_activity
) x
GROUP BY livemode, currency, day;

INSERT INTO revenue_daily (livemode, currency, day, mrr_delta, new_minor, expansion_minor, contraction_minor,
                           churn_minor, reactivation_minor, paying_delta, churned_customers, active_delta)
SELECT livemode, currency, day, mrr_delta, new_minor, expansion_minor, contraction_minor,
       churn_minor, reactivation_minor, paying_delta, churned_customers, active_delta
FROM revenue_daily_from_ledger
WHERE NOT EXISTS (SELECT 1 FROM revenue_daily);
