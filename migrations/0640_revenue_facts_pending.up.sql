-- The customers whose revenue facts (revenue_facts, migration 0620) are to
-- be derived again: the event transaction appends one row per customer and
-- mode whose ledger it rewrote, with the time from which the facts change,
-- and a background deriver on every replica (internal/postgres/
-- revenue_facts_deriver.go) claims rows with SKIP LOCKED, derives the
-- facts from subscription_versions under the customer's ledger lock and
-- deletes the rows. Deriving the facts inside the event transaction cost
-- the ingest path about a quarter of its throughput; an append is cheap.
--
-- Compatible with every older binary: a new table (older binaries leave it
-- empty).
--
-- An upgrade from a release before 0620 has history but no facts: every
-- customer with stored history is queued once, from the beginning, and the
-- deriver works through them in the background
-- (billingd_revenue_facts_pending counts what is left), so segment, cohort
-- and trial reports fill in by themselves instead of waiting for an
-- operator to run `billingd metrics rebuild`.
CREATE TABLE revenue_facts_pending (
    id            bigserial PRIMARY KEY,
    customer_ref  uuid NOT NULL,
    livemode      boolean NOT NULL,
    since         timestamptz NOT NULL,
    queued_at     timestamptz NOT NULL DEFAULT now()
);
-- Erasure re-keys a customer's pending rows; a ledger rebuild drops them.
CREATE INDEX revenue_facts_pending_customer_idx ON revenue_facts_pending (customer_ref);

INSERT INTO revenue_facts_pending (customer_ref, livemode, since)
SELECT customer_ref, livemode, timestamptz '1970-01-01 00:00:00+00'
FROM subscription_versions
WHERE customer_ref IS NOT NULL
GROUP BY customer_ref, livemode
ORDER BY customer_ref, livemode;
