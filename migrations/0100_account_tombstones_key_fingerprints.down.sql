-- Account tombstones cannot be kept by the older schema (one kind per
-- hash); dropping them means hints may link erased accounts again, which
-- is why the upgrade added them.
DROP TABLE key_fingerprints;
DELETE FROM tombstones WHERE kind = 'account';
ALTER TABLE tombstones DROP CONSTRAINT tombstones_reused_check, DROP COLUMN reused_at;
ALTER TABLE tombstones DROP CONSTRAINT tombstones_kind_check,
    ADD CONSTRAINT tombstones_kind_check CHECK (kind IN ('customer', 'subscription'));
ALTER TABLE tombstones DROP CONSTRAINT tombstones_pkey;
ALTER TABLE tombstones ADD PRIMARY KEY (subject_hmac);
