-- Revenue metrics: the MRR movement ledger and subscription activity.
--
-- subscription_activity is derived together with mrr_movements (in the same
-- recompute): +1 when a subscription starts contributing MRR, -1 when it
-- stops. Summing deltas before a time gives the active subscriptions then,
-- the same way summing mrr_movements.delta_minor gives MRR, so the revenue
-- report never has to replay subscription_versions. Keyed by surrogate
-- references only, like the other history tables.
CREATE TABLE subscription_activity (
    id                bigserial PRIMARY KEY,
    customer_ref      uuid NOT NULL,
    subscription_ref  uuid NOT NULL,
    livemode          boolean NOT NULL,
    currency          text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    effective_at      timestamptz NOT NULL,
    delta             smallint NOT NULL CHECK (delta IN (-1, 1))
);
CREATE INDEX subscription_activity_customer_idx ON subscription_activity (customer_ref, effective_at);
CREATE INDEX subscription_activity_time_idx ON subscription_activity (livemode, currency, effective_at) INCLUDE (delta);

-- The revenue report reads (livemode, currency, effective_at, kind,
-- delta_minor) only: a covering index lets it run as an index-only scan.
DROP INDEX mrr_movements_time_idx;
CREATE INDEX mrr_movements_time_idx ON mrr_movements (livemode, currency, effective_at) INCLUDE (kind, delta_minor);
