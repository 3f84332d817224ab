-- Back to bigint and integer; fails (and changes nothing) if a stored day
-- no longer fits, which is the state the up migration exists to allow.
ALTER TABLE revenue_daily
    ALTER COLUMN mrr_delta TYPE bigint,
    ALTER COLUMN new_minor TYPE bigint,
    ALTER COLUMN expansion_minor TYPE bigint,
    ALTER COLUMN contraction_minor TYPE bigint,
    ALTER COLUMN churn_minor TYPE bigint,
    ALTER COLUMN reactivation_minor TYPE bigint,
    ALTER COLUMN paying_delta TYPE integer,
    ALTER COLUMN churned_customers TYPE integer,
    ALTER COLUMN active_delta TYPE integer;
