-- Partitioned backfill: `billingd stripe backfill` splits each Stripe list
-- by creation time and walks the parts in parallel (up to
-- STRIPE_READ_RATE). Each row is one part: objects created in
-- [created_gte, created_lte], NULL meaning open on that side; created_lte
-- moves down as pages are applied (Stripe lists newest first), so an
-- interrupted run resumes every part where it stopped. Parts are split
-- while they run (a new row takes the older half, the running one's
-- created_gte rises): they never leave a gap, and an overlap after a crash
-- only lists some objects twice (applying an unchanged object changes
-- nothing). Times and counts only, no Stripe IDs. Rows are deleted when a
-- run completes, with backfill_cursors.
--
-- Compatible with every older binary (migrations/README.md): a new table
-- older binaries never read. No oldest-compatible-binary line.
CREATE TABLE backfill_partitions (
    list         text NOT NULL CHECK (list IN ('customers', 'subscriptions')),
    part         integer NOT NULL CHECK (part >= 0),
    created_gte  timestamptz NULL,
    created_lte  timestamptz NULL,
    done         boolean NOT NULL DEFAULT false,
    objects      bigint NOT NULL DEFAULT 0 CHECK (objects >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list, part)
);
