package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/lib/pq"
)

// Customers (customers table).
//
// A row links one Stripe customer to at most one app account. Links come
// from hints (metadata.account_id on the customer or a subscription, a
// signed client_reference_id on a checkout session) or the app API, and
// are never moved by a hint: a customer linked to account A stays with A.
// A hint never links to an erased account (its tombstone, read under the
// account's shared lock: ptx.erased); the customer is recorded unlinked.
//
// customer.deleted marks the row deleted and removes its account link
// (account_id NULL). The deleted customer's subscriptions keep their rows
// (history and revenue need them) but must no longer grant entitlement:
// READERS OF ENTITLEMENT MUST CHECK customers.deleted (or join through
// account_id, which a deleted customer no longer has). A deleted customer
// is never linked again, and stays deleted whatever late events arrive:
// Stripe cannot undelete a customer.

// linkVia says where a link came from (customers.linked_via).
type linkVia string

const (
	viaCustomerMetadata     linkVia = "customer_metadata"
	viaSubscriptionMetadata linkVia = "subscription_metadata"
	viaCheckout             linkVia = "checkout"
)

// lockedCustomer is the customer row as the event transaction holds it.
type lockedCustomer struct {
	Ref       string         `db:"customer_ref"`
	AccountID sql.NullString `db:"account_id"`
	Deleted   bool           `db:"deleted"`
	Inserted  bool           `db:"inserted"`
}

// qCustomerVersion records a customer event on its row, which the batch
// locked (qLockCustomers): its mode, and its version when newer than the
// one recorded (every SET expression reads the row as it was).
const qCustomerVersion = `
UPDATE customers SET livemode = $2,
    version_at    = CASE WHEN version_at IS NULL OR $3 > version_at THEN $3 ELSE version_at END,
    version_event = CASE WHEN version_at IS NULL OR $3 > version_at THEN $4 ELSE version_event END,
    updated_at    = now()
WHERE stripe_customer_id = $1`

// link applies an account hint to a locked customer and returns the
// outcome and the account whose state changed ("" if none). A deleted
// customer is never linked; an already linked one is never moved; nothing
// is linked to an erased account (OutcomeLinkErased). linkedAtInsert says
// that a link c already has was made by the insert that locked it
// (qLockCustomers links a first-seen customer from its first subscription
// event's hint), which the subscription events report as theirs. c is
// updated with the link it gets.
func link(ctx context.Context, tx ptx, customerID string, c *lockedCustomer, hint string, via linkVia, linkedAtInsert bool) (billing.Outcome, string, error) {
	out, changed, write := linkDecision(tx, c, hint, linkedAtInsert)
	if !write {
		return out, changed, nil
	}
	const q = `
UPDATE customers SET account_id = $2, linked_via = $3, linked_at = now(), updated_at = now()
WHERE stripe_customer_id = $1 AND account_id IS NULL AND NOT deleted`
	if _, err := tx.ExecContext(ctx, q, customerID, hint, string(via)); err != nil {
		return "", "", fmt.Errorf("link customer: %w", translate(err))
	}
	c.AccountID = sql.NullString{String: hint, Valid: true}
	return out, changed, nil
}

// linkDecision is link's rule: the outcome, the account whose state
// changes ("" none) and whether the row must be written (linked to hint).
func linkDecision(tx ptx, c *lockedCustomer, hint string, linkedAtInsert bool) (out billing.Outcome, changed string, write bool) {
	switch {
	case hint == "" || c.Deleted:
		return billing.OutcomeApplied, "", false
	case c.AccountID.Valid && c.AccountID.String == hint:
		if linkedAtInsert {
			return billing.OutcomeApplied, hint, false
		}
		return billing.OutcomeApplied, "", false
	case c.AccountID.Valid:
		return billing.OutcomeLinkConflict, "", false
	case tx.erased[hint]:
		return billing.OutcomeLinkErased, "", false
	}
	return billing.OutcomeApplied, hint, true
}

// plainCustomerEvent reports whether applyCustomer would run only its
// version, discount and link statements for cu: no deletion, no test
// clock. Such events of a batch are applied together (applyPlainCustomers).
func plainCustomerEvent(cu *billing.Customer) bool {
	return cu != nil && !cu.Deleted && cu.TestClock == ""
}

