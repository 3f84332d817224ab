package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// subjectLockSpace is the first key of the two-key advisory locks that
// serialise erasure against the event path per Stripe ID. Two-key locks
// live in a key space apart from the one-key (bigint) locks that migrations
// and retention use, so they cannot collide with those.
const subjectLockSpace int32 = 0x0e7a5e

// subjectLockKey is the second key of a Stripe ID's advisory lock. Two IDs
// sharing a key only serialise more than needed; nothing is wrong.
func subjectLockKey(id string) int32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int32(h.Sum32())
}

// accountLockKey is the lock key of an account ID, apart from Stripe IDs'
// (which never start with "account:"). Erasure takes it exclusively; every
// transaction that may link a customer to the account takes it shared, so
// a link made while an erasure runs is either seen and erased by it, or
// made after it and refused by the account's tombstone.
func accountLockKey(accountID string) int32 { return subjectLockKey("account:" + accountID) }

// sortedLockKeys returns the distinct lock keys of ids (Stripe IDs) and
// accounts in ascending order: every transaction takes them in one order,
// so two never deadlock on them.
func sortedLockKeys(ids []string, accounts ...string) []int64 {
	seen := make(map[int32]bool, len(ids)+len(accounts))
	keys := make([]int64, 0, len(ids)+len(accounts))
	add := func(k int32) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, int64(k))
		}
	}
	for _, id := range ids {
		if id != "" {
			add(subjectLockKey(id))
		}
	}
	for _, a := range accounts {
		if a != "" {
			add(accountLockKey(a))
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

const qTombstoneLock = `
SELECT count(pg_advisory_xact_lock_shared($1, k))
FROM (SELECT unnest($2::int[]) AS k ORDER BY 1) AS keys`

const qTombstoneFind = `
SELECT EXISTS (SELECT 1 FROM tombstones WHERE subject_hmac = ANY($1))`

// checkTombstones reports whether any of the given Stripe IDs (customer
// or subscription IDs) was erased, and, for account (when not ""), what
// its tombstones say: a transaction that writes about those IDs or links a
// customer to account calls it first. Events about erased IDs are
// acknowledged and ignored, never stored or re-linked. Empty IDs are
// skipped. Hashes under every key of the erasure ring are looked up, so a
// rotated key still finds the tombstones its predecessors wrote: ring is
// the Store's erasure ring (erasureRingTx). (The
// event path does the same for a whole batch in its statements:
// qRecordEvents takes the locks, qLockCustomers reads the tombstones.)
//
// Why it cannot race an erasure: it first takes a shared transaction-level
// advisory lock per ID (and the account's), and EraseAccount takes the
// same locks exclusively before it writes tombstones and deletes rows. So
// either the erasure committed before this check (which then runs in a
// new statement, sees the tombstone, and the write is refused), or the
// erasure waits until the caller's transaction has committed and then
// deletes what it wrote. The caller must therefore call it before it
// writes anything about the IDs, pass the customer ID of every object it
// touches, and run at READ COMMITTED (the default) so the check sees
// commits made while it waited.
func checkTombstones(ctx context.Context, tx *sqlx.Tx, ring billing.KeyRing, stripeIDs []string, account string) (bool, accountTombstone, error) {
	keys := sortedLockKeys(stripeIDs, account)
	if len(keys) == 0 {
		return false, accountTombstone{}, nil
	}
	hashes := subjectHashes(ring, stripeIDs)
	if _, err := tx.ExecContext(ctx, qTombstoneLock, subjectLockSpace, pq.Array(keys)); err != nil {
		return false, accountTombstone{}, fmt.Errorf("check tombstones: lock subjects: %w", translate(err))
	}
	// A separate statement: under READ COMMITTED it takes a fresh snapshot
	// after the locks are held, so it sees an erasure that committed while
	// this transaction waited for them.
	var found bool
	if err := tx.QueryRowxContext(ctx, qTombstoneFind, pq.ByteaArray(hashes)).Scan(&found); err != nil {
		return false, accountTombstone{}, fmt.Errorf("check tombstones: %w", translate(err))
	}
	if account == "" {
		return found, accountTombstone{}, nil
	}
	at, err := readAccountTombstone(ctx, tx, ring, account)
	return found, at, err
}

// subjectHashes returns the keyed hashes under which tombstones may name
// ids (every key of the erasure ring), skipping empty IDs.
func subjectHashes(ring billing.KeyRing, ids []string) [][]byte {
	hashes := make([][]byte, 0, len(ids)*ring.Len())
	for _, id := range ids {
		if id != "" {
			hashes = append(hashes, ringHashes(ring, id)...)
		}
	}
	return hashes
}

// accountTombstone is what account_tombstones say about one account ID.
type accountTombstone struct {
	Erased bool // an account tombstone exists: hints never link to it
	Reused bool // every one of them was lifted by an explicit reuse
}

// qAccountTombstone reads an account's tombstones ($1: its hashes under
// every key of the ring; one per key that erased it).
const qAccountTombstone = `
SELECT count(*) > 0 AS erased, count(*) > 0 AND bool_and(reused_at IS NOT NULL) AS reused
FROM account_tombstones WHERE subject_hmac = ANY($1)`

// readAccountTombstone looks up an account's tombstones in tx. Callers
// that go on to link the account hold its shared lock (sortedLockKeys'
// accounts) and run this in a statement after taking it.
func readAccountTombstone(ctx context.Context, tx sqlx.QueryerContext, r billing.KeyRing, accountID string) (accountTombstone, error) {
	var t accountTombstone
	if err := sqlx.GetContext(ctx, tx, &t, qAccountTombstone, pq.ByteaArray(ringHashes(r, accountID))); err != nil {
		return t, fmt.Errorf("check account tombstone: %w", translate(err))
	}
	return t, nil
}
