package postgres

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// recomputeMovements re-derives one customer's MRR movements (mrr_movements)
// from its state history (subscription_versions) from time `from` onward, in
// the caller's transaction. The event path calls it after inserting a
// version, with from = that version's time, so a late version rewrites the
// ledger after it and any delivery order ends with the same ledger.
// The caller holds the customer's row lock, which serialises recomputes of
// one customer.
//
// OWNER: issue 6 (metrics). Until that lands this records nothing.
func recomputeMovements(ctx context.Context, tx *sqlx.Tx, customerRef string, livemode bool, from time.Time) error {
	return nil
}
