-- Fleet-wide request spacing for outside APIs (ProfitWell allows 25
-- requests per 5 s per account, not per replica). One row per API: the
-- earliest time the next request may start. Every replica reserves its
-- slot here, so the limit holds however many workers run. Operational
-- state only.
CREATE TABLE rate_slots (
    name     text PRIMARY KEY CHECK (name ~ '^[a-z_]{1,40}$'),
    next_at  timestamptz NOT NULL
);
