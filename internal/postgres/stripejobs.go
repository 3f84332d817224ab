package postgres

import "context"

// Stripe jobs (outbox rows of kind "stripe") hold the Stripe ID they act on
// only until Stripe confirms: both outcomes below replace the payload with
// {} so no cus_/sub_ ID outlives the job. Claiming and retries use the
// generic outbox API (OutboxClaim, OutboxRetryLater).

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

// StripeJobDead gives up on a job Stripe refuses for good (an invalid
// request, not an outage) and scrubs its payload: keeping the ID would not
// make the request valid. summary must hold no ID.
func (s *Store) StripeJobDead(ctx context.Context, id int64, attempt, status int, summary string) error {
	const q = `
UPDATE outbox
SET state = 'dead', payload = '{}', last_status = $3, last_error = $4
WHERE id = $1 AND attempts = $2 AND state = 'pending' AND kind = 'stripe'`
	return s.outboxOutcome(ctx, "dead-letter stripe job", q, id, attempt, nullStatus(status), clip(summary))
}
