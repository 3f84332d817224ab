package postgres

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// AccountChannel is the NOTIFY channel on which account changes are
// announced, payload the account ID (at most 128 bytes, far below
// PostgreSQL's 8000-byte payload limit).
const AccountChannel = "billingd_account"

// notifyAccountChange tells every replica (LISTEN/NOTIFY, delivered at
// commit) that an account's billing state changed, so entitlement caches
// drop it. Called by every path that changes what an account is entitled to:
// events, links, deletions, backfill/reconcile. accountID may be empty (an
// unlinked customer): then nothing is sent.
//
// PostgreSQL folds identical notifications of one transaction into one, so
// calling this once per touched row is cheap. A rolled-back transaction
// sends nothing.
func notifyAccountChange(ctx context.Context, tx *sqlx.Tx, accountID string) error {
	if accountID == "" {
		return nil
	}
	const q = `SELECT pg_notify($1, $2)`
	if _, err := tx.ExecContext(ctx, q, AccountChannel, accountID); err != nil {
		return fmt.Errorf("notify account change: %w", translate(err))
	}
	return nil
}