// qPlainCustomers is qCustomerVersion and link's update for many
// customers, each once: every SET expression reads the row as it was, and
// the link's guard is the one link writes with.
const qPlainCustomers = `
UPDATE customers c SET livemode = u.livemode,
    version_at    = CASE WHEN c.version_at IS NULL OR u.at > c.version_at THEN u.at ELSE c.version_at END,
    version_event = CASE WHEN c.version_at IS NULL OR u.at > c.version_at THEN u.event ELSE c.version_event END,
    account_id    = CASE WHEN u.link <> '' AND c.account_id IS NULL AND NOT c.deleted THEN u.link ELSE c.account_id END,
    linked_via    = CASE WHEN u.link <> '' AND c.account_id IS NULL AND NOT c.deleted THEN $6 ELSE c.linked_via END,
    linked_at     = CASE WHEN u.link <> '' AND c.account_id IS NULL AND NOT c.deleted THEN now() ELSE c.linked_at END,
    updated_at    = now()
FROM unnest($1::text[], $2::boolean[], $3::timestamptz[], $4::text[], $5::text[]) AS u(id, livemode, at, event, link)
WHERE c.stripe_customer_id = u.id`

// applyPlainCustomers applies plain customer events (plainCustomerEvent),
// each the only event but subscription ones about its customer in the
// batch, in two statements instead of two to four each: a backfill's
// customer pages and a burst of customer.updated webhooks are mostly
// these. Outcomes and writes are applyCustomer's; order among them cannot
// matter, as no two share a customer.
func applyPlainCustomers(ctx context.Context, tx ptx, items []*batchItem, customers map[string]*lockedCustomer) error {
	if len(items) == 0 {
		return nil
	}
	n := len(items)
	ids, live, at, events, links := make([]string, n), make([]bool, n), make([]string, n), make([]string, n), make([]string, n)
	var changed []string
	var dRefs, dAt, dEvents, dDocs []string
	var dLive []bool
	for i, it := range items {
		cu, c := it.ev.Customer, customers[it.customer]
		if c == nil {
			return fmt.Errorf("apply event: the batch locked no row for its customer")
		}
		ids[i], live[i], at[i], events[i] = cu.ID, cu.Livemode, it.ev.Created.Format(time.RFC3339Nano), it.ev.ID
		if cu.DiscountsKnown {
			doc, err := customerDiscountDoc(tx, it.ev.Created, cu, c)
			if err != nil {
				return err
			}
			dRefs, dLive, dAt, dEvents, dDocs = append(dRefs, c.Ref), append(dLive, cu.Livemode), append(dAt, at[i]),
				append(dEvents, it.ev.ID), append(dDocs, doc)
		}
		out, acct, write := linkDecision(tx, c, cu.LinkHint(), false)
		if write {
			links[i] = acct
			c.AccountID = sql.NullString{String: acct, Valid: true}
		}
		if acct != "" {
			changed = append(changed, acct)
		}
		it.out = out
	}
	if _, err := tx.ExecContext(ctx, qPlainCustomers, pq.Array(ids), pq.Array(live), pq.Array(at), pq.Array(events),
		pq.Array(links), string(viaCustomerMetadata)); err != nil {
		return fmt.Errorf("record customer versions: %w", translate(err))
	}
	if len(dRefs) > 0 {
		if _, err := tx.ExecContext(ctx, qCustomerDiscountVersions, pq.Array(dRefs), pq.Array(dLive), pq.Array(dAt),
			pq.Array(dEvents), pq.Array(dDocs)); err != nil {
			return fmt.Errorf("record customer discounts: %w", translate(err))
		}
	}
	if err := notifyAccountChanges(ctx, tx, tx.changed, changed); err != nil {
		return fmt.Errorf("notify account change: %w", err)
	}
	return nil
}

// applyCustomer handles customer.created/updated/deleted on the
// customer's row as the batch locked it (c, kept up to date): at and
// eventID are the event's, the customer's version.
func applyCustomer(ctx context.Context, tx ptx, at time.Time, eventID string, cu *billing.Customer, c *lockedCustomer) (billing.Outcome, error) {
	if _, err := tx.ExecContext(ctx, qCustomerVersion, cu.ID, cu.Livemode, at, eventID); err != nil {
		return "", fmt.Errorf("record customer version: %w", translate(err))
	}
	if cu.Deleted {
		if c.Deleted {
			return billing.OutcomeApplied, nil
		}
		former := c.AccountID
		if err := deleteCustomer(ctx, tx, cu.ID, former.String); err != nil {
			return "", err
		}
		c.Deleted, c.AccountID = true, sql.NullString{}
		if former.Valid {
			if err := notifyAccountChange(ctx, tx, tx.changed, former.String); err != nil {
				return "", fmt.Errorf("notify account change: %w", err)
			}
		}
		return billing.OutcomeApplied, nil
	}
	if cu.DiscountsKnown {
		if err := recordCustomerDiscount(ctx, tx, at, eventID, cu, c); err != nil {
			return "", err
		}
	}
	out, changed, err := link(ctx, tx, cu.ID, c, cu.LinkHint(), viaCustomerMetadata, false)
	if err != nil {
		return "", err
	}
	if err := recordCustomerTestClock(ctx, tx, cu.ID, cu.TestClock); err != nil {
		return "", err
	}
	if changed != "" {
		if err := notifyAccountChange(ctx, tx, tx.changed, changed); err != nil {
			return "", fmt.Errorf("notify account change: %w", err)
		}
	}
	return out, nil
}

