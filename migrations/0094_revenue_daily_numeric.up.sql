-- Revenue reports must not fail on what is stored. The daily
-- rollup's amounts were bigint: a day whose movements summed past 2^63
-- (a ledger holding absurd amounts from before decoders refused them)
-- failed the event that appended it, the compaction that folded it and
-- every report that read it, "bigint out of range", for good. numeric has
-- no such limit; reports clamp what they show (billing/clamp.go). The
-- counters become bigint, the type their sums have anyway.
-- The table is compacted (about one row per mode, currency and day): the
-- rewrite is short.
--
-- Older binaries keep working (migrations/README.md): they insert sums that
-- are numeric already (sum() of bigint is numeric) into wider columns, and
-- read sums that lib/pq hands over as text either way; only a sum beyond
-- int64, which failed them before too, fails their reports.
-- oldest-compatible-binary: 1
ALTER TABLE revenue_daily
    ALTER COLUMN mrr_delta TYPE numeric,
    ALTER COLUMN new_minor TYPE numeric,
    ALTER COLUMN expansion_minor TYPE numeric,
    ALTER COLUMN contraction_minor TYPE numeric,
    ALTER COLUMN churn_minor TYPE numeric,
    ALTER COLUMN reactivation_minor TYPE numeric,
    ALTER COLUMN paying_delta TYPE bigint,
    ALTER COLUMN churned_customers TYPE bigint,
    ALTER COLUMN active_delta TYPE bigint;
