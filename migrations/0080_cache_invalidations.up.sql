-- Durable cache-invalidation feed, replacing NOTIFY on the event path.
-- NOTIFY takes a database-wide lock from pre-commit until the commit record
-- is flushed, so every transaction that notifies commits one at a time
-- (measured here: 21,300 → 3,800 tx/s at concurrency 32). Rows here cost an
-- ordinary insert. Replicas read them by transaction ID window (see
-- internal/postgres/invalidations.go), so nothing is lost while a replica is
-- disconnected. The account is named by a 16-bit bucket of its ID, never
-- the ID, and rows live minutes: erasure leaves no account ID behind.
CREATE TABLE cache_invalidations (
    id      bigserial PRIMARY KEY,
    xid     xid8 NOT NULL DEFAULT pg_current_xact_id(),
    kind    smallint NOT NULL CHECK (kind IN (1, 2)), -- 1 account, 2 token
    bucket  integer NOT NULL CHECK (bucket BETWEEN 0 AND 65535),
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cache_invalidations_xid_idx ON cache_invalidations (xid);
-- BRIN: rows arrive in time order, and a btree would add a hot right-most
-- page on every insert only for the once-a-minute purge.
CREATE INDEX cache_invalidations_at_idx ON cache_invalidations USING brin (at);
