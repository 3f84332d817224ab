package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// ApplyEvent applies one event in one transaction (design invariant 1) and
// reports what it did. It is the only write path for Stripe state: the
// webhook handler calls it for delivered events, backfill and reconcile
// for objects fetched from the API.
//
// The transaction, in order:
//
//  1. Record the event ID (INSERT ... ON CONFLICT DO NOTHING). No row
//     inserted means a duplicate, sequential or concurrent on any replica
//     (the second insert waits for the first transaction): stop, change
//     nothing, OutcomeDuplicate. Events with no ID (API fetches) skip this.
//  2. isTombstoned on the customer and subscription IDs: stop, OutcomeTombstoned.
//  3. Upsert the customer row (INSERT ... ON CONFLICT DO UPDATE ...
//     RETURNING): its row lock serialises everything about one customer,
//     first-seen ones included, so no two events of a customer interleave.
//  4. Link the customer from the event's hint: only an unlinked, not
//     deleted customer is linked; a customer linked to another account is
//     never moved (OutcomeLinkConflict, the rest still applied).
//  5. Subscriptions: insert the version into subscription_versions (late
//     ones too), replace current state only if the version key is newer
//     (billing/order.go), recomputeMovements from the version's time, and
//     when current state changed enqueueSubscriptionSync (live mode only).
//     Invoices: update only the subscription's invoice facts, ordered by
//     invoice_version_at; facts of a subscription not known yet wait in
//     pending_invoice_facts until its first version takes them over.
//  6. notifyAccountChange for the linked account whenever what it is
//     entitled to may have changed.
//  7. Commit. Nothing is acknowledged before.
//
// For an object fetched from the API (backfill, reconcile) pass an Event
// with ID "" and Created = the moment Stripe answered: no stripe_events row
// is written, and the version is newer than every event already seen.
//
// Erasure's tombstone locks, the customer row lock and the version order
// make the result independent of delivery order and of concurrency:
// replaying the same set of events in any order, on any replicas, ends in
// the same rows (see the webhooks shuffle and storm tests).
//
// Errors wrap billing.ErrUnavailable when a retry can succeed (the caller
// answers 503) and billing.ErrInvalid when the event can never be stored.
func (s *Store) ApplyEvent(ctx context.Context, ev billing.Event) (billing.Outcome, error) {
	if err := checkEvent(ev); err != nil {
		return "", err
	}
	ctx = s.withErasureKey(ctx) // isTombstoned hashes with the Store's cached key (issue 8)
	if err := s.prepare(ctx, eventStatements...); err != nil {
		return "", fmt.Errorf("apply event %s: %w", ev.Type, err)
	}
	if err := s.prepare(ctx, hookStatements...); err != nil {
		return "", fmt.Errorf("apply event %s: %w", ev.Type, err)
	}
	ctx = withStatements(ctx, s)
	// Postgres keeps microseconds: compare versions at the precision stored.
	ev.Created = ev.Created.UTC().Truncate(time.Microsecond)
	var out billing.Outcome
	err := s.inTx(ctx, func(sqltx *sqlx.Tx) error {
		tx := ptx{Tx: sqltx, s: s}
		first := billing.OutcomeApplied
		if ev.Connect {
			first = billing.OutcomeIgnored
		}
		// The subject locks of isTombstoned, taken in the statement that
		// records the event (or alone for API fetches); lockCustomer then
		// checks the tombstones in the statement that writes the customer,
		// whose snapshot is taken after the locks are held: the protocol of
		// isTombstoned with two round trips fewer.
		ids := eventSubjects(ev)
		keys := sortedLockKeys(ids)
		if len(keys) > 0 {
			hashes, err := subjectHashes(ctx, sqltx, ids)
			if err != nil {
				return err
			}
			tx.tombstones = hashes
		}
		if !ev.FromAPI() {
			fresh, err := recordEvent(ctx, tx, ev, first, keys)
			if err != nil {
				return err
			}
			if !fresh {
				out = billing.OutcomeDuplicate
				return nil
			}
		} else if len(keys) > 0 {
			if _, err := tx.execRows(ctx, qTombstoneLock, subjectLockSpace, pq.Array(keys)); err != nil {
				return fmt.Errorf("check tombstones: lock subjects: %w", translate(err))
			}
		}
		o, err := applyEvent(ctx, tx, ev)
		if err != nil {
			return err
		}
		if !ev.FromAPI() && o != first {
			if err := setEventOutcome(ctx, tx, ev.ID, o); err != nil {
				return err
			}
		}
		out = o
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("apply event %s: %w", ev.Type, err)
	}
	return out, nil
}

// checkEvent rejects events that name no object or two: a decoder bug, not
// something a retry fixes.
func checkEvent(ev billing.Event) error {
	n := 0
	for _, set := range []bool{ev.Customer != nil, ev.Subscription != nil, ev.Invoice != nil, ev.Checkout != nil} {
		if set {
			n++
		}
	}
	switch {
	case ev.Created.IsZero():
		return fmt.Errorf("%w: event without created time", billing.ErrInvalid)
	case ev.Connect && !ev.FromAPI():
		return nil
	case n != 1:
		return fmt.Errorf("%w: event must carry exactly one object, has %d", billing.ErrInvalid, n)
	}
	return nil
}

// eventStatements are prepared once per pool (prepared.go).
var eventStatements = []string{qRecordEvent, qLockCustomer, qWriteSubscription}

func applyEvent(ctx context.Context, tx ptx, ev billing.Event) (billing.Outcome, error) {
	switch {
	case ev.Connect:
		// Connected accounts' events: this service serves one platform.
		return billing.OutcomeIgnored, nil
	case ev.Customer != nil:
		return applyCustomer(ctx, tx, ev)
	case ev.Subscription != nil:
		return applySubscription(ctx, tx, ev)
	case ev.Invoice != nil:
		return applyInvoice(ctx, tx, ev)
	default:
		return applyCheckout(ctx, tx, ev)
	}
}

// qRecordEvent records the event and, only for a first delivery, takes
// the shared subject locks of isTombstoned ($6, $7: sorted keys, possibly
// none) in the same round trip. The insert runs first (the lock subquery
// reads its result), so a concurrent duplicate waits for the first
// delivery's transaction before it locks anything, as before.
const qRecordEvent = `
WITH e AS (
    INSERT INTO stripe_events (event_id, event_type, created, livemode, outcome)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM e) AS fresh,
       (SELECT count(pg_advisory_xact_lock_shared($6, k))
        FROM (SELECT unnest($7::int[]) AS k ORDER BY 1) AS keys
        WHERE EXISTS (SELECT 1 FROM e)) AS locked`

// recordEvent inserts the event's row with a provisional outcome, takes the
// subject locks when it is the first delivery, and reports whether it is.
// The row holds no customer, subscription or account ID, so erasure has
// nothing to scrub here.
func recordEvent(ctx context.Context, tx ptx, ev billing.Event, outcome billing.Outcome, keys []int64) (bool, error) {
	var fresh bool
	var locked int64
	if keys == nil {
		keys = []int64{}
	}
	err := tx.queryRowx(ctx, qRecordEvent, ev.ID, ev.Type, ev.Created, ev.Livemode, string(outcome),
		subjectLockSpace, pq.Array(keys)).Scan(&fresh, &locked)
	if err != nil {
		return false, fmt.Errorf("record event: %w", translate(err))
	}
	return fresh, nil
}

// setEventOutcome replaces the provisional outcome once it is known.
func setEventOutcome(ctx context.Context, tx ptx, eventID string, o billing.Outcome) error {
	const q = `UPDATE stripe_events SET outcome = $2 WHERE event_id = $1`
	if _, err := tx.ExecContext(ctx, q, eventID, string(o)); err != nil {
		return fmt.Errorf("set event outcome: %w", translate(err))
	}
	return nil
}

// EventOutcome returns the stored outcome of an event, or ErrNotFound.
func (s *Store) EventOutcome(ctx context.Context, eventID string) (billing.Outcome, error) {
	const q = `SELECT outcome FROM stripe_events WHERE event_id = $1`
	var o string
	if err := s.db.GetContext(ctx, &o, q, eventID); err != nil {
		if err == errNoRows {
			return "", fmt.Errorf("event outcome: %w", billing.ErrNotFound)
		}
		return "", fmt.Errorf("event outcome: %w", translate(err))
	}
	return billing.Outcome(o), nil
}
