-- Dead-lettered outbox rows, counted on every /metrics scrape: without an
-- index the count read the whole outbox, which grows by a row per live
-- event while ProfitWell is off (rows wait), and each scrape grew slower
-- (issue 15: 37 ms → 680 ms per scrape over a 300k-event soak). Dead rows
-- are few, and rows inserted pending never enter a partial index on
-- state = 'dead': the event path pays nothing for it.
CREATE INDEX outbox_dead_idx ON outbox (kind) WHERE state = 'dead';
