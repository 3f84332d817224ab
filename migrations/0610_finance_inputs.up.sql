-- What a subscription's own versions do not say about its revenue (issue 20
-- items 1 and 7): automatic tax on the subscription, the customer-level
-- discount history, the amounts of discounts that arrived as bare IDs, and
-- the paid amounts of subscription invoice lines. Like subscription_versions
-- they are inputs of the derived ledger (billing.DeriveCustomerLedger), keyed
-- by surrogate references, never by Stripe customer or subscription IDs.
--
-- Compatible with every older binary (new tables, new columns with
-- defaults). No oldest-compatible-binary line.
ALTER TABLE subscriptions ADD COLUMN automatic_tax boolean NOT NULL DEFAULT false;
ALTER TABLE subscription_versions ADD COLUMN automatic_tax boolean NOT NULL DEFAULT false;

-- One row per customer event that told the customer's own discount
-- (customer objects, customer.discount.*): the discounts from version_at on.
CREATE TABLE customer_discount_versions (
    customer_ref   uuid NOT NULL,
    livemode       boolean NOT NULL,
    version_at     timestamptz NOT NULL,
    version_event  text NOT NULL CHECK (length(version_event) <= 255),
    discounts      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(discounts) = 'array'),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_ref, livemode, version_at, version_event)
);

-- The coupon amounts of discounts that arrived as bare IDs (2025-03-31+
-- shapes), fetched once by a Stripe job (resolve_discounts).
CREATE TABLE discount_resolutions (
    discount_id     text PRIMARY KEY CHECK (discount_id ~ '^di_[A-Za-z0-9]{1,250}$'),
    percent_off_bp  bigint NOT NULL DEFAULT 0 CHECK (percent_off_bp BETWEEN 0 AND 10000),
    amount_off      bigint NOT NULL DEFAULT 0 CHECK (amount_off >= 0),
    currency        text NULL CHECK (currency ~ '^[a-z]{3}$'),
    duration        text NULL CHECK (duration IN ('once', 'repeating', 'forever')),
    start_at        timestamptz NULL,
    end_at          timestamptz NULL,
    resolved_at     timestamptz NOT NULL DEFAULT now()
);

-- Paid subscription invoice lines, per customer, price and billing period
-- (a subscription has at most one item per price): amounts only, never a
-- line's description. usage_kind says whether the line bills a metered or
-- tiered price (usage revenue) or a fixed one (whose tax share feeds the
-- MRR of automatic-tax inclusive prices).
CREATE TABLE invoice_line_amounts (
    customer_ref      uuid NOT NULL,
    subscription_ref  uuid NULL,
    livemode          boolean NOT NULL,
    currency          text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    price_id          text NOT NULL CHECK (price_id ~ '^[A-Za-z0-9_.:-]{1,255}$'),
    usage_kind        text NOT NULL CHECK (usage_kind IN ('fixed', 'metered', 'tiered', 'unknown')),
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL,
    amount_minor      bigint NOT NULL,
    net_minor         bigint NOT NULL,
    paid_at           timestamptz NOT NULL,
    PRIMARY KEY (customer_ref, livemode, price_id, period_start, period_end)
);
CREATE INDEX invoice_line_amounts_usage_idx ON invoice_line_amounts (livemode, currency, period_end)
    WHERE usage_kind IN ('metered', 'tiered');

-- billingd_resolve_discounts rewrites a discounts array so that no entry
-- keeps a discount ID: an entry known by ID only takes the amounts
-- resolved for it (discount_resolutions), its own dates first. Erasure
-- runs it on the erased customers' history before re-keying it.
CREATE FUNCTION billingd_resolve_discounts(ds jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(
        CASE WHEN d ? 'id' THEN
            jsonb_strip_nulls(jsonb_build_object(
                'percent_off_bp', NULLIF(r.percent_off_bp, 0), 'amount_off', NULLIF(r.amount_off, 0),
                'currency', r.currency, 'duration', r.duration,
                'start', coalesce(d->'start', to_jsonb(r.start_at)), 'end', coalesce(d->'end', to_jsonb(r.end_at))))
        ELSE d END ORDER BY x.n), '[]'::jsonb)
    FROM jsonb_array_elements(ds) WITH ORDINALITY AS x(d, n)
    LEFT JOIN discount_resolutions r ON r.discount_id = x.d->>'id'
$$;
