package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// MinEventRetention is the shortest time event IDs are kept: Stripe retries
// a delivery for up to three days, and exactly-once needs the ID until then.
const MinEventRetention = 72 * time.Hour

// PurgeLockKey is the session advisory lock that lets one replica purge at
// a time (a one-key lock; the tombstone locks use the two-key space).
const PurgeLockKey int64 = 0x62696c6c70757267 // "billpurg"

// RetentionPolicy says what the purge deletes.
type RetentionPolicy struct {
	// EventRetention: stripe_events rows received longer ago are deleted
	// (WEBHOOK_EVENT_RETENTION_DAYS). Never below MinEventRetention.
	EventRetention time.Duration
	// MetricsRetention: revenue history older than this is deleted
	// (METRICS_RETENTION_DAYS); 0 keeps it forever.
	MetricsRetention time.Duration
	// BatchSize bounds the rows (or customers) deleted per statement, so a
	// purge never holds long locks (default 5000).
	BatchSize int
}

// PurgeResult counts what one purge deleted. Skipped is true when another
// replica was purging.
type PurgeResult struct {
	Skipped   bool  `json:"skipped"`
	Events    int64 `json:"stripe_events"`
	Customers int64 `json:"history_customers"`
	Versions  int64 `json:"subscription_versions"`
	Movements int64 `json:"mrr_movements"`
	Activity  int64 `json:"subscription_activity"`
	Sessions  int64 `json:"dashboard_sessions"`
	// LedgerInputs counts customer_discount_versions and
	// invoice_line_amounts rows purged with the history.
	LedgerInputs int64 `json:"ledger_inputs"`
}

