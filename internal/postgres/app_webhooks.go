package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Outbound app webhooks are outbox rows of kind app_webhook (payload
// {"seq": N}: the feed entry to send), appended by the producer pass with
// their entry. The worker (appwebhook) claims and acknowledges them in
// batches, each in one transaction committed without waiting for the WAL
// flush (synchronous_commit off): delivery is at least once anyway, so a
// claim or an acknowledgement lost in a crash only means one more send,
// and the event path, which waits for its flushes, does not share them
// with a stream of small delivery commits.

// AppWebhookClaim claims up to limit due app webhook rows, at most one per
// account (OutboxClaim's rules: a row waits while an earlier one of its
// account is pending), leasing them for lease.
func (s *Store) AppWebhookClaim(ctx context.Context, limit int, lease time.Duration) ([]billing.OutboxJob, error) {
	var jobs []billing.OutboxJob
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return fmt.Errorf("claim app webhooks: %w", translate(err))
		}
		var err error
		jobs, err = outboxClaim(ctx, tx, billing.OutboxAppWebhook, limit, lease)
		return err
	})
	if err != nil {
		return nil, err
	}
	return jobs, nil
}

// AppWebhookAck records the outcomes of claimed rows in one transaction:
// delivered rows are deleted (the feed keeps the entry), others are
// scheduled again or dead-lettered. A row re-claimed since (its attempt
// count moved on) is left alone. It returns how many rows it changed.
func (s *Store) AppWebhookAck(ctx context.Context, acks []billing.OutboxAck) (int64, error) {
	if len(acks) == 0 {
		return 0, nil
	}
	const q = `
WITH u AS (
    SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::float8[], $5::int[], $6::text[])
        AS u(id, attempt, outcome, delay, status, err)
), sent AS (
    DELETE FROM outbox o USING u
    WHERE o.id = u.id AND o.attempts = u.attempt AND o.state = 'pending' AND u.outcome = 'sent'
    RETURNING 1
), other AS (
    UPDATE outbox o
    SET state = CASE WHEN u.outcome = 'dead' THEN 'dead' ELSE 'pending' END,
        next_attempt_at = CASE WHEN u.outcome = 'retry' THEN now() + make_interval(secs => u.delay) ELSE o.next_attempt_at END,
        last_status = NULLIF(u.status, 0), last_error = NULLIF(u.err, '')
    FROM u
    WHERE o.id = u.id AND o.attempts = u.attempt AND o.state = 'pending' AND u.outcome <> 'sent'
    RETURNING 1
)
SELECT (SELECT count(*) FROM sent) + (SELECT count(*) FROM other)`
	ids, attempts, outcomes, delays, statuses, errs := []int64{}, []int64{}, []string{}, []float64{}, []int64{}, []string{}
	for _, a := range acks {
		switch a.Outcome {
		case billing.AckSent, billing.AckRetry, billing.AckDead:
		default:
			return 0, fmt.Errorf("acknowledge app webhooks: unknown outcome %q: %w", a.Outcome, billing.ErrInvalid)
		}
		ids, attempts, outcomes = append(ids, a.ID), append(attempts, int64(a.Attempt)), append(outcomes, string(a.Outcome))
		delays, statuses, errs = append(delays, a.Delay.Seconds()), append(statuses, int64(a.Status)), append(errs, clip(a.Error))
	}
	var n int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return fmt.Errorf("acknowledge app webhooks: %w", translate(err))
		}
		if err := tx.GetContext(ctx, &n, q, pq.Array(ids), pq.Array(attempts), pq.Array(outcomes), pq.Array(delays),
			pq.Array(statuses), pq.Array(errs)); err != nil {
			return fmt.Errorf("acknowledge app webhooks: %w", translate(err))
		}
		return nil
	})
	return n, err
}

// AppWebhookRetryDead puts dead app webhooks back in the queue (the one
// with ID id, or all when id is 0) with a fresh attempt budget and a fresh
// retry window: the worker dead-letters by the row's age (3 days), so the
// age restarts with the retry. Unknown or not-dead id: billing.ErrNotFound.
func (s *Store) AppWebhookRetryDead(ctx context.Context, id int64) (int64, error) {
	const q = `
UPDATE outbox
SET state = 'pending', attempts = 0, next_attempt_at = now(), created_at = now()
WHERE kind = 'app_webhook' AND state = 'dead' AND ($1 = 0 OR id = $1)`
	res, err := s.db.ExecContext(ctx, q, id)
	if err != nil {
		return 0, fmt.Errorf("retry dead app webhooks: %w", translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("retry dead app webhooks: %w", translate(err))
	}
	if id != 0 && n == 0 {
		return 0, fmt.Errorf("retry dead app webhook %d: no dead app webhook with that ID: %w", id, billing.ErrNotFound)
	}
	return n, nil
}
