package postgres

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// rollupLockKey is the advisory lock of revenue_daily compaction: one
// replica compacts at a time, the others skip.
const rollupLockKey = 0x6d72725f726f6c6c // "mrr_roll"

// CompactRevenueRollup folds the revenue_daily delta rows of each (mode,
// currency, day) that has several into one, and returns how many rows it
// removed. It is safe beside writers: rows appended after its snapshot are
// not touched, and a row another compaction already folded is skipped.
// When another session is compacting it returns at once.
func (s *Store) CompactRevenueRollup(ctx context.Context) (int64, error) {
	const qLock = `SELECT pg_try_advisory_xact_lock($1)`
	const q = `
WITH dup AS (
    SELECT livemode, currency, day FROM revenue_daily GROUP BY livemode, currency, day HAVING count(*) > 1
), gone AS (
    DELETE FROM revenue_daily r USING dup
    WHERE r.livemode = dup.livemode AND r.currency = dup.currency AND r.day = dup.day
    RETURNING r.*
), folded AS (
    INSERT INTO revenue_daily (livemode, currency, day, mrr_delta, new_minor, expansion_minor, contraction_minor,
                               churn_minor, reactivation_minor, paying_delta, churned_customers, active_delta)
    SELECT livemode, currency, day, sum(mrr_delta), sum(new_minor), sum(expansion_minor), sum(contraction_minor),
           sum(churn_minor), sum(reactivation_minor), sum(paying_delta), sum(churned_customers), sum(active_delta)
    FROM gone
    GROUP BY livemode, currency, day
    HAVING sum(mrr_delta) <> 0 OR sum(new_minor) <> 0 OR sum(expansion_minor) <> 0 OR sum(contraction_minor) <> 0
        OR sum(churn_minor) <> 0 OR sum(reactivation_minor) <> 0 OR sum(paying_delta) <> 0
        OR sum(churned_customers) <> 0 OR sum(active_delta) <> 0
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM folded)`
	var removed, compactedTo int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var got bool
		if err := tx.GetContext(ctx, &got, qLock, rollupLockKey); err != nil {
			return fmt.Errorf("compact revenue rollup: lock: %w", translate(err))
		}
		if !got {
			return nil
		}
		if err := tx.GetContext(ctx, &removed, q); err != nil {
			return fmt.Errorf("compact revenue rollup: %w", translate(err))
		}
		if err := foldSegmentMonths(ctx, tx); err != nil {
			return err
		}
		segs, maxID, err := compactSegmentRollup(ctx, tx, s.segCompacted.Load())
		if err != nil {
			return err
		}
		removed += segs
		// Only once committed (the deferred store happens after inTx's commit
		// below): a rolled-back compaction must be redone.
		compactedTo = maxID
		return nil
	})
	if err == nil && compactedTo > s.segCompacted.Load() {
		s.segCompacted.Store(compactedTo)
	}
	return removed, err
}

// maybeCompactRollup compacts before a report so it reads about one row
// per day. Failure only costs speed (e.g. on a read-only replica): it is
// logged, and the report reads the uncompacted rows, whose sums are the same.
func (s *Store) maybeCompactRollup(ctx context.Context) {
	if _, err := s.CompactRevenueRollup(ctx); err != nil {
		s.log.Debug("revenue rollup not compacted", "err", err)
	}
}

// RebuildRevenueRollup recomputes revenue_daily from the ledger
// (mrr_movements, subscription_activity) through the view
// revenue_daily_from_ledger (migration 0120: the one definition of what the
// rollup sums to, amounts numeric so that no stored day can overflow), in
// one statement: one snapshot sees the ledger and the rollup rows it
// replaces, and rows that event transactions append after it stay,
// matching their ledger changes that the snapshot did not see either.
// `billingd metrics rebuild` ends with it, and with the same for the
// segment rollup (revenue_segments_daily from revenue_facts) and its
// months (rebuildSegmentRollups).
//
// It holds the compaction lock (waiting for it) until it commits: a
// compaction that folded rows the rebuild's snapshot still saw would
// otherwise leave its folded row beside the rebuilt one, and the day would
// count twice.
func (s *Store) RebuildRevenueRollup(ctx context.Context) error {
	const q = `
WITH gone AS (DELETE FROM revenue_daily)
INSERT INTO revenue_daily (livemode, currency, day, mrr_delta, new_minor, expansion_minor, contraction_minor,
                           churn_minor, reactivation_minor, paying_delta, churned_customers, active_delta)
SELECT livemode, currency, day, mrr_delta, new_minor, expansion_minor, contraction_minor,
       churn_minor, reactivation_minor, paying_delta, churned_customers, active_delta
FROM revenue_daily_from_ledger`
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, rollupLockKey); err != nil {
			return fmt.Errorf("rebuild revenue rollup: lock: %w", translate(err))
		}
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("rebuild revenue rollup: %w", translate(err))
		}
		return rebuildSegmentRollups(ctx, tx)
	})
}
