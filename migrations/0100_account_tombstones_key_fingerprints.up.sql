-- Erasure is permanent for the account too, and keys cannot change
-- silently.
--
-- Account tombstones: erasing an account also records the keyed hash of its
-- ID (the same HMAC as tombstones and audit_log.subject_hmac), so no hint
-- links anything to it again. An app that reuses the ID on purpose
-- (PUT .../billing with reuse_erased_account) sets reused_at: API links
-- work again, hints still never do. A table of their own rather than a kind
-- of tombstones: an account ID may equal a customer ID (an app that uses
-- Stripe's), and binaries from before this migration keep working on the
-- tombstones table unchanged (they write it with ON CONFLICT (subject_hmac)).
CREATE TABLE account_tombstones (
    subject_hmac  bytea PRIMARY KEY,
    erased_at     timestamptz NOT NULL DEFAULT now(),
    reused_at     timestamptz NULL
);

-- Accounts erased before this migration: each erasure's audit entry names
-- the account by the same keyed hash (erasure key), so their tombstones can
-- be written now, and hints naming them are refused from the upgrade on.
-- Links made to them again since (by the hints this fixes, or by the app)
-- are left in place; a new API link then needs reuse_erased_account once.
INSERT INTO account_tombstones (subject_hmac, erased_at)
SELECT subject_hmac, max(at) FROM audit_log
WHERE action = 'account.erase' AND subject_hmac IS NOT NULL
GROUP BY subject_hmac;

-- Fingerprints (HMAC(key, "billingd key fingerprint"), truncated; never
-- the key) of the keys that made what billingd keeps or handed out:
-- erasure keys that wrote tombstones and audit subjects, link keys that
-- signed references still valid, the ProfitWell alias key. billingd
-- refuses to start when its configured keys no longer include one it
-- still needs.
CREATE TABLE key_fingerprints (
    purpose        text NOT NULL CHECK (purpose IN ('erasure', 'link_signing', 'profitwell_alias')),
    fingerprint    text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]+$' AND char_length(fingerprint) = 32),
    first_used_at  timestamptz NOT NULL DEFAULT now(),
    valid_until    timestamptz NULL,
    legacy_until   timestamptz NULL,
    PRIMARY KEY (purpose, fingerprint)
);
