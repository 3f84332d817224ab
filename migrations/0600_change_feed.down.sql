DELETE FROM outbox WHERE kind = 'app_webhook';
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('profitwell', 'stripe'));
DROP TABLE entitlement_feed;
DROP TABLE entitlement_changes;
DROP TABLE entitlement_feed_state;
DROP TABLE entitlement_dirty;
