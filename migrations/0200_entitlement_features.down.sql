DELETE FROM cache_invalidations WHERE kind = 3;
ALTER TABLE cache_invalidations DROP CONSTRAINT cache_invalidations_kind_check;
ALTER TABLE cache_invalidations ADD CONSTRAINT cache_invalidations_kind_check CHECK (kind IN (1, 2));
ALTER TABLE subscriptions DROP COLUMN pending_update;
DROP TABLE subscription_schedules;
DROP TABLE stripe_entitlement_summaries;
DROP TABLE account_overrides;
DROP TABLE entitlement_catalog;
