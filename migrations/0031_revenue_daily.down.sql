DROP INDEX subscription_activity_time_idx;
CREATE INDEX subscription_activity_time_idx ON subscription_activity (livemode, currency, effective_at) INCLUDE (delta);
DROP INDEX mrr_movements_time_idx;
CREATE INDEX mrr_movements_time_idx ON mrr_movements (livemode, currency, effective_at) INCLUDE (kind, delta_minor);
DROP TABLE revenue_daily;
