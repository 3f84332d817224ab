-- Progress of the missed-event sweeper (`billingd stripe sweep`,
-- SWEEP_INTERVAL): per key mode and per group of at most 20 event types
-- (one Events API filter), the newest event applied so far. The next sweep
-- lists the events after it, oldest first. Event IDs and types only: no
-- customer, subscription or account ID, nothing erasure has to scrub.
CREATE TABLE stripe_sweep_cursors (
    livemode       boolean NOT NULL,
    event_types    text NOT NULL CHECK (length(event_types) <= 4000),
    event_id       text NULL CHECK (length(event_id) <= 255),
    event_created  timestamptz NULL,
    completed_at   timestamptz NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (livemode, event_types)
);
