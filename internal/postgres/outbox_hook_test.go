package postgres

import (
	"context"

	"github.com/jmoiron/sqlx"
)

// EnqueueSubscriptionSyncForTest runs the event path's outbox hook in its
// own transaction, so the external tests can drive it.
func (s *Store) EnqueueSubscriptionSyncForTest(ctx context.Context, ch SubscriptionChange) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return enqueueSubscriptionSync(ctx, tx, ch) })
}
