-- Daily revenue rollup (issue 6): the revenue report reads one row per
-- (mode, currency, day) instead of every movement, so its cost grows with
-- the number of days and currencies, not with the size of the ledger.
--
-- Rows are deltas, appended by the same statement that rewrites a
-- customer's ledger (never updated in place, so concurrent event
-- transactions never wait on a shared row), and folded into one row per
-- day by compaction. The sum of the rows of a day is that day's figures.
-- Amounts are magnitudes in minor units, as in billing.MovementSums.
-- Aggregates only: no customer or subscription reference.
CREATE TABLE revenue_daily (
    id                  bigserial PRIMARY KEY,
    livemode            boolean NOT NULL,
    currency            text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    day                 date NOT NULL,
    mrr_delta           bigint NOT NULL DEFAULT 0,
    new_minor           bigint NOT NULL DEFAULT 0,
    expansion_minor     bigint NOT NULL DEFAULT 0,
    contraction_minor   bigint NOT NULL DEFAULT 0,
    churn_minor         bigint NOT NULL DEFAULT 0,
    reactivation_minor  bigint NOT NULL DEFAULT 0,
    paying_delta        integer NOT NULL DEFAULT 0,
    churned_customers   integer NOT NULL DEFAULT 0,
    active_delta        integer NOT NULL DEFAULT 0
);
CREATE INDEX revenue_daily_day_idx ON revenue_daily (livemode, currency, day);

-- Fill it from the ledger as it stands.
INSERT INTO revenue_daily (livemode, currency, day, mrr_delta, new_minor, expansion_minor, contraction_minor,
                           churn_minor, reactivation_minor, paying_delta, churned_customers, active_delta)
SELECT livemode, currency, day, sum(mrr_delta), sum(new_minor), sum(expansion_minor), sum(contraction_minor),
       sum(churn_minor), sum(reactivation_minor), sum(paying_delta), sum(churned_customers), sum(active_delta)
FROM (
    SELECT livemode, currency, (effective_at AT TIME ZONE 'UTC')::date AS day, delta_minor AS mrr_delta,
           CASE WHEN kind = 'new' THEN delta_minor ELSE 0 END AS new_minor,
           CASE WHEN kind = 'expansion' THEN delta_minor ELSE 0 END AS expansion_minor,
           CASE WHEN kind = 'contraction' THEN -delta_minor ELSE 0 END AS contraction_minor,
           CASE WHEN kind = 'churn' THEN -delta_minor ELSE 0 END AS churn_minor,
           CASE WHEN kind = 'reactivation' THEN delta_minor ELSE 0 END AS reactivation_minor,
           CASE WHEN kind IN ('new', 'reactivation') THEN 1 WHEN kind = 'churn' THEN -1 ELSE 0 END AS paying_delta,
           CASE WHEN kind = 'churn' THEN 1 ELSE 0 END AS churned_customers,
           0 AS active_delta
    FROM mrr_movements
    UNION ALL
    SELECT livemode, currency, (effective_at AT TIME ZONE 'UTC')::date, 0, 0, 0, 0, 0, 0, 0, 0, delta
    FROM subscription_activity
) x
GROUP BY livemode, currency, day;

-- Reports now read the raw ledger only for the current day (the rest comes
-- from revenue_daily), across one or every currency: lead the covering
-- indexes with time, not currency, so an all-currency read is a short
-- range scan too.
DROP INDEX mrr_movements_time_idx;
CREATE INDEX mrr_movements_time_idx ON mrr_movements (livemode, effective_at) INCLUDE (currency, kind, delta_minor);
DROP INDEX subscription_activity_time_idx;
CREATE INDEX subscription_activity_time_idx ON subscription_activity (livemode, effective_at) INCLUDE (currency, delta);
