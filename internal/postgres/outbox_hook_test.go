package postgres

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// EnqueueSubscriptionSyncForTest appends, in its own transaction, the
// outbox rows the event path queues for a change of a subscription's
// current state (subscriptionSyncRows), so the external tests can drive
// the sync rules without a batch.
func (s *Store) EnqueueSubscriptionSyncForTest(ctx context.Context, ch SubscriptionChange) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		rows, err := subscriptionSyncRows(ch)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if _, err := insertOutbox(ctx, tx, r); err != nil {
				return fmt.Errorf("enqueue profitwell %s: %w", r.Action, err)
			}
		}
		return nil
	})
}
