package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// RecomputeForTest runs the event path's recomputeMovements in its own
// transaction, for the external tests.
func (s *Store) RecomputeForTest(ctx context.Context, customerRef string, livemode bool, from time.Time) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return recomputeMovements(ctx, tx, customerRef, livemode, from) })
}

// ApplyVersionForTest does what the event transaction does for one version:
// lock the customer's row, add the version to the history, recompute the
// customer's ledger from the version's time, commit.
func (s *Store) ApplyVersionForTest(ctx context.Context, customerRef string, v billing.SubscriptionVersion) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM customers WHERE customer_ref = $1 FOR UPDATE`, customerRef); err != nil {
			return err
		}
		items, _ := json.Marshal(v.State.Items)
		discounts, _ := json.Marshal(append([]billing.Discount{}, v.State.Discounts...))
		mrr, fixed := billing.SubscriptionMRR(v.State)
		s := v.State
		_, err := tx.ExecContext(ctx, `
INSERT INTO subscription_versions (subscription_ref, customer_ref, livemode, status, currency, items, discounts,
    mrr_minor, mrr_fixed, current_period_start, current_period_end, trial_end, cancel_at, cancel_at_period_end,
    ended_at, version_at, version_rank, version_event)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
			v.SubscriptionRef, customerRef, s.Livemode, string(s.Status), s.Currency, string(items), string(discounts), mrr, fixed,
			s.CurrentPeriodStart, s.CurrentPeriodEnd, s.TrialEnd, s.CancelAt, s.CancelAtPeriodEnd, s.EndedAt,
			v.At, v.Rank, v.Event)
		if err != nil {
			return err
		}
		return recomputeMovements(ctx, tx, customerRef, s.Livemode, v.At)
	})
}

// RollupLockKeyForTest is the advisory lock every rollup compaction and
// fold takes: a test holding it keeps reports from folding.
const RollupLockKeyForTest = rollupLockKey
