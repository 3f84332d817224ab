-- Dropping account tombstones means hints may link erased accounts again,
-- which is why the upgrade added them; running the migration again
-- rewrites them from the erasure audit entries.
DROP TABLE key_fingerprints;
DROP TABLE account_tombstones;
