CREATE INDEX mrr_movements_time_idx ON mrr_movements (livemode, effective_at) INCLUDE (currency, kind, delta_minor);
DROP INDEX mrr_movements_movers_idx;
