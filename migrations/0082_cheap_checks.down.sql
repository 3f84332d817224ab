ALTER TABLE outbox ALTER COLUMN payload SET STATISTICS -1;
ALTER TABLE subscription_versions ALTER COLUMN items SET STATISTICS -1, ALTER COLUMN discounts SET STATISTICS -1;
ALTER TABLE subscriptions ALTER COLUMN items SET STATISTICS -1, ALTER COLUMN discounts SET STATISTICS -1;

ALTER TABLE rate_slots DROP CONSTRAINT rate_slots_name_check,
    ADD CONSTRAINT rate_slots_name_check CHECK (name ~ '^[a-z_]{1,40}$');
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_name_check,
    ADD CONSTRAINT api_tokens_name_check CHECK (name ~ '^[A-Za-z0-9_.:-]{1,64}$');
ALTER TABLE pending_invoice_facts DROP CONSTRAINT pending_invoice_facts_stripe_subscription_id_check,
    ADD CONSTRAINT pending_invoice_facts_stripe_subscription_id_check CHECK (stripe_subscription_id ~ '^sub_[A-Za-z0-9]{1,250}$');
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_stripe_subscription_id_check,
    ADD CONSTRAINT subscriptions_stripe_subscription_id_check CHECK (stripe_subscription_id ~ '^sub_[A-Za-z0-9]{1,250}$');
ALTER TABLE customers DROP CONSTRAINT customers_account_id_check,
    ADD CONSTRAINT customers_account_id_check CHECK (account_id ~ '^[A-Za-z0-9_.:-]{1,128}$'),
    DROP CONSTRAINT customers_stripe_customer_id_check,
    ADD CONSTRAINT customers_stripe_customer_id_check CHECK (stripe_customer_id ~ '^cus_[A-Za-z0-9]{1,250}$');
ALTER TABLE stripe_events DROP CONSTRAINT stripe_events_event_id_check,
    ADD CONSTRAINT stripe_events_event_id_check CHECK (event_id ~ '^evt_[A-Za-z0-9_]{1,250}$');
