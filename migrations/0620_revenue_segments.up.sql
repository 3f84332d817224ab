-- Revenue by plan, product and billing interval, customer cohorts and trial
-- counts (billing.Fact, derived with the ledger by billing.DeriveLedger).
--
-- revenue_facts holds each customer's facts under its surrogate reference,
-- replaced from a time on by the same statement that replaces its
-- movements (internal/postgres/event7_ledger.go), which also appends their
-- net change per day to revenue_segments_daily: the reports read that
-- rollup, one row per (mode, currency, dimension, segment, day) once
-- compacted, as revenue_daily serves the totals. Segments are price IDs,
-- product IDs, intervals ("month", "3 months") and cohort months
-- ("2026-01"): merchant catalog keys, no customer data.
--
-- History from before this migration gets its facts from
-- `billingd metrics rebuild`. Compatible with every older binary: new
-- tables that older binaries neither read nor write (their ledger writes
-- leave the facts of the customers they touch behind until a rebuild).
CREATE TABLE revenue_facts (
    id                bigserial PRIMARY KEY,
    customer_ref      uuid NOT NULL,
    livemode          boolean NOT NULL,
    currency          text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    dimension         text NOT NULL CHECK (dimension IN ('plan', 'product', 'interval', 'cohort')),
    segment           text NOT NULL CHECK (length(segment) BETWEEN 1 AND 255),
    effective_at      timestamptz NOT NULL,
    day               date NOT NULL,
    kind              text NULL CHECK (kind IN ('new', 'expansion', 'contraction', 'churn', 'reactivation')),
    delta_minor       bigint NOT NULL DEFAULT 0,
    active_delta      smallint NOT NULL DEFAULT 0 CHECK (active_delta BETWEEN -1 AND 1),
    retained_delta    bigint NOT NULL DEFAULT 0,
    trial_start       smallint NOT NULL DEFAULT 0 CHECK (trial_start IN (0, 1)),
    trial_conversion  smallint NOT NULL DEFAULT 0 CHECK (trial_conversion IN (0, 1))
);
CREATE INDEX revenue_facts_customer_idx ON revenue_facts (customer_ref, livemode, effective_at);
-- The reports read today's facts raw (the rollup holds whole days), as they read mrr_movements.
CREATE INDEX revenue_facts_time_idx ON revenue_facts (livemode, effective_at);

CREATE TABLE revenue_segments_daily (
    id                  bigserial PRIMARY KEY,
    livemode            boolean NOT NULL,
    currency            text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    dimension           text NOT NULL CHECK (dimension IN ('plan', 'product', 'interval', 'cohort')),
    segment             text NOT NULL CHECK (length(segment) BETWEEN 1 AND 255),
    day                 date NOT NULL,
    mrr_delta           numeric NOT NULL DEFAULT 0,
    new_minor           numeric NOT NULL DEFAULT 0,
    expansion_minor     numeric NOT NULL DEFAULT 0,
    contraction_minor   numeric NOT NULL DEFAULT 0,
    churn_minor         numeric NOT NULL DEFAULT 0,
    reactivation_minor  numeric NOT NULL DEFAULT 0,
    paying_delta        integer NOT NULL DEFAULT 0,
    churned_customers   integer NOT NULL DEFAULT 0,
    new_customers       integer NOT NULL DEFAULT 0,
    active_delta        integer NOT NULL DEFAULT 0,
    retained_delta      numeric NOT NULL DEFAULT 0,
    trial_starts        integer NOT NULL DEFAULT 0,
    trial_conversions   integer NOT NULL DEFAULT 0
);
CREATE INDEX revenue_segments_daily_idx ON revenue_segments_daily (livemode, dimension, day);
-- The totals report reads trial counts from the plan dimension: only the
-- few rows that have any.
CREATE INDEX revenue_segments_trials_idx ON revenue_segments_daily (livemode, day)
    WHERE dimension = 'plan' AND (trial_starts <> 0 OR trial_conversions <> 0);
