-- Stripe test clocks (test mode only): each clock's simulated time, from
-- test_helpers.test_clock.* events, and the clock a customer is on, so
-- entitlement of objects on a clock is judged at the clock's time.
-- Clock IDs and times only; a clock's name (free text) is never stored.
CREATE TABLE stripe_test_clocks (
    test_clock_id  text PRIMARY KEY CHECK (length(test_clock_id) <= 255),
    frozen_time    timestamptz NOT NULL,
    status         text NOT NULL CHECK (status IN ('ready', 'advancing', 'internal_failure', 'deleted')),
    version_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Nullable, no default: older binaries neither read nor write it.
ALTER TABLE customers ADD COLUMN test_clock_id text NULL CHECK (length(test_clock_id) <= 255);
CREATE INDEX customers_test_clock_idx ON customers (test_clock_id) WHERE test_clock_id IS NOT NULL;
