package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// Stripe jobs (outbox rows of kind "stripe") hold the Stripe ID they act on
// only until Stripe confirms: then the payload is replaced with {} so no
// cus_/sub_ ID outlives the job. A job Stripe refuses keeps its ID while it
// is dead: the erasure in Stripe is not done yet, and `billingd stripe-jobs
// retry` must be able to finish it. Claiming and retries use the generic
// outbox API (OutboxClaim, OutboxRetryLater, OutboxRetryDead).

// StripeJobDone records a job Stripe confirmed (or answered 404: the object
// is already gone) and scrubs its payload. attempt is the claimed job's
// Attempts; a lost lease gives billing.ErrConflict and changes nothing.
func (s *Store) StripeJobDone(ctx context.Context, id int64, attempt, status int) error {
	const q = `
UPDATE outbox
SET state = 'sent', sent_at = now(), payload = '{}', last_status = $3, last_error = NULL
WHERE id = $1 AND attempts = $2 AND state = 'pending' AND kind = 'stripe'`
	return s.outboxOutcome(ctx, "mark stripe job done", q, id, attempt, nullStatus(status))
}

// StripeJobDead stops retrying a job Stripe refuses (an invalid request,
// not an outage) until an operator re-queues it. The payload is kept: the
// Stripe-side erasure is unfinished and the ID is what finishes it (a
// dead-letter that forgot it could never be completed). summary must hold
// no ID.
func (s *Store) StripeJobDead(ctx context.Context, id int64, attempt, status int, summary string) error {
	const q = `
UPDATE outbox
SET state = 'dead', last_status = $3, last_error = $4
WHERE id = $1 AND attempts = $2 AND state = 'pending' AND kind = 'stripe'`
	return s.outboxOutcome(ctx, "dead-letter stripe job", q, id, attempt, nullStatus(status), clip(summary))
}

// ResolveDiscounts records the amounts of discounts that arrived as bare
// IDs (discount_resolutions) and re-derives the whole ledger of the
// customer that listed them, both modes, in one transaction that holds the
// customer's row lock as the event path does: a concurrent event of the
// customer sees the amounts, or waits. An unknown or erased customer only
// gets the amounts recorded (an erased one's history keeps its refs, and
// `billingd metrics rebuild` uses the amounts).
func (s *Store) ResolveDiscounts(ctx context.Context, customerID string, rs []billing.DiscountResolution) error {
	const qIns = `
INSERT INTO discount_resolutions (discount_id, percent_off_bp, amount_off, currency, duration, start_at, end_at)
VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6, $7)
ON CONFLICT (discount_id) DO UPDATE SET percent_off_bp = EXCLUDED.percent_off_bp, amount_off = EXCLUDED.amount_off,
    currency = EXCLUDED.currency, duration = EXCLUDED.duration, start_at = EXCLUDED.start_at,
    end_at = EXCLUDED.end_at, resolved_at = now()`
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		for _, r := range rs {
			if _, err := tx.ExecContext(ctx, qIns, r.DiscountID, min(max(r.PercentOffBP, 0), 10000), max(r.AmountOff, 0),
				r.Currency, r.Duration, r.Start, r.End); err != nil {
				return fmt.Errorf("record discount resolution: %w", translate(err))
			}
		}
		var refs []string
		const lock = `SELECT customer_ref::text FROM customers WHERE stripe_customer_id = $1 FOR UPDATE`
		if err := tx.SelectContext(ctx, &refs, lock, customerID); err != nil {
			return fmt.Errorf("resolve discounts: lock customer: %w", translate(err))
		}
		for _, ref := range refs {
			for _, live := range []bool{true, false} {
				if err := recomputeMovements(ctx, tx, ref, live, time.Time{}); err != nil {
					return fmt.Errorf("resolve discounts: %w", err)
				}
			}
		}
		return nil
	})
}
