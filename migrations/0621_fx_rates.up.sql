-- Daily reference exchange rates for the reporting currency
-- (REPORTING_CURRENCY): units of `currency` per 1 EUR on `day`, as the ECB
-- publishes them (`billingd fx import`, PUT /v1/fx/rates). Market data, no
-- customer data. Compatible with every older binary: a new table.
CREATE TABLE fx_rates (
    day         date NOT NULL,
    currency    text NOT NULL CHECK (currency ~ '^[a-z]{3}$' AND currency <> 'eur'),
    per_eur     numeric NOT NULL CHECK (per_eur > 0),
    source      text NOT NULL CHECK (source IN ('import', 'api')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (currency, day)
);
