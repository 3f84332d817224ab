-- Daily revenue rollup: the revenue report reads one row per
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

-- Migration 0120 fills it from the ledger (the view
-- revenue_daily_from_ledger, the one definition of what the rollup sums
-- to). This file filled it with a copy of that query until 0120 replaced
-- the copy; a database that ran it then keeps those rows.

-- Reports now read the raw ledger only for the current day (the rest comes
-- from revenue_daily), across one or every currency: lead the covering
-- indexes with time, not currency, so an all-currency read is a short
-- range scan too.
DROP INDEX mrr_movements_time_idx;
CREATE INDEX mrr_movements_time_idx ON mrr_movements (livemode, effective_at) INCLUDE (currency, kind, delta_minor);
DROP INDEX subscription_activity_time_idx;
CREATE INDEX subscription_activity_time_idx ON subscription_activity (livemode, effective_at) INCLUDE (currency, delta);
