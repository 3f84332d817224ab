package postgres

import (
	"context"
	"fmt"

	"github.com/billingd/billingd/billing"
)

// ApplyEvent applies one event and reports what it did, after its effects
// are committed. It is the only write path for Stripe state: the webhook
// handler calls it for delivered events, backfill and reconcile for objects
// fetched from the API.
//
// Events that arrive while others are being written are committed together
// (group commit, event2_group.go: one transaction for the batch, applyBatch), but
// each is applied by these rules, as if alone:
//
//  1. Record the event ID (INSERT ... ON CONFLICT DO NOTHING). No row
//     inserted means a duplicate, sequential or concurrent on any replica
//     (the second insert waits for the first transaction): stop, change
//     nothing, OutcomeDuplicate. Events with no ID (API fetches) skip this.
//  2. Tombstones of the customer and subscription IDs (checkTombstones's
//     protocol: shared subject locks, then a lookup in a later statement):
//     stop, OutcomeTombstoned.
//  3. Upsert the customer row (INSERT ... ON CONFLICT DO UPDATE ...
//     RETURNING): its row lock serialises everything about one customer,
//     first-seen ones included, so no two transactions' events of a
//     customer interleave.
//  4. Link the customer from the event's hint: only an unlinked, not
//     deleted customer is linked; a customer linked to another account is
//     never moved (OutcomeLinkConflict, the rest still applied).
//  5. Subscriptions: insert the version into subscription_versions (late
//     ones too), replace current state only if the version key is newer
//     (billing/order.go), re-derive the customer's ledger from the
//     version's time, and when current state changed queue the ProfitWell
//     sync (live mode only). Invoices: update only the subscription's
//     invoice facts, ordered by invoice_version_at; facts of a subscription
//     not known yet wait in pending_invoice_facts until its first version
//     takes them over.
//  6. Invalidate the linked account's entitlement caches whenever what it
//     is entitled to may have changed.
//  7. Commit. Nothing is acknowledged before.
//
// For an object fetched from the API (backfill, reconcile) pass an Event
// with ID "" and Created = the moment Stripe answered: no stripe_events row
// is written, and the version is newer than every event already seen.
//
// Erasure's tombstone locks, the customer row lock and the version order
// make the result independent of delivery order, of concurrency and of how
// events are batched: replaying the same set of events in any order, on any
// replicas, ends in the same rows (the webhooks shuffle and storm tests,
// TestBatchEqualsOneByOne, the replicas test).
//
// The context's deadline is the event's (event2_group.go): ApplyEvent refuses at
// once an event it cannot apply before it, and returns by it.
//
// Errors wrap billing.ErrUnavailable when a retry can succeed (the caller
// answers 503; billing.ErrOverloaded when the event was refused or given up
// before it was applied) and billing.ErrInvalid when the event can never be
// stored.
func (s *Store) ApplyEvent(ctx context.Context, ev billing.Event) (billing.Outcome, error) {
	if err := checkEvent(ev); err != nil {
		return "", err
	}
	out, err := s.group.apply(ctx, ev, s.applyBatch)
	if err != nil {
		return "", fmt.Errorf("apply event %s: %w", ev.Type, err)
	}
	return out, nil
}

// checkEvent rejects events that name no object or two: a decoder bug, not
// something a retry fixes.
func checkEvent(ev billing.Event) error {
	_, n := ev.Object()
	switch {
	case ev.Created.IsZero():
		return fmt.Errorf("%w: event without created time", billing.ErrInvalid)
	case (ev.Connect || ev.FutureDated) && !ev.FromAPI():
		return nil
	case ev.FutureDated:
		return fmt.Errorf("%w: an object fetched from the API cannot be future-dated", billing.ErrInvalid)
	case n != 1:
		return fmt.Errorf("%w: event must carry exactly one object, has %d", billing.ErrInvalid, n)
	case ev.Subscription != nil && (ev.Subscription.ID == "" || ev.Subscription.CustomerID == ""):
		return fmt.Errorf("%w: subscription without ID or customer", billing.ErrInvalid)
	case ev.Customer != nil && ev.Customer.ID == "":
		return fmt.Errorf("%w: customer without ID", billing.ErrInvalid)
	case ev.Schedule != nil && (ev.Schedule.ID == "" || ev.Schedule.CustomerID == ""):
		return fmt.Errorf("%w: subscription schedule without ID or customer", billing.ErrInvalid)
	case ev.Entitlements != nil && ev.Entitlements.CustomerID == "":
		return fmt.Errorf("%w: entitlement summary without customer", billing.ErrInvalid)
	}
	return nil
}

// applyEvent applies one event other than a subscription's, by the kind
// of object it carries (billing.EventObject): a new kind is a case here and
// its apply function. c is the row of the event's customer as the batch
// locked it (nil when the event names none: it is then ignored).
func applyEvent(ctx context.Context, tx ptx, ev billing.Event, c *lockedCustomer) (billing.Outcome, error) {
	switch {
	case ev.FutureDated:
		return billing.OutcomeFutureDated, nil
	case ev.Connect:
		// Connected accounts' events: this service serves one platform.
		return billing.OutcomeIgnored, nil
	}
	obj, _ := ev.Object()
	if c == nil && len(ev.Subjects()) > 0 {
		return "", fmt.Errorf("apply event: the batch locked no row for its customer")
	}
	switch obj := obj.(type) {
	case *billing.Customer:
		return applyCustomer(ctx, tx, ev.Created, ev.ID, obj, c)
	case *billing.Invoice:
		return applyInvoice(ctx, tx, ev.Created, obj, c)
	case *billing.CheckoutSession:
		return applyCheckout(ctx, tx, obj, c)
	case *billing.Schedule:
		return applySchedule(ctx, tx, ev.Created, ev.ID, obj, c)
	case *billing.EntitlementSummary:
		return applySummary(ctx, tx, ev.Created, ev.ID, obj, c)
	case *billing.TestClock:
		return applyTestClock(ctx, tx, ev.Created, obj)
	case *billing.Product:
		return applyProduct(ctx, tx, ev.Created, ev.ID, obj)
	case *billing.Price:
		return applyPrice(ctx, tx, ev.Created, ev.ID, obj)
	case *billing.Subscription:
		// Written in sets by the batch (applySubscriptions), never one by one.
		return "", fmt.Errorf("apply event: subscription events go through applySubscriptions")
	}
	return "", fmt.Errorf("%w: event carries no object billingd applies", billing.ErrInvalid)
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
