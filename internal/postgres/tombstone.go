package postgres

import (
	"context"
	"errors"
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

// erasureKeyCtx carries the Store whose erasure ring isTombstoned uses.
type erasureKeyCtx struct{}

// withErasureKey returns ctx carrying s's erasure ring for isTombstoned.
// The event path's hooks are plain functions with fixed signatures and no
// Store, while the ring is cached in the Store (configured, or loaded once
// from instance_keys); every Store method that starts a transaction which
// may call isTombstoned wraps its context with this first.
func (s *Store) withErasureKey(ctx context.Context) context.Context {
	return context.WithValue(ctx, erasureKeyCtx{}, s)
}

var qTombstoneLock = eventStatement(`
SELECT count(pg_advisory_xact_lock_shared($1, k))
FROM (SELECT unnest($2::int[]) AS k ORDER BY 1) AS keys`)

var qTombstoneFind = eventStatement(`
SELECT EXISTS (SELECT 1 FROM tombstones WHERE subject_hmac = ANY($1))`)

// isTombstoned reports whether any of the given Stripe IDs (customer or
// subscription IDs) was erased: events about them are acknowledged and
// ignored, never stored or re-linked. Empty IDs are skipped. Hashes under
// every key of the erasure ring are looked up, so a rotated key still
// finds the tombstones its predecessors wrote. ctx must come
// from (*Store).withErasureKey; without it the check fails rather than
// hash with a wrong key and let an erased customer back in.
//
// Why it cannot race an erasure: it first takes a shared transaction-level
// advisory lock per ID, and EraseAccount takes the same locks exclusively
// before it writes tombstones and deletes rows. So either the erasure
// committed before this check (which then runs in a new statement, sees the
// tombstone, and the event is ignored), or the erasure waits until the
// caller's transaction has committed and then deletes what it wrote. The
// caller must therefore call it before it writes anything about the IDs,
// pass the customer ID of every object it touches, and run at READ
// COMMITTED (the default) so the check sees commits made while it waited.
func isTombstoned(ctx context.Context, tx *sqlx.Tx, stripeIDs ...string) (bool, error) {
	dead, _, err := checkTombstones(ctx, tx, stripeIDs, "")
	return dead, err
}

// checkTombstones is isTombstoned that also takes the shared lock of
// account (when not "") with the Stripe IDs' and reads its tombstones
// after them: what a transaction that links a customer to account needs.
func checkTombstones(ctx context.Context, tx *sqlx.Tx, stripeIDs []string, account string) (bool, accountTombstone, error) {
	keys := sortedLockKeys(stripeIDs, account)
	if len(keys) == 0 {
		return false, accountTombstone{}, nil
	}
	hashes, err := subjectHashes(ctx, tx, stripeIDs)
	if err != nil {
		return false, accountTombstone{}, err
	}
	if _, err := txExec(ctx, tx, qTombstoneLock, subjectLockSpace, pq.Array(keys)); err != nil {
		return false, accountTombstone{}, fmt.Errorf("check tombstones: lock subjects: %w", translate(err))
	}
	// A separate statement: under READ COMMITTED it takes a fresh snapshot
	// after the locks are held, so it sees an erasure that committed while
	// this transaction waited for them.
	var found bool
	if err := txQueryRowx(ctx, tx, qTombstoneFind, pq.ByteaArray(hashes)).Scan(&found); err != nil {
		return false, accountTombstone{}, fmt.Errorf("check tombstones: %w", translate(err))
	}
	if account == "" {
		return found, accountTombstone{}, nil
	}
	r, err := ctxErasureRing(ctx, tx)
	if err != nil {
		return false, accountTombstone{}, fmt.Errorf("check tombstones: %w", err)
	}
	at, err := readAccountTombstone(ctx, tx, r, account)
	return found, at, err
}

// eventSubjects are the Stripe IDs an event's apply function writes about,
// and so must check for tombstones: exactly the IDs the per-type code
// passed to isTombstoned, none for events it ignores without a check.
func eventSubjects(ev billing.Event) []string {
	switch {
	case ev.Connect, ev.FutureDated:
		return nil
	case ev.Customer != nil:
		return []string{ev.Customer.ID}
	case ev.Subscription != nil:
		return []string{ev.Subscription.CustomerID, ev.Subscription.ID}
	case ev.Invoice != nil:
		if ev.Invoice.CustomerID == "" || ev.Invoice.SubscriptionID == "" {
			return nil
		}
		return []string{ev.Invoice.CustomerID, ev.Invoice.SubscriptionID}
	case ev.Checkout != nil:
		if ev.Checkout.CustomerID == "" {
			return nil
		}
		return []string{ev.Checkout.CustomerID, ev.Checkout.SubscriptionID}
	}
	return nil
}

// eventHint is the account an event's hint names ("" for none): the
// customer's metadata (not for a deletion), the subscription's metadata
// or the checkout's verified client_reference_id.
func eventHint(ev billing.Event) string {
	switch {
	case ev.Connect:
		return ""
	case ev.Customer != nil && !ev.Customer.Deleted:
		return ev.Customer.AccountHint
	case ev.Subscription != nil:
		return ev.Subscription.AccountHint
	case ev.Checkout != nil && ev.Checkout.CustomerID != "":
		return ev.Checkout.AccountHint
	}
	return ""
}

// ctxErasureRing returns the erasure ring of the Store in ctx
// ((*Store).withErasureKey), read on tx's connection on first use.
func ctxErasureRing(ctx context.Context, tx *sqlx.Tx) (billing.KeyRing, error) {
	s, ok := ctx.Value(erasureKeyCtx{}).(*Store)
	if !ok {
		return billing.KeyRing{}, errors.New("no erasure key in context (wrap it with (*Store).withErasureKey)")
	}
	return s.erasureRingTx(ctx, tx)
}

// subjectHashes returns the keyed hashes under which tombstones may name
// ids (every key of the erasure ring), skipping empty IDs; ctx must come
// from (*Store).withErasureKey, as for isTombstoned.
func subjectHashes(ctx context.Context, tx *sqlx.Tx, ids []string) ([][]byte, error) {
	r, err := ctxErasureRing(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("check tombstones: %w", err)
	}
	hashes := make([][]byte, 0, len(ids)*r.Len())
	for _, id := range ids {
		if id != "" {
			hashes = append(hashes, ringHashes(r, id)...)
		}
	}
	return hashes, nil
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
