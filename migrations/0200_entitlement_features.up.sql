-- Entitlements the app can use directly (issue 18): the features and
-- limits catalog, per-account overrides, Stripe Entitlements summaries,
-- subscription schedules and pending updates. Everything here is additive.
-- Feature keys and names are the merchant's catalog, not personal data;
-- schedules keep IDs, dates, prices and quantities only (their metadata and
-- descriptions are never read).

-- The catalog is one document, replaced as a whole (PUT /v1/catalog,
-- `billingd catalog apply`); it is validated by billing.ParseCatalog
-- before it is written.
CREATE TABLE entitlement_catalog (
    id          smallint PRIMARY KEY CHECK (id = 1),
    document    jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL CHECK (updated_by ~ '^[A-Za-z0-9_.:-]{1,80}$')
);

-- Per-account feature overrides (sales deals, support), keyed by the app's
-- account ID like customers.account_id; erased with the account.
CREATE TABLE account_overrides (
    account_id  text PRIMARY KEY CHECK (account_id ~ '^[A-Za-z0-9_.:-]{1,128}$'),
    features    jsonb NOT NULL CHECK (jsonb_typeof(features) = 'object'),
    expires_at  timestamptz NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL CHECK (updated_by ~ '^[A-Za-z0-9_.:-]{1,80}$')
);

-- Stripe Entitlements: a customer's active features by lookup key, from
-- entitlements.active_entitlement_summary.updated, ordered by event time
-- like every other object. complete is false while a summary that had more
-- than one page waits for the Stripe job that fetches the whole list.
CREATE TABLE stripe_entitlement_summaries (
    stripe_customer_id  text PRIMARY KEY REFERENCES customers (stripe_customer_id) ON DELETE CASCADE,
    livemode            boolean NOT NULL,
    lookup_keys         text[] NOT NULL,
    complete            boolean NOT NULL,
    version_at          timestamptz NOT NULL,
    version_event       text NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Subscription schedules: their phases (start, end, price, quantity) give
-- the scheduled change of a subscription. Nothing else of a schedule is
-- kept.
CREATE TABLE subscription_schedules (
    stripe_schedule_id      text PRIMARY KEY CHECK (stripe_schedule_id ~ '^sub_sched_[A-Za-z0-9]{1,240}$'),
    stripe_customer_id      text NOT NULL REFERENCES customers (stripe_customer_id) ON DELETE CASCADE,
    stripe_subscription_id  text NULL CHECK (stripe_subscription_id ~ '^sub_[A-Za-z0-9]{1,250}$'),
    livemode                boolean NOT NULL,
    status                  text NOT NULL CHECK (status IN ('not_started', 'active', 'completed', 'released', 'canceled')),
    end_behavior            text NOT NULL CHECK (end_behavior IN ('release', 'cancel', 'none', 'renew')),
    phases                  jsonb NOT NULL CHECK (jsonb_typeof(phases) = 'array'),
    version_at              timestamptz NOT NULL,
    version_rank            smallint NOT NULL,
    version_event           text NOT NULL,
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_schedules_customer_idx ON subscription_schedules (stripe_customer_id);

-- A subscription's pending_update (changes waiting for their invoice to be
-- paid): its expiry and the price and quantity of each item.
ALTER TABLE subscriptions ADD COLUMN pending_update jsonb NULL CHECK (jsonb_typeof(pending_update) = 'object');

-- Kind 3 of the invalidation feed: every cached entitlement answer (the
-- catalog changed, which every account's answer reads). Wider than before:
-- an older binary reads such a row as an account change of bucket 0.
ALTER TABLE cache_invalidations DROP CONSTRAINT cache_invalidations_kind_check;
ALTER TABLE cache_invalidations ADD CONSTRAINT cache_invalidations_kind_check CHECK (kind IN (1, 2, 3));