// deleteCustomer marks a customer deleted and removes its account link,
// keeping only the keyed hash of the former account (under the erasure
// ring's writer, tx.ring) so that erasing that account later still finds
// (and removes) the customer's rows.
func deleteCustomer(ctx context.Context, tx ptx, customerID, accountID string) error {
	var former []byte
	if accountID != "" {
		former = subjectHMAC(tx.ring.Writer(), accountID)
		if err := recordKeyUse(ctx, tx.Tx, PurposeErasure, tx.ring.Fingerprints()[0]); err != nil {
			return fmt.Errorf("delete customer: %w", err)
		}
	}
	const q = `
UPDATE customers SET deleted = true, account_id = NULL, linked_via = NULL, linked_at = NULL,
    former_account_hmac = coalesce($2, former_account_hmac), updated_at = now()
WHERE stripe_customer_id = $1`
	if _, err := tx.ExecContext(ctx, q, customerID, former); err != nil {
		return fmt.Errorf("delete customer: %w", translate(err))
	}
	return nil
}

// applyCheckout handles checkout.session.completed: it links the
// customer, whose row the batch recorded and locked (c), from a (signed)
// client_reference_id. A session without a customer (guest checkout,
// one-off payment) is ignored.
func applyCheckout(ctx context.Context, tx ptx, cs *billing.CheckoutSession, c *lockedCustomer) (billing.Outcome, error) {
	if cs.CustomerID == "" {
		return billing.OutcomeIgnored, nil
	}
	out, changed, err := link(ctx, tx, cs.CustomerID, c, cs.AccountHint, viaCheckout, false)
	if err != nil {
		return "", err
	}
	if changed != "" {
		if err := notifyAccountChange(ctx, tx, tx.changed, changed); err != nil {
			return "", fmt.Errorf("notify account change: %w", err)
		}
	}
	return out, nil
}

// qCustomerDiscountVersion records the customer's own discount as one
// version of its history (a version already there, same key, is kept).
const qCustomerDiscountVersion = `
INSERT INTO customer_discount_versions (customer_ref, livemode, version_at, version_event, discounts)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (customer_ref, livemode, version_at, version_event) DO NOTHING`

// recordCustomerDiscount adds a customer discount version and asks for
// the customer's ledger to be re-derived from it on: a customer-level
// discount changes the MRR of every subscription without one of its own.
// An API fetch (no event ID) is keyed by its time alone.
func recordCustomerDiscount(ctx context.Context, tx ptx, at time.Time, eventID string, cu *billing.Customer, c *lockedCustomer) error {
	doc, err := customerDiscountDoc(tx, at, cu, c)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, qCustomerDiscountVersion, c.Ref, cu.Livemode, at, eventID, doc); err != nil {
		return fmt.Errorf("record customer discount: %w", translate(err))
	}
	return nil
}

// customerDiscountDoc renders the discount version's document and asks
// for what recording it entails: the ledger re-derived from at on, and
// a job for each coupon known by ID only.
func customerDiscountDoc(tx ptx, at time.Time, cu *billing.Customer, c *lockedCustomer) (string, error) {
	ds := toDiscountDocs(cu.Discounts)
	if ds == nil {
		ds = []discountDoc{}
	}
	raw, err := json.Marshal(ds)
	if err != nil {
		return "", fmt.Errorf("record customer discount: %w", err)
	}
	tx.fin.touch(ledgerKey{ref: c.Ref, livemode: cu.Livemode}, at)
	for id, coupon := range cu.DiscountCoupons {
		tx.fin.coupons = append(tx.fin.coupons, couponJob{customerID: cu.ID, discountID: id, couponID: coupon, livemode: cu.Livemode})
	}
	return string(raw), nil
}

// qCustomerDiscountVersions is qCustomerDiscountVersion for many.
const qCustomerDiscountVersions = `
INSERT INTO customer_discount_versions (customer_ref, livemode, version_at, version_event, discounts)
SELECT u.ref, u.livemode, u.at, u.event, u.doc::jsonb
FROM unnest($1::uuid[], $2::boolean[], $3::timestamptz[], $4::text[], $5::text[]) AS u(ref, livemode, at, event, doc)
ON CONFLICT (customer_ref, livemode, version_at, version_event) DO NOTHING`
