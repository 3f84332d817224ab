-- The merchant's catalog (issue 20 item 2): product names and price
-- nicknames from product.* and price.* events and backfill, so screens
-- can say "Pro (yearly)". Merchant catalog data, never customer data.
-- Each row keeps its newest version (version_at, then version_event):
-- any delivery order ends the same.
--
-- Compatible with every older binary (new tables and a view). No
-- oldest-compatible-binary line.
CREATE TABLE catalog_products (
    product_id     text PRIMARY KEY CHECK (product_id ~ '^[A-Za-z0-9_.:-]{1,255}$'),
    livemode       boolean NOT NULL,
    name           text NULL CHECK (length(name) <= 480),
    active         boolean NOT NULL,
    deleted        boolean NOT NULL DEFAULT false,
    version_at     timestamptz NOT NULL,
    version_event  text NOT NULL CHECK (length(version_event) <= 255),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE catalog_prices (
    price_id        text PRIMARY KEY CHECK (price_id ~ '^[A-Za-z0-9_.:-]{1,255}$'),
    livemode        boolean NOT NULL,
    product_id      text NULL CHECK (product_id ~ '^[A-Za-z0-9_.:-]{1,255}$'),
    nickname        text NULL CHECK (length(nickname) <= 480),
    currency        text NULL CHECK (currency ~ '^[a-z]{3}$'),
    unit_amount     bigint NULL,
    interval        text NULL CHECK (interval IN ('day', 'week', 'month', 'year')),
    interval_count  integer NULL,
    usage_type      text NULL CHECK (usage_type IN ('licensed', 'metered')),
    billing_scheme  text NULL CHECK (billing_scheme IN ('per_unit', 'tiered')),
    tax_behavior    text NULL CHECK (tax_behavior IN ('inclusive', 'exclusive', 'unspecified')),
    active          boolean NOT NULL,
    deleted         boolean NOT NULL DEFAULT false,
    version_at      timestamptz NOT NULL,
    version_event   text NOT NULL CHECK (length(version_event) <= 255),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_prices_product_idx ON catalog_prices (product_id);

-- catalog_plan_names is the one definition of how a price is named on
-- screens and in reports (join it on price_id): the product's name (else
-- its ID, else the price's ID), then the price's nickname or its billing
-- interval in brackets: "Pro (yearly)", "Pro (every 3 months)",
-- "Pro (Founders)".
CREATE VIEW catalog_plan_names AS
SELECT p.price_id, p.livemode, coalesce(p.product_id, '') AS product_id, coalesce(pr.name, '') AS product_name,
       coalesce(p.nickname, '') AS nickname, coalesce(p.currency, '') AS currency, coalesce(p.interval, '') AS interval,
       coalesce(NULLIF(pr.name, ''), p.product_id, p.price_id) || coalesce(' (' || coalesce(NULLIF(p.nickname, ''),
           CASE WHEN coalesce(p.interval_count, 1) > 1 THEN 'every ' || p.interval_count || ' ' || p.interval || 's'
                WHEN p.interval = 'day' THEN 'daily' WHEN p.interval = 'week' THEN 'weekly'
                WHEN p.interval = 'month' THEN 'monthly' WHEN p.interval = 'year' THEN 'yearly' END) || ')', '') AS plan_name
FROM catalog_prices p
LEFT JOIN catalog_products pr ON pr.product_id = p.product_id;
