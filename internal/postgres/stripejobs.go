package postgres

import "context"

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
