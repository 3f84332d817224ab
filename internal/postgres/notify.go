package postgres

import (
	"context"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// notifyAccountChange tells every replica, through the cache-invalidation
// feed (invalidations.go), that an account's billing state changed, so
// entitlement caches drop it once the transaction commits. Called by every
// path that changes what an account is entitled to: events, links,
// deletions, backfill/reconcile. accountID may be empty (an unlinked
// customer): then nothing is written. A rolled-back transaction leaves no
// row.
func notifyAccountChange(ctx context.Context, tx *sqlx.Tx, accountID string) error {
	if accountID == "" {
		return nil
	}
	return insertInvalidation(ctx, tx, invalidationAccount, billing.CacheBucket(accountID))
}
