package postgres

import (
	"context"
	"fmt"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// notifyAccountChange tells every replica, through the cache-invalidation
// feed (invalidations.go), that an account's billing state changed, so
// entitlement caches drop it once the transaction commits. Called by every
// path that changes what an account is entitled to: events, links,
// deletions, backfill/reconcile. accountID may be empty (an unlinked
// customer): then nothing is written. A rolled-back transaction leaves no
// row.
//
// The account is also added to changed, which the transaction's owner hands
// to this replica's own cache after commit (Store.OnAccountsChanged), so
// the replica that made a change reads it at once, before it answers.
//
// tx is the caller's transaction: a ptx inside the event path, so that the
// insert runs prepared. The account is also marked dirty for the change
// feed (changes.go) in the same statement.
func notifyAccountChange(ctx context.Context, tx sqlx.ExecerContext, changed accountSet, accountID string) error {
	if accountID == "" {
		return nil
	}
	changed.add(accountID)
	if _, err := tx.ExecContext(ctx, qInsertAccountChange, int(billing.CacheBucket(accountID)), accountID); err != nil {
		return fmt.Errorf("record account change: %w", translate(err))
	}
	return nil
}

// notifyAccountChanges is notifyAccountChange for several accounts in one
// statement.
func notifyAccountChanges(ctx context.Context, tx sqlx.ExecerContext, changed accountSet, accountIDs []string) error {
	if len(accountIDs) == 0 {
		return nil
	}
	buckets := make([]int64, len(accountIDs))
	for i, a := range accountIDs {
		changed.add(a)
		buckets[i] = int64(billing.CacheBucket(a))
	}
	if _, err := tx.ExecContext(ctx, qInsertAccountChanges, pq.Array(buckets), pq.Array(accountIDs)); err != nil {
		return fmt.Errorf("record account changes: %w", translate(err))
	}
	return nil
}

const qInsertAccountChanges = `
WITH d AS (INSERT INTO entitlement_dirty (account_id) SELECT unnest($2::text[]))
INSERT INTO cache_invalidations (kind, bucket) SELECT 1, unnest($1::int[])`

// qInsertAccountChange writes the account's cache invalidation and marks it
// dirty for the change feed (changes.go), in one statement.
const qInsertAccountChange = `
WITH d AS (INSERT INTO entitlement_dirty (account_id) VALUES ($2))
INSERT INTO cache_invalidations (kind, bucket) VALUES (1, $1)`

// accountSet is the accounts one transaction changed. A nil set records
// nothing (callers outside a Store write path, tests).
type accountSet map[string]bool

func (a accountSet) add(accountID string) {
	if a != nil && accountID != "" {
		a[accountID] = true
	}
}

// accountsCommitted tells this replica's cache (OnAccountsChanged) about
// the accounts a transaction changed. Call it after the commit succeeded
// and before the write returns to its caller: a read that starts after the
// caller's answer then cannot be served from an entry older than the
// change. Entries loaded concurrently from an older snapshot are not kept
// (entcache compares a sequence number taken before the load).
func (s *Store) accountsCommitted(sets ...accountSet) {
	f := s.onAccounts
	if f == nil {
		return
	}
	var ids []string
	for _, set := range sets {
		for id := range set {
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 {
		f(ids)
	}
}
