package postgres

import (
	"context"

	"github.com/jmoiron/sqlx"
)

// isTombstoned reports whether any of the given Stripe IDs (customer or
// subscription IDs) was erased: events about them are acknowledged and
// ignored, never stored or re-linked. Empty IDs are skipped.
//
// OWNER: issue 8 (erasure). Until that lands nothing is tombstoned.
func isTombstoned(ctx context.Context, tx *sqlx.Tx, stripeIDs ...string) (bool, error) {
	return false, nil
}
