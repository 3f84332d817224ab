package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// The monthly segment rollup (revenue_segments_monthly, migration 0650)
// keeps the segment and cohort reports fast over years of history at a
// million subscriptions: they read whole months from it and only the days
// after a cut-off from revenue_segments_daily.
//
// It is maintained from the daily rollup's rows, never from customers:
// whoever appends daily rows (the fact deriver, revenue_facts_deriver.go,
// on whichever replica claims a customer; a ledger rebuild; `metrics
// rebuild`) appends them unfolded, and foldSegmentMonths, which runs under
// the compaction lock before every report (CompactRevenueRollup), adds
// every visible unfolded row to its month and marks it folded in one
// statement. The daily rows are exact signed deltas of the facts they
// replace (a late event's derivation appends minus the old facts and plus
// the new ones, dated where they fall), so the months are right whatever
// order events arrive and are derived in and however often they are
// delivered, and folding costs the deriver nothing: it never reads or
// locks a month.

// qFoldSegmentMonths folds the unfolded daily rows into their months. The
// UPDATE only sees rows committed before it started; rows committed later
// stay unfolded for the next fold (reports read them from the daily rollup
// meanwhile, through the partial index on NOT folded).
const qFoldSegmentMonths = `
WITH f AS (
    UPDATE revenue_segments_daily SET folded = true
    WHERE NOT folded
    RETURNING livemode, dimension, date_trunc('month', day)::date AS month, currency, segment, mrr_delta, new_minor,
              expansion_minor, contraction_minor, churn_minor, reactivation_minor, paying_delta, churned_customers,
              new_customers, active_delta, retained_delta, trial_starts, trial_conversions
)
INSERT INTO revenue_segments_monthly AS m (livemode, dimension, month, currency, segment, mrr_delta, new_minor,
    expansion_minor, contraction_minor, churn_minor, reactivation_minor, paying_delta, churned_customers,
    new_customers, active_delta, retained_delta, trial_starts, trial_conversions)
SELECT livemode, dimension, month, currency, segment, sum(mrr_delta), sum(new_minor), sum(expansion_minor),
       sum(contraction_minor), sum(churn_minor), sum(reactivation_minor), sum(paying_delta), sum(churned_customers),
       sum(new_customers), sum(active_delta), sum(retained_delta), sum(trial_starts), sum(trial_conversions)
FROM f
GROUP BY livemode, dimension, month, currency, segment
ON CONFLICT (livemode, dimension, month, currency, segment) DO UPDATE SET
    mrr_delta = m.mrr_delta + excluded.mrr_delta,
    new_minor = m.new_minor + excluded.new_minor,
    expansion_minor = m.expansion_minor + excluded.expansion_minor,
    contraction_minor = m.contraction_minor + excluded.contraction_minor,
    churn_minor = m.churn_minor + excluded.churn_minor,
    reactivation_minor = m.reactivation_minor + excluded.reactivation_minor,
    paying_delta = m.paying_delta + excluded.paying_delta,
    churned_customers = m.churned_customers + excluded.churned_customers,
    new_customers = m.new_customers + excluded.new_customers,
    active_delta = m.active_delta + excluded.active_delta,
    retained_delta = m.retained_delta + excluded.retained_delta,
    trial_starts = m.trial_starts + excluded.trial_starts,
    trial_conversions = m.trial_conversions + excluded.trial_conversions`

// foldSegmentMonths runs qFoldSegmentMonths in tx, which must hold the
// compaction lock (rollupLockKey): one session folds at a time, so the
// monthly rows are updated by nobody else and writers never wait on them.
func foldSegmentMonths(ctx context.Context, tx *sqlx.Tx) error {
	res, err := tx.ExecContext(ctx, qFoldSegmentMonths)
	if err != nil {
		return fmt.Errorf("fold segment months: %w", translate(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	// A month whose changes cancel out (a late event undoing what an
	// earlier one derived) is dropped, as compaction drops such a day: a
	// report must not list a segment or cohort that has nothing.
	if _, err := tx.ExecContext(ctx, qDropEmptyMonths); err != nil {
		return fmt.Errorf("fold segment months: drop empty: %w", translate(err))
	}
	return nil
}

// qDropEmptyMonths deletes the months whose sums are all zero. The table
// holds a row per dimension, segment, currency and month (thousands, not
// millions, at a million subscriptions), and it runs only after a fold
// changed something.
const qDropEmptyMonths = `
DELETE FROM revenue_segments_monthly
WHERE ROW(mrr_delta, new_minor, expansion_minor, contraction_minor, churn_minor, reactivation_minor, paying_delta,
          churned_customers, new_customers, active_delta, retained_delta, trial_starts, trial_conversions)
    = ROW(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)`

// FoldRevenueRollups folds the daily segment rollup into its months now
// (the compaction before each report does it too, so calling it is never
// needed for correctness): a background writer of facts may call it after
// committing a batch, so the next report finds nothing left to fold. When
// another session holds the compaction lock it returns at once.
func (s *Store) FoldRevenueRollups(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var got bool
		if err := tx.GetContext(ctx, &got, `SELECT pg_try_advisory_xact_lock($1)`, rollupLockKey); err != nil {
			return fmt.Errorf("fold segment months: lock: %w", translate(err))
		}
		if !got {
			return nil
		}
		return foldSegmentMonths(ctx, tx)
	})
}

// rebuildSegmentRollups recomputes revenue_segments_daily from
// revenue_facts and its months from that, in tx, which holds the
// compaction lock until commit so no fold or compaction interleaves: the
// daily rows are rewritten unfolded, the months emptied, and the fold adds
// them back. Daily rows the fact deriver appends after the rebuild's
// snapshot (its facts' changes, which that snapshot did not see either)
// are not deleted: they stay unfolded until this or a later fold adds them.
func rebuildSegmentRollups(ctx context.Context, tx *sqlx.Tx) error {
	if _, err := tx.ExecContext(ctx, qRebuildSegmentRollup); err != nil {
		return fmt.Errorf("rebuild segment rollup: %w", translate(err))
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM revenue_segments_monthly`); err != nil {
		return fmt.Errorf("rebuild segment rollup: months: %w", translate(err))
	}
	return foldSegmentMonths(ctx, tx)
}

// monthCutoff is the first day of the month of the earlier of want and
// rollEnd: reports read whole months before it from the monthly rollup.
// Every day of those months is before rollEnd, the day from which the
// reports read raw facts, so no change is read twice.
func monthCutoff(want, rollEnd time.Time) string {
	t := want
	if rollEnd.Before(t) {
		t = rollEnd
	}
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
}

// segmentCutoff is the monthly rollup's cut-off for a segment report: with
// monthly buckets that start on months, every whole month before today's
// (rollEnd's) is read as one row; otherwise only the months before From,
// which collapse into the report's baseline anyway.
func segmentCutoff(rq billing.RevenueQuery, rollEnd time.Time) string {
	f := rq.From.UTC()
	if rq.Bucket == billing.BucketMonth && f.Equal(time.Date(f.Year(), f.Month(), 1, 0, 0, 0, 0, time.UTC)) {
		return monthCutoff(rollEnd, rollEnd)
	}
	return monthCutoff(rq.From, rollEnd)
}
