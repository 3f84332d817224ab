DROP INDEX mrr_movements_time_idx;
CREATE INDEX mrr_movements_time_idx ON mrr_movements (livemode, currency, effective_at);
DROP TABLE subscription_activity;
