package postgres

import (
	"context"
	"database/sql"
	"errors"
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

// qLockCustomer checks the event's tombstones ($7) and, only if none
// matches, upserts the customer. The caller holds the subject locks (the
// event batch's qRecordEvents), and this statement's snapshot is taken
// after they were granted, so it sees an erasure that committed while they
// were awaited;
// a tombstoned event writes nothing about its IDs (isTombstoned's
// protocol, in the round trip that locks the customer).
const qLockCustomer = `
WITH t AS (
    SELECT EXISTS (SELECT 1 FROM tombstones WHERE subject_hmac = ANY($7::bytea[])) AS dead
), c AS (
    INSERT INTO customers (stripe_customer_id, livemode, account_id, linked_via, linked_at, version_at, version_event)
    SELECT $1::text, $2::boolean, NULLIF($3::text, ''), $4::text,
           CASE WHEN $3::text = '' THEN NULL ELSE now() END, $5::timestamptz,
           CASE WHEN $5::timestamptz IS NULL THEN NULL ELSE $6::text END
    WHERE NOT (SELECT dead FROM t)
    ON CONFLICT (stripe_customer_id) DO UPDATE SET
        livemode      = EXCLUDED.livemode,
        version_at    = CASE WHEN customers.version_at IS NULL OR EXCLUDED.version_at > customers.version_at
                             THEN COALESCE(EXCLUDED.version_at, customers.version_at) ELSE customers.version_at END,
        version_event = CASE WHEN customers.version_at IS NULL OR EXCLUDED.version_at > customers.version_at
                             THEN COALESCE(EXCLUDED.version_event, customers.version_event) ELSE customers.version_event END,
        updated_at    = now()
    RETURNING customer_ref, account_id, deleted, (xmax = 0) AS inserted
)
SELECT t.dead, c.customer_ref, c.account_id, c.deleted, c.inserted
FROM t LEFT JOIN c ON true`

// lockCustomer checks the event's tombstones (tx.tombstones, whose subject
// locks the event batch holds) and, if none matches (dead false), upserts the
// customer's row and takes its row lock, which serialises every event
// about one customer (a SELECT ... FOR UPDATE would lock nothing for a
// first-seen customer). A first-seen customer is linked to hint at once;
// for an existing one the caller decides (link). at, when set, is a
// customer event's version time.
func lockCustomer(ctx context.Context, tx ptx, customerID string, livemode bool, hint string, via linkVia, at *time.Time, eventID string) (c lockedCustomer, dead bool, err error) {
	if tx.erased[hint] {
		hint = "" // link reports it
	}
	var via_ any
	if hint != "" {
		via_ = string(via)
	}
	hashes := tx.tombstones
	if hashes == nil {
		hashes = [][]byte{}
	}
	var r struct {
		Dead      bool           `db:"dead"`
		Ref       sql.NullString `db:"customer_ref"`
		AccountID sql.NullString `db:"account_id"`
		Deleted   sql.NullBool   `db:"deleted"`
		Inserted  sql.NullBool   `db:"inserted"`
	}
	if err := tx.queryRowx(ctx, qLockCustomer, customerID, livemode, hint, via_, at, eventID,
		pq.ByteaArray(hashes)).StructScan(&r); err != nil {
		return c, false, fmt.Errorf("lock customer: %w", translate(err))
	}
	if r.Dead {
		return c, true, nil
	}
	if !r.Ref.Valid {
		return c, false, fmt.Errorf("lock customer: upsert returned no row")
	}
	return lockedCustomer{Ref: r.Ref.String, AccountID: r.AccountID, Deleted: r.Deleted.Bool, Inserted: r.Inserted.Bool}, false, nil
}

// link applies an account hint to a locked customer and returns the
// outcome and the account whose state changed ("" if none). A deleted
// customer is never linked; an already linked one is never moved; nothing
// is linked to an erased account (OutcomeLinkErased).
func link(ctx context.Context, tx ptx, customerID string, c *lockedCustomer, hint string, via linkVia) (billing.Outcome, string, error) {
	switch {
	case hint == "" || c.Deleted:
		return billing.OutcomeApplied, "", nil
	case c.AccountID.Valid && c.AccountID.String == hint:
		if c.Inserted {
			return billing.OutcomeApplied, hint, nil // linked by lockCustomer's insert
		}
		return billing.OutcomeApplied, "", nil
	case c.AccountID.Valid:
		return billing.OutcomeLinkConflict, "", nil
	case tx.erased[hint]:
		return billing.OutcomeLinkErased, "", nil
	}
	const q = `
UPDATE customers SET account_id = $2, linked_via = $3, linked_at = now(), updated_at = now()
WHERE stripe_customer_id = $1 AND account_id IS NULL AND NOT deleted`
	if _, err := tx.ExecContext(ctx, q, customerID, hint, string(via)); err != nil {
		return "", "", fmt.Errorf("link customer: %w", translate(err))
	}
	c.AccountID = sql.NullString{String: hint, Valid: true}
	return billing.OutcomeApplied, hint, nil
}

// applyCustomer handles customer.created/updated/deleted.
func applyCustomer(ctx context.Context, tx ptx, ev billing.Event) (billing.Outcome, error) {
	cu := ev.Customer
	hint := cu.AccountHint
	if cu.Deleted {
		hint = ""
	}
	at := ev.Created
	c, dead, err := lockCustomer(ctx, tx, cu.ID, cu.Livemode, hint, viaCustomerMetadata, &at, ev.ID)
	if err != nil {
		return "", err
	}
	if dead {
		return billing.OutcomeTombstoned, nil
	}
	if cu.Deleted {
		if c.Deleted {
			return billing.OutcomeApplied, nil
		}
		if err := deleteCustomer(ctx, tx, cu.ID, c.AccountID.String); err != nil {
			return "", err
		}
		if c.AccountID.Valid {
			if err := notifyAccountChange(ctx, tx.Tx, tx.changed, c.AccountID.String); err != nil {
				return "", fmt.Errorf("notify account change: %w", err)
			}
		}
		return billing.OutcomeApplied, nil
	}
	out, changed, err := link(ctx, tx, cu.ID, &c, hint, viaCustomerMetadata)
	if err != nil {
		return "", err
	}
	if changed != "" {
		if err := notifyAccountChange(ctx, tx.Tx, tx.changed, changed); err != nil {
			return "", fmt.Errorf("notify account change: %w", err)
		}
	}
	return out, nil
}

// deleteCustomer marks a customer deleted and removes its account link,
// keeping only the keyed hash of the former account so that erasing that
// account later still finds (and removes) the customer's rows. ctx carries
// the erasure ring (withErasureKey), as for isTombstoned.
func deleteCustomer(ctx context.Context, tx ptx, customerID, accountID string) error {
	var former []byte
	if accountID != "" {
		r, err := ctxErasureRing(ctx, tx.Tx)
		if err != nil {
			return fmt.Errorf("delete customer: %w", err)
		}
		former = subjectHMAC(r.Writer(), accountID)
		if err := recordKeyUse(ctx, tx.Tx, PurposeErasure, r.Fingerprints()[0]); err != nil {
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

// applyCheckout handles checkout.session.completed: it records the
// customer and links it from a (signed) client_reference_id. A session
// without a customer (guest checkout, one-off payment) is ignored.
func applyCheckout(ctx context.Context, tx ptx, ev billing.Event) (billing.Outcome, error) {
	cs := ev.Checkout
	if cs.CustomerID == "" {
		return billing.OutcomeIgnored, nil
	}
	c, dead, err := lockCustomer(ctx, tx, cs.CustomerID, cs.Livemode, cs.AccountHint, viaCheckout, nil, "")
	if err != nil {
		return "", err
	}
	if dead {
		return billing.OutcomeTombstoned, nil
	}
	out, changed, err := link(ctx, tx, cs.CustomerID, &c, cs.AccountHint, viaCheckout)
	if err != nil {
		return "", err
	}
	if changed != "" {
		if err := notifyAccountChange(ctx, tx.Tx, tx.changed, changed); err != nil {
			return "", fmt.Errorf("notify account change: %w", err)
		}
	}
	return out, nil
}

// errNotFoundRow reports whether err is "no rows".
func errNotFoundRow(err error) bool { return errors.Is(err, sql.ErrNoRows) }
