-- Core schema. Every column is an identifier, a non-personal billing fact or
-- operational state; nothing here can hold a payload, e-mail or free text.
-- History tables (subscription_versions, mrr_movements) key on random
-- surrogate references, never on Stripe IDs, so erasing an account only has
-- to delete the link rows while revenue history stays for finance.

CREATE TABLE stripe_events (
    event_id     text PRIMARY KEY CHECK (event_id ~ '^evt_[A-Za-z0-9_]{1,250}$'),
    event_type   text NOT NULL CHECK (length(event_type) <= 100),
    created      timestamptz NOT NULL,
    livemode     boolean NOT NULL,
    outcome      text NOT NULL CHECK (length(outcome) <= 40),
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_received_at_idx ON stripe_events (received_at);

CREATE TABLE customers (
    stripe_customer_id text PRIMARY KEY CHECK (stripe_customer_id ~ '^cus_[A-Za-z0-9]{1,250}$'),
    customer_ref       uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    account_id         text NULL CHECK (account_id ~ '^[A-Za-z0-9_.:-]{1,128}$'),
    linked_via         text NULL CHECK (linked_via IN ('api', 'customer_metadata', 'subscription_metadata', 'checkout')),
    linked_at          timestamptz NULL,
    livemode           boolean NULL,
    deleted            boolean NOT NULL DEFAULT false,
    version_at         timestamptz NULL,
    version_event      text NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_account_id_idx ON customers (account_id) WHERE account_id IS NOT NULL;

CREATE TABLE subscriptions (
    stripe_subscription_id text PRIMARY KEY CHECK (stripe_subscription_id ~ '^sub_[A-Za-z0-9]{1,250}$'),
    subscription_ref       uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    stripe_customer_id     text NOT NULL REFERENCES customers (stripe_customer_id) ON DELETE CASCADE,
    customer_ref           uuid NOT NULL,
    livemode               boolean NOT NULL,
    status                 text NOT NULL CHECK (status IN ('incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'canceled', 'unpaid', 'paused')),
    currency               text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    -- items and discounts are written only from billing.Item / billing.Discount
    -- (IDs, integers, enums and dates); see billing/subscription.go.
    items                  jsonb NOT NULL CHECK (jsonb_typeof(items) = 'array'),
    items_incomplete       boolean NOT NULL DEFAULT false,
    discounts              jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(discounts) = 'array'),
    mrr_minor              bigint NOT NULL DEFAULT 0,
    mrr_fixed              boolean NOT NULL DEFAULT true,
    created                timestamptz NULL,
    start_date             timestamptz NULL,
    current_period_start   timestamptz NULL,
    current_period_end     timestamptz NULL,
    trial_start            timestamptz NULL,
    trial_end              timestamptz NULL,
    cancel_at              timestamptz NULL,
    cancel_at_period_end   boolean NOT NULL DEFAULT false,
    canceled_at            timestamptz NULL,
    ended_at               timestamptz NULL,
    collection_paused      boolean NOT NULL DEFAULT false,
    latest_invoice_status  text NULL CHECK (latest_invoice_status IN ('draft', 'open', 'paid', 'uncollectible', 'void', 'payment_failed')),
    invoice_attempt_count  integer NOT NULL DEFAULT 0,
    next_payment_attempt   timestamptz NULL,
    invoice_version_at     timestamptz NULL,
    version_at             timestamptz NOT NULL,
    version_rank           smallint NOT NULL,
    version_event          text NOT NULL,
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_customer_idx ON subscriptions (stripe_customer_id);

-- State history: one row per version of a subscription, late ones included.
CREATE TABLE subscription_versions (
    id                     bigserial PRIMARY KEY,
    subscription_ref       uuid NOT NULL,
    customer_ref           uuid NOT NULL,
    livemode               boolean NOT NULL,
    status                 text NOT NULL,
    currency               text NOT NULL,
    items                  jsonb NOT NULL CHECK (jsonb_typeof(items) = 'array'),
    discounts              jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(discounts) = 'array'),
    mrr_minor              bigint NOT NULL DEFAULT 0,
    mrr_fixed              boolean NOT NULL DEFAULT true,
    current_period_start   timestamptz NULL,
    current_period_end     timestamptz NULL,
    trial_end              timestamptz NULL,
    cancel_at              timestamptz NULL,
    cancel_at_period_end   boolean NOT NULL DEFAULT false,
    ended_at               timestamptz NULL,
    version_at             timestamptz NOT NULL,
    version_rank           smallint NOT NULL,
    version_event          text NOT NULL,
    recorded_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subscription_ref, version_at, version_rank, version_event)
);
CREATE INDEX subscription_versions_customer_idx ON subscription_versions (customer_ref, version_at);

-- MRR movements, derived from subscription_versions (billing.DeriveMovements).
CREATE TABLE mrr_movements (
    id                   bigserial PRIMARY KEY,
    customer_ref         uuid NOT NULL,
    subscription_ref     uuid NULL,
    livemode             boolean NOT NULL,
    currency             text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    effective_at         timestamptz NOT NULL,
    kind                 text NOT NULL CHECK (kind IN ('new', 'expansion', 'contraction', 'churn', 'reactivation')),
    delta_minor          bigint NOT NULL,
    customer_mrr_before  bigint NOT NULL,
    customer_mrr_after   bigint NOT NULL
);
CREATE INDEX mrr_movements_time_idx ON mrr_movements (livemode, currency, effective_at);
CREATE INDEX mrr_movements_customer_idx ON mrr_movements (customer_ref, effective_at);

-- Durable outbox: ProfitWell sync and Stripe jobs. Payloads carry aliases and
-- billing facts only.
CREATE TABLE outbox (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('profitwell', 'stripe')),
    ordering_key     text NOT NULL CHECK (length(ordering_key) <= 80),
    action           text NOT NULL CHECK (length(action) <= 40),
    payload          jsonb NOT NULL,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      integer NULL,
    last_error       text NULL CHECK (length(last_error) <= 500),
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz NULL
);
CREATE INDEX outbox_pending_idx ON outbox (kind, next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_ordering_idx ON outbox (ordering_key, id) WHERE state <> 'sent';

-- Erasure tombstones: keyed hashes of erased Stripe IDs, never the IDs.
CREATE TABLE tombstones (
    subject_hmac  bytea PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('customer', 'subscription')),
    deleted_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    scope         text NOT NULL CHECK (scope IN ('app', 'finance')),
    token_hash    bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz NULL,
    revoked_at    timestamptz NULL
);

CREATE TABLE audit_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL CHECK (length(actor) <= 80),
    action        text NOT NULL CHECK (length(action) <= 60),
    subject_hmac  bytea NULL,
    details       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_subject_idx ON audit_log (subject_hmac);

-- Keys billingd generates for itself when none is configured (e.g. the
-- erasure HMAC key), so that every replica derives the same hashes.
-- IF NOT EXISTS: rolling this migration back keeps the table and its keys
-- (0001_init.down.sql), so applying it again must find them.
CREATE TABLE IF NOT EXISTS instance_keys (
    name        text PRIMARY KEY CHECK (length(name) <= 60),
    key         bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