// Purge enforces the retention policy. One replica purges at a time (a
// session advisory lock, tried, not waited for); the others skip. Deletes
// run in small batches, each its own transaction. Dashboard sessions past
// their expiry (refused already) are deleted too.
//
// Revenue history is purged per customer reference and only whole: the
// figures are running sums over the ledger, so deleting a customer's
// movements is safe only when they sum to nothing — the customer churned
// (MRR back to 0, as many churns as new/reactivations, no subscription still
// counted active) and all its history is older than the cutoff. Customers
// whose history is still open keep it all, however old.
func (s *Store) Purge(ctx context.Context, p RetentionPolicy) (PurgeResult, error) {
	var res PurgeResult
	if p.EventRetention < MinEventRetention {
		return res, fmt.Errorf("purge: event retention %s is below Stripe's 3-day retry window: %w", p.EventRetention, billing.ErrInvalid)
	}
	if p.MetricsRetention < 0 {
		return res, fmt.Errorf("purge: negative metrics retention: %w", billing.ErrInvalid)
	}
	if p.BatchSize <= 0 {
		p.BatchSize = 5000
	}
	conn, err := s.sess.Connx(ctx)
	if err != nil {
		return res, fmt.Errorf("purge: connect: %w", translate(err))
	}
	defer conn.Close()
	var got bool
	if err := conn.GetContext(ctx, &got, `SELECT pg_try_advisory_lock($1)`, PurgeLockKey); err != nil {
		return res, fmt.Errorf("purge: lock: %w", translate(err))
	}
	if !got {
		res.Skipped = true
		return res, nil
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, PurgeLockKey) //nolint:errcheck // closing the session releases it too

	if res.Events, err = purgeEvents(ctx, conn, time.Now().Add(-p.EventRetention), p.BatchSize); err != nil {
		return res, err
	}
	if res.Sessions, err = purgeDashboardSessions(ctx, conn, time.Now(), p.BatchSize); err != nil {
		return res, err
	}
	if p.MetricsRetention > 0 {
		if err := s.purgeHistory(ctx, time.Now().Add(-p.MetricsRetention), p.BatchSize, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// purgeEvents deletes stripe_events received before cutoff, oldest first,
// batch rows per statement (received_at is indexed).
func purgeEvents(ctx context.Context, conn *sqlx.Conn, cutoff time.Time, batch int) (int64, error) {
	const q = `
DELETE FROM stripe_events
WHERE event_id IN (
    SELECT event_id FROM stripe_events WHERE received_at < $1 ORDER BY received_at LIMIT $2)`
	var total int64
	for {
		r, err := conn.ExecContext(ctx, q, cutoff, batch)
		if err != nil {
			return total, fmt.Errorf("purge stripe events: %w", translate(err))
		}
		n, _ := r.RowsAffected()
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}

// closedHistoryQuery finds customer references whose revenue history is
// closed and wholly before $1: every (mode, currency) ledger nets to zero
// MRR and zero paying customers, the activity counter nets to zero, and no
// version, movement or activity row is at or after the cutoff. $3, when not
// NULL, restricts the check to those references (the re-check under lock).
const closedHistoryQuery = `
SELECT g.customer_ref
FROM (
    SELECT customer_ref,
           bool_and(last_at < $1 AND mrr = 0 AND paying = 0) AS closed
    FROM (
        SELECT customer_ref, livemode, currency, max(effective_at) AS last_at, sum(delta_minor) AS mrr,
               count(*) FILTER (WHERE kind IN ('new', 'reactivation')) - count(*) FILTER (WHERE kind = 'churn') AS paying
        FROM mrr_movements
        WHERE $3::uuid[] IS NULL OR customer_ref = ANY($3)
        GROUP BY customer_ref, livemode, currency
    ) l
    GROUP BY customer_ref
) g
WHERE g.closed
  AND NOT EXISTS (SELECT 1 FROM subscription_versions v WHERE v.customer_ref = g.customer_ref AND v.version_at >= $1)
  AND NOT EXISTS (SELECT 1 FROM subscription_activity a WHERE a.customer_ref = g.customer_ref
                  GROUP BY a.customer_ref HAVING sum(a.delta) <> 0 OR max(a.effective_at) >= $1)
ORDER BY g.customer_ref
LIMIT $2`

// purgeHistory deletes the closed revenue history of customers older than
// cutoff, a batch of customers per transaction. The customer's row lock
// (when it still has a customers row) keeps the event path from adding a
// version mid-purge, the ledger lock keeps a rebuild out, and the
// condition is re-checked under both. The daily revenue rollup is left as
// it is: it holds aggregates only, and the purged ledgers net to zero.
func (s *Store) purgeHistory(ctx context.Context, cutoff time.Time, batch int, res *PurgeResult) error {
	const qLock = `SELECT customer_ref FROM customers WHERE customer_ref = ANY($1) ORDER BY customer_ref FOR UPDATE`
	// The ledger rebuild's per-reference lock (ledger_rebuild.go): an erased
	// customer has no row to lock, and a rebuild must not rewrite a ledger
	// this purge is deleting.
	const qLedgerLock = `
SELECT count(pg_advisory_xact_lock(hashtextextended('billingd.ledger:' || r, 0)))
FROM (SELECT unnest($1::text[]) AS r ORDER BY 1) AS refs`
	const qMov = `DELETE FROM mrr_movements WHERE customer_ref = ANY($1)`
	const qVer = `DELETE FROM subscription_versions WHERE customer_ref = ANY($1)`
	const qAct = `DELETE FROM subscription_activity WHERE customer_ref = ANY($1)`
	// The customer's other ledger inputs go with its history.
	const qDiscounts = `DELETE FROM customer_discount_versions WHERE customer_ref = ANY($1)`
	const qLines = `DELETE FROM invoice_line_amounts WHERE customer_ref = ANY($1)`
	for {
		var refs []string
		if err := s.db.SelectContext(ctx, &refs, closedHistoryQuery, cutoff, batch, nil); err != nil {
			return fmt.Errorf("purge history: find closed customers: %w", translate(err))
		}
		if len(refs) == 0 {
			return nil
		}
		err := s.inTx(ctx, func(tx *sqlx.Tx) error {
			var locked []string
			if err := tx.SelectContext(ctx, &locked, qLock, pq.Array(refs)); err != nil {
				return fmt.Errorf("purge history: lock customers: %w", translate(err))
			}
			if _, err := tx.ExecContext(ctx, qLedgerLock, pq.Array(refs)); err != nil {
				return fmt.Errorf("purge history: lock ledgers: %w", translate(err))
			}
			var still []string
			if err := tx.SelectContext(ctx, &still, closedHistoryQuery, cutoff, batch, pq.Array(refs)); err != nil {
				return fmt.Errorf("purge history: re-check: %w", translate(err))
			}
			if len(still) == 0 {
				return nil
			}
			for _, d := range []struct {
				q string
				n *int64
			}{{qMov, &res.Movements}, {qVer, &res.Versions}, {qAct, &res.Activity},
				{qDiscounts, &res.LedgerInputs}, {qLines, &res.LedgerInputs}} {
				r, err := tx.ExecContext(ctx, d.q, pq.Array(still))
				if err != nil {
					return fmt.Errorf("purge history: %w", translate(err))
				}
				n, _ := r.RowsAffected()
				*d.n += n
			}
			res.Customers += int64(len(still))
			return nil
		})
		if err != nil {
			return err
		}
		if len(refs) < batch {
			return nil
		}
	}
}
