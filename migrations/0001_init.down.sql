-- instance_keys is never dropped, whatever is rolled back: tombstones and
-- audit subjects are made with its keys, and a replica started after a
-- rollback must find the same ones (the up migration creates the table
-- only if it is missing).
DROP TABLE IF EXISTS audit_log;
DROP TABLE IF EXISTS api_tokens;
DROP TABLE IF EXISTS tombstones;
DROP TABLE IF EXISTS outbox;
DROP TABLE IF EXISTS mrr_movements;
DROP TABLE IF EXISTS subscription_versions;
DROP TABLE IF EXISTS subscriptions;
DROP TABLE IF EXISTS customers;
DROP TABLE IF EXISTS stripe_events;
