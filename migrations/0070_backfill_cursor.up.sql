-- Backfill progress, so an interrupted `billingd stripe backfill`
-- resumes where it stopped. Stripe lists newest first; the cursor is the
-- creation time of the oldest object already applied, so a resumed run
-- lists created[lte] that second. A time, not a Stripe ID: the table never
-- holds an identifier that erasure would have to scrub. Rows are deleted
-- when a run completes.
CREATE TABLE backfill_cursors (
    list         text PRIMARY KEY CHECK (list IN ('customers', 'subscriptions')),
    created_lte  timestamptz NULL,
    done         boolean NOT NULL DEFAULT false,
    objects      bigint NOT NULL DEFAULT 0 CHECK (objects >= 0),
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
