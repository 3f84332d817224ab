package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/lib/pq"
)

// Reads for backfill and reconcile: current state to compare with
// Stripe's objects. Writes go through ApplyEvent like every webhook.

const subscriptionColumns = `
stripe_subscription_id, subscription_ref, stripe_customer_id, customer_ref, livemode, status,
currency, items, items_incomplete, discounts, created, start_date, current_period_start,
current_period_end, trial_start, trial_end, cancel_at, cancel_at_period_end, canceled_at,
ended_at, collection_paused, version_at, version_rank, version_event`

// SubscriptionStates returns the current state of the given subscriptions
// that are stored, keyed by ID.
func (s *Store) SubscriptionStates(ctx context.Context, ids []string) (map[string]billing.Subscription, error) {
	const q = `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE stripe_subscription_id = ANY($1)`
	return s.subscriptionStates(ctx, "read subscription states", q, pq.Array(ids))
}

// ReconcileSubscriptions returns every stored subscription of one mode
// (Stripe keys see one mode only), or with createdSince set only those
// Stripe created at or after it.
func (s *Store) ReconcileSubscriptions(ctx context.Context, livemode bool, createdSince *time.Time) (map[string]billing.Subscription, error) {
	const q = `SELECT ` + subscriptionColumns + ` FROM subscriptions
WHERE livemode = $1 AND ($2::timestamptz IS NULL OR created >= $2)`
	return s.subscriptionStates(ctx, "read subscriptions to reconcile", q, livemode, createdSince)
}

func (s *Store) subscriptionStates(ctx context.Context, what, q string, args ...any) (map[string]billing.Subscription, error) {
	rows, err := s.db.QueryxContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, translate(err))
	}
	defer rows.Close()
	out := map[string]billing.Subscription{}
	for rows.Next() {
		var r subscriptionRow
		if err := rows.StructScan(&r); err != nil {
			return nil, fmt.Errorf("%s: %w", what, translate(err))
		}
		sub, err := r.toSubscription()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out[sub.ID] = sub
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, translate(err))
	}
	return out, nil
}

// CustomerStates returns what is stored about the given customers, keyed
// by ID; unknown ones are absent.
func (s *Store) CustomerStates(ctx context.Context, ids []string) (map[string]billing.StoredCustomer, error) {
	const q = `
SELECT stripe_customer_id, livemode, deleted, account_id IS NOT NULL AS linked
FROM customers WHERE stripe_customer_id = ANY($1)`
	return s.customerStates(ctx, q, pq.Array(ids))
}

// ReconcileCustomers returns the stored customers of one mode that are not
// deleted: reconcile asks Stripe about those it does not list.
func (s *Store) ReconcileCustomers(ctx context.Context, livemode bool) (map[string]billing.StoredCustomer, error) {
	const q = `
SELECT stripe_customer_id, livemode, deleted, account_id IS NOT NULL AS linked
FROM customers WHERE livemode = $1 AND NOT deleted`
	return s.customerStates(ctx, q, livemode)
}

func (s *Store) customerStates(ctx context.Context, q string, args ...any) (map[string]billing.StoredCustomer, error) {
	var rows []struct {
		ID       string `db:"stripe_customer_id"`
		Livemode *bool  `db:"livemode"`
		Deleted  bool   `db:"deleted"`
		Linked   bool   `db:"linked"`
	}
	if err := s.db.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("read customer states: %w", translate(err))
	}
	out := make(map[string]billing.StoredCustomer, len(rows))
	for _, r := range rows {
		out[r.ID] = billing.StoredCustomer{ID: r.ID, Livemode: r.Livemode, Deleted: r.Deleted, Linked: r.Linked}
	}
	return out, nil
}

// Tombstoned returns which of ids (customer or subscription IDs) belong
// to an erased account: Stripe still lists them, but they are never
// stored again, so reconcile must not call them missing.
func (s *Store) Tombstoned(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	ring, err := s.erasureRing(ctx)
	if err != nil {
		return nil, fmt.Errorf("check tombstones: %w", err)
	}
	byHash := make(map[string]string, len(ids)*ring.Len())
	hashes := make([][]byte, 0, len(ids)*ring.Len())
	for _, id := range ids {
		for _, h := range ringHashes(ring, id) {
			byHash[string(h)] = id
			hashes = append(hashes, h)
		}
	}
	const q = `SELECT subject_hmac FROM tombstones WHERE subject_hmac = ANY($1)`
	var found [][]byte
	if err := s.db.SelectContext(ctx, &found, q, pq.Array(hashes)); err != nil {
		return nil, fmt.Errorf("check tombstones: %w", translate(err))
	}
	for _, h := range found {
		out[byHash[string(h)]] = true
	}
	return out, nil
}
