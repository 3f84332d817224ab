package postgres

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// RecomputeForTest runs the event path's recomputeMovements in its own
// transaction, for the external tests.
func (s *Store) RecomputeForTest(ctx context.Context, customerRef string, livemode bool, from time.Time) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return recomputeMovements(ctx, tx, customerRef, livemode, from) })
}
