-- Monthly rollup of the segment and cohort rollup, so the reports over
-- years of history at a million subscriptions read a row per (mode,
-- currency, dimension, segment, month) instead of one per day (issue 20
-- item 10).
--
-- revenue_segments_monthly is maintained from revenue_segments_daily, not
-- by its writers: whoever appends daily rows (the fact derivation, `metrics
-- rebuild`) appends them with folded = false, and the compaction that runs
-- before reports (internal/postgres/revenue_rollups_1m.go) flips the
-- visible unfolded rows to folded and adds their sums to their months, in
-- one statement under the compaction lock. So every daily row is counted
-- in its month exactly once, whatever order the events arrived in and
-- however many times they were delivered (the daily rows are exact deltas
-- already); compaction keeps folded and unfolded rows apart. Reports read
-- whole months before a cut-off from here and the days after it, plus any
-- unfolded row, from the daily rollup.
--
-- Compatible with every older binary: a new table and a column with a
-- default. No released binary compacts revenue_segments_daily without
-- knowing `folded` (the table arrives with migration 0620 in the same
-- release).
ALTER TABLE revenue_segments_daily ADD COLUMN folded boolean NOT NULL DEFAULT false;
CREATE INDEX revenue_segments_daily_unfolded_idx ON revenue_segments_daily (livemode, dimension, day) WHERE NOT folded;

CREATE TABLE revenue_segments_monthly (
    livemode            boolean NOT NULL,
    dimension           text NOT NULL CHECK (dimension IN ('plan', 'product', 'interval', 'cohort')),
    month               date NOT NULL CHECK (extract(day FROM month) = 1),
    currency            text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    segment             text NOT NULL CHECK (length(segment) BETWEEN 1 AND 255),
    mrr_delta           numeric NOT NULL DEFAULT 0,
    new_minor           numeric NOT NULL DEFAULT 0,
    expansion_minor     numeric NOT NULL DEFAULT 0,
    contraction_minor   numeric NOT NULL DEFAULT 0,
    churn_minor         numeric NOT NULL DEFAULT 0,
    reactivation_minor  numeric NOT NULL DEFAULT 0,
    paying_delta        numeric NOT NULL DEFAULT 0,
    churned_customers   numeric NOT NULL DEFAULT 0,
    new_customers       numeric NOT NULL DEFAULT 0,
    active_delta        numeric NOT NULL DEFAULT 0,
    retained_delta      numeric NOT NULL DEFAULT 0,
    trial_starts        numeric NOT NULL DEFAULT 0,
    trial_conversions   numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (livemode, dimension, month, currency, segment)
);
