-- The movers list (GET /v1/metrics/movements) pages newest first by
-- (effective_at, id): this index replaces mrr_movements_time_idx with one
-- that has id in its key and every column a page shows, so a page is a
-- backward index-only range scan that stops after its rows, with no sort
-- and no heap visits. The revenue reports' raw tail (livemode,
-- effective_at) reads it as before. One index replaced by one: the event
-- path's inserts maintain as many indexes as before.
--
-- Compatible with every older binary: indexes only.
CREATE INDEX mrr_movements_movers_idx ON mrr_movements (livemode, effective_at, id)
    INCLUDE (currency, kind, delta_minor, customer_ref, customer_mrr_before, customer_mrr_after);
DROP INDEX mrr_movements_time_idx;
