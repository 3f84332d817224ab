package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
)

// Stripe test clocks (stripe_test_clocks, customers.test_clock_id). A
// clock only moves forward, so its frozen time is the latest any event
// reported, whatever order they arrive in; its status is the newest
// event's, and a deleted clock stays deleted.

// qTestClock records a clock event.
const qTestClock = `
INSERT INTO stripe_test_clocks AS k (test_clock_id, frozen_time, status, version_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (test_clock_id) DO UPDATE SET
    frozen_time = GREATEST(k.frozen_time, EXCLUDED.frozen_time),
    status      = CASE WHEN k.status = 'deleted' THEN k.status
                       WHEN EXCLUDED.version_at >= k.version_at THEN EXCLUDED.status
                       ELSE k.status END,
    version_at  = GREATEST(k.version_at, EXCLUDED.version_at),
    updated_at  = now()`

// qTestClockAccounts lists the accounts with a customer on a clock: their
// entitlement answers change when the clock moves.
const qTestClockAccounts = `
SELECT DISTINCT account_id FROM customers
WHERE test_clock_id = $1 AND account_id IS NOT NULL
ORDER BY account_id`

// applyTestClock records a test_helpers.test_clock.* event and tells the
// caches of every account on the clock that their answers changed.
func applyTestClock(ctx context.Context, tx ptx, at time.Time, c *billing.TestClock) (billing.Outcome, error) {
	if _, err := tx.ExecContext(ctx, qTestClock, c.ID, c.FrozenTime, string(c.Status), at); err != nil {
		return "", fmt.Errorf("record test clock: %w", translate(err))
	}
	var accounts []string
	if err := tx.SelectContext(ctx, &accounts, qTestClockAccounts, c.ID); err != nil {
		return "", fmt.Errorf("read test clock accounts: %w", translate(err))
	}
	for _, a := range accounts {
		if err := notifyAccountChange(ctx, tx, tx.changed, a); err != nil {
			return "", fmt.Errorf("notify account change: %w", err)
		}
	}
	return billing.OutcomeApplied, nil
}

// qCustomerTestClock puts a customer on its clock. Stripe never moves a
// customer to another clock, so a recorded one is only ever set, never
// cleared; it returns the customer's account when the clock was new to it.
const qCustomerTestClock = `
UPDATE customers SET test_clock_id = $2, updated_at = now()
WHERE stripe_customer_id = $1 AND test_clock_id IS DISTINCT FROM $2 AND livemode IS NOT TRUE
RETURNING account_id`

// recordCustomerTestClock records the clock of a customer (its own event
// or one of its subscriptions') on its locked row, and tells its account's
// caches: from now on the account is judged at the clock's time.
func recordCustomerTestClock(ctx context.Context, tx ptx, customerID, clock string) error {
	if clock == "" {
		return nil
	}
	var accounts []*string
	if err := tx.SelectContext(ctx, &accounts, qCustomerTestClock, customerID, clock); err != nil {
		return fmt.Errorf("record customer test clock: %w", translate(err))
	}
	for _, a := range accounts {
		if a != nil {
			if err := notifyAccountChange(ctx, tx, tx.changed, *a); err != nil {
				return fmt.Errorf("notify account change: %w", err)
			}
		}
	}
	return nil
}

// TestClockTime returns a clock's recorded frozen time; ok is false for a
// clock billingd has heard nothing of.
func (s *Store) TestClockTime(ctx context.Context, id string) (frozen time.Time, ok bool, err error) {
	const q = `SELECT frozen_time FROM stripe_test_clocks WHERE test_clock_id = $1`
	if err := s.db.GetContext(ctx, &frozen, q, id); err != nil {
		if err == errNoRows {
			return time.Time{}, false, nil
		}
		return time.Time{}, false, fmt.Errorf("read test clock: %w", translate(err))
	}
	return frozen.UTC(), true, nil
}
