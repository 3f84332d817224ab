-- Invoice facts (invoice.paid / invoice.payment_failed) that arrive before
-- their subscription: Stripe does not order deliveries, and dropping them
-- would make the final state depend on delivery order. They wait here until
-- the subscription's first version is written, which folds them into the
-- subscriptions row and deletes them, in the same transaction. Keyed to the
-- customer row, so erasing the customer deletes them too.
CREATE TABLE pending_invoice_facts (
    stripe_subscription_id text PRIMARY KEY CHECK (stripe_subscription_id ~ '^sub_[A-Za-z0-9]{1,250}$'),
    stripe_customer_id     text NOT NULL REFERENCES customers (stripe_customer_id) ON DELETE CASCADE,
    latest_invoice_status  text NOT NULL CHECK (latest_invoice_status IN ('paid', 'payment_failed')),
    invoice_attempt_count  integer NOT NULL DEFAULT 0,
    next_payment_attempt   timestamptz NULL,
    invoice_version_at     timestamptz NOT NULL,
    received_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_invoice_facts_customer_idx ON pending_invoice_facts (stripe_customer_id);
