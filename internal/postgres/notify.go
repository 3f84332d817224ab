package postgres

import (
	"context"

	"github.com/jmoiron/sqlx"
)

// notifyAccountChange tells every replica (LISTEN/NOTIFY, delivered at
// commit) that an account's billing state changed, so entitlement caches
// drop it. Called by every path that changes what an account is entitled to:
// events, links, deletions, backfill/reconcile. accountID may be empty (an
// unlinked customer): then nothing is sent.
//
// OWNER: issue 5 (app API, entitlement cache). Until that lands this sends nothing.
func notifyAccountChange(ctx context.Context, tx *sqlx.Tx, accountID string) error {
	return nil
}
