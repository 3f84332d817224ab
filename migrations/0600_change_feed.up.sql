-- The change feed (GET /v1/changes) and outbound app webhooks (issue 19).
--
-- entitlement_dirty: accounts whose entitlement may have changed, written in
-- the changing transaction (next to its cache invalidation) and consumed by
-- the feed producer, which deletes what it read. A row is visible only once
-- its transaction committed, whatever the commit order, and stays until a
-- producer consumed it: nothing is skipped.
CREATE TABLE entitlement_dirty (
    id          bigserial PRIMARY KEY,
    account_id  text NOT NULL CHECK (length(account_id) <= 128)
);
CREATE INDEX entitlement_dirty_account_idx ON entitlement_dirty (account_id);

-- entitlement_feed_state: the answer last put in the feed per account and
-- mode (its SHA-256), so that only a change of the answer makes an entry,
-- and when time alone changes it next (a grace period or a scheduled
-- cancellation ending).
CREATE TABLE entitlement_feed_state (
    account_id  text NOT NULL CHECK (length(account_id) <= 128),
    livemode    boolean NOT NULL,
    answer_hash bytea NOT NULL,
    recheck_at  timestamptz NULL,
    PRIMARY KEY (account_id, livemode)
);
CREATE INDEX entitlement_feed_state_recheck_idx ON entitlement_feed_state (recheck_at) WHERE recheck_at IS NOT NULL;

-- entitlement_changes: the feed. seq is assigned by the one producer that
-- holds the feed lock, and its transaction commits before the next
-- producer's begins, so seq order is commit order: a reader that saw seq N
-- never later finds an entry below N.
CREATE TABLE entitlement_changes (
    seq         bigserial PRIMARY KEY,
    account_id  text NOT NULL CHECK (length(account_id) <= 128),
    livemode    boolean NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    entitlement text NOT NULL
);
CREATE INDEX entitlement_changes_account_idx ON entitlement_changes (account_id);
CREATE INDEX entitlement_changes_at_idx ON entitlement_changes USING brin (at);

-- entitlement_feed: one row, the highest seq purged (CHANGES_RETENTION): a
-- cursor below it has lost entries (410 cursor_expired).
CREATE TABLE entitlement_feed (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    purged_through bigint NOT NULL DEFAULT 0
);
INSERT INTO entitlement_feed DEFAULT VALUES;

-- Outbound app webhooks go through the outbox (kind app_webhook).
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('profitwell', 'stripe', 'app_webhook'));
