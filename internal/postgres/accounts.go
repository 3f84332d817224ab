package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Accounts: the app API's view of customers and subscriptions, keyed by the
// app's account ID (customers.account_id).

// AccountLink links Stripe customer customerID to accountID (the app API's
// PUT /v1/accounts/{id}/billing). The customer need not be known yet: apps
// often create it in Stripe and link it before the first webhook arrives,
// so the row is upserted, and the upsert's row lock serialises this against
// the event path. Links never move: a customer linked to another account,
// deleted in Stripe, or erased is refused with the matching billing error.
// An erased account is refused (billing.ErrAccountErased) unless
// opt.ReuseErased: the reuse is then audited and the account's tombstones
// marked reused, so later API links need no flag (hints still never link).
func (s *Store) AccountLink(ctx context.Context, accountID, customerID string, opt billing.LinkOptions) (billing.LinkResult, error) {
	if !billing.ValidAccountID(accountID) || !billing.ValidCustomerID(customerID) {
		return 0, fmt.Errorf("link account: %w: malformed account or customer ID", billing.ErrInvalid)
	}
	if opt.Actor == "" {
		opt.Actor = "api"
	}
	var res billing.LinkResult
	changed := accountSet{}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// Before writing anything about the customer or the account (see
		// checkTombstones): an erasure of either then either committed before
		// and is seen here, or waits for this transaction and erases the link.
		ring, err := s.erasureRingTx(ctx, tx)
		if err != nil {
			return err
		}
		dead, acct, err := checkTombstones(ctx, tx, ring, []string{customerID}, accountID)
		if err != nil {
			return err
		}
		if dead {
			return billing.ErrCustomerErased
		}
		reused := false
		if acct.Erased && !acct.Reused {
			if !opt.ReuseErased {
				return billing.ErrAccountErased
			}
			if reused, err = s.reuseErasedAccount(ctx, tx, accountID, opt.Actor); err != nil {
				return err
			}
		}
		// DO UPDATE, not DO NOTHING: only an update takes the row lock and
		// returns the existing row. It changes nothing the event path reads.
		const q = `
INSERT INTO customers (stripe_customer_id, account_id, linked_via, linked_at)
VALUES ($1, $2, 'api', now())
ON CONFLICT (stripe_customer_id) DO UPDATE SET updated_at = customers.updated_at
RETURNING account_id, deleted, (xmax = 0) AS inserted`
		var row struct {
			AccountID sql.NullString `db:"account_id"`
			Deleted   bool           `db:"deleted"`
			Inserted  bool           `db:"inserted"`
		}
		if err := tx.QueryRowxContext(ctx, q, customerID, accountID).StructScan(&row); err != nil {
			return translate(err)
		}
		switch {
		case row.Inserted:
			res = billing.LinkCreated
		case row.Deleted:
			return billing.ErrCustomerDeleted
		case row.AccountID.Valid && row.AccountID.String == accountID:
			res = billing.LinkExisted
			if !reused {
				return nil // nothing changed: no notification
			}
		case row.AccountID.Valid:
			return billing.ErrLinkedElsewhere
		default:
			const u = `
UPDATE customers SET account_id = $2, linked_via = 'api', linked_at = now(), updated_at = now()
WHERE stripe_customer_id = $1`
			if _, err := tx.ExecContext(ctx, u, customerID, accountID); err != nil {
				return translate(err)
			}
			res = billing.LinkCreated
		}
		if reused {
			res = billing.LinkReused
		}
		return notifyAccountChange(ctx, tx, changed, accountID)
	})
	if err != nil {
		return 0, fmt.Errorf("link account: %w", err)
	}
	s.accountsCommitted(changed)
	return res, nil
}

// AuditActionReuse is the audit_log action of an erased account ID reused
// by the app.
const AuditActionReuse = "account.reuse"

// reuseErasedAccount marks the account's tombstones reused and audits it;
// false when a concurrent call already did (the row lock of the UPDATE
// orders them, and the second finds nothing left to lift).
func (s *Store) reuseErasedAccount(ctx context.Context, tx *sqlx.Tx, accountID, actor string) (bool, error) {
	ring, err := s.erasureRingTx(ctx, tx)
	if err != nil {
		return false, err
	}
	const q = `
UPDATE account_tombstones SET reused_at = now()
WHERE subject_hmac = ANY($1) AND reused_at IS NULL`
	r, err := tx.ExecContext(ctx, q, pq.ByteaArray(ringHashes(ring, accountID)))
	if err != nil {
		return false, fmt.Errorf("reuse erased account: %w", translate(err))
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return false, nil
	}
	if err := recordKeyUse(ctx, tx, PurposeErasure, ring.Fingerprints()[0]); err != nil {
		return false, err
	}
	const qAudit = `
INSERT INTO audit_log (actor, action, subject_hmac, details)
VALUES ($1, $2, $3, '{"linked_via":"api"}')`
	if _, err := tx.ExecContext(ctx, qAudit, actor, AuditActionReuse, subjectHMAC(ring.Writer(), accountID)); err != nil {
		return false, fmt.Errorf("audit account reuse: %w", translate(err))
	}
	return true, nil
}

// accountSubRow is the part of a subscriptions row the app API reads.
type accountSubRow struct {
	AccountID          string     `db:"account_id"` // qEntitlementSubs only
	ID                 string     `db:"stripe_subscription_id"`
	CustomerID         string     `db:"stripe_customer_id"`
	Livemode           bool       `db:"livemode"`
	Status             string     `db:"status"`
	Currency           string     `db:"currency"`
	Items              []byte     `db:"items"`
	CurrentPeriodStart *time.Time `db:"current_period_start"`
	CurrentPeriodEnd   *time.Time `db:"current_period_end"`
	TrialEnd           *time.Time `db:"trial_end"`
	CancelAt           *time.Time `db:"cancel_at"`
	CancelAtPeriodEnd  bool       `db:"cancel_at_period_end"`
	CustomerDeleted    bool       `db:"customer_deleted"`
	PendingUpdate      []byte     `db:"pending_update"`
	ClockTime          *time.Time `db:"clock_time"` // qEntitlementSubs only
}

func (r accountSubRow) toSubscription() (billing.Subscription, error) {
	s := billing.Subscription{
		ID: r.ID, CustomerID: r.CustomerID, Livemode: r.Livemode, Status: billing.Status(r.Status),
		Currency: r.Currency, CurrentPeriodStart: r.CurrentPeriodStart, CurrentPeriodEnd: r.CurrentPeriodEnd,
		TrialEnd: r.TrialEnd, CancelAt: r.CancelAt, CancelAtPeriodEnd: r.CancelAtPeriodEnd,
	}
	var err error
	if s.Items, err = decodeItems(r.Items); err != nil {
		return s, err
	}
	s.PendingUpdate, err = decodePending(r.PendingUpdate)
	return s, err
}

// AccountBilling returns the account's customers and their subscriptions,
// read in one snapshot; billing.ErrNotFound when no customer is linked to
// it.
func (s *Store) AccountBilling(ctx context.Context, accountID string) (billing.AccountBilling, error) {
	out := billing.AccountBilling{AccountID: accountID}
	err := s.inReadTx(ctx, func(tx *sqlx.Tx) error {
		const qc = `
SELECT stripe_customer_id, livemode FROM customers
WHERE account_id = $1 ORDER BY stripe_customer_id`
		var cs []struct {
			ID       string `db:"stripe_customer_id"`
			Livemode *bool  `db:"livemode"`
		}
		if err := tx.SelectContext(ctx, &cs, qc, accountID); err != nil {
			return translate(err)
		}
		if len(cs) == 0 {
			return billing.ErrNotFound
		}
		for _, c := range cs {
			out.Customers = append(out.Customers, billing.AccountCustomer{ID: c.ID, Livemode: c.Livemode})
		}
		const qs = `
SELECT s.stripe_subscription_id, s.stripe_customer_id, s.livemode, s.status, s.currency, s.items,
       s.current_period_start, s.current_period_end, s.trial_end, s.cancel_at, s.cancel_at_period_end,
       c.deleted AS customer_deleted, s.pending_update
FROM customers c JOIN subscriptions s ON s.stripe_customer_id = c.stripe_customer_id
WHERE c.account_id = $1
ORDER BY s.stripe_subscription_id`
		var rows []accountSubRow
		if err := tx.SelectContext(ctx, &rows, qs, accountID); err != nil {
			return translate(err)
		}
		out.Subscriptions = make([]billing.Subscription, 0, len(rows))
		for _, r := range rows {
			sub, err := r.toSubscription()
			if err != nil {
				return err
			}
			out.Subscriptions = append(out.Subscriptions, sub)
		}
		// Live schedules: each subscription's scheduled change reads them.
		const qsc = `
SELECT coalesce(json_agg(json_build_object('id', sc.stripe_schedule_id, 'sub', sc.stripe_subscription_id,
       'livemode', sc.livemode, 'status', sc.status, 'end_behavior', sc.end_behavior, 'phases', sc.phases)), '[]')
FROM customers c JOIN subscription_schedules sc ON sc.stripe_customer_id = c.stripe_customer_id
WHERE c.account_id = $1 AND sc.status IN ('not_started', 'active')`
		var raw []byte
		if err := tx.GetContext(ctx, &raw, qsc, accountID); err != nil {
			return translate(err)
		}
		var err error
		out.Schedules, err = decodeSchedules(raw)
		return err
	})
	if err != nil {
		return billing.AccountBilling{}, fmt.Errorf("read account billing: %w", err)
	}
	return out, nil
}

// AccountSubscriptions returns what entitlement is computed from: the
// subscriptions in one mode of every customer linked to the account (none
// for an unknown account). One indexed query; the entitlement cache calls
// it on a miss.
func (s *Store) AccountSubscriptions(ctx context.Context, accountID string, livemode bool) ([]billing.AccountSubscription, error) {
	var rows []accountSubRow
	if err := s.db.SelectContext(ctx, &rows, qAccountSubscriptions, accountID, livemode); err != nil {
		return nil, fmt.Errorf("read account subscriptions: %w", translate(err))
	}
	out := make([]billing.AccountSubscription, 0, len(rows))
	for _, r := range rows {
		as, err := r.toAccountSubscription()
		if err != nil {
			return nil, fmt.Errorf("read account subscriptions: %w", err)
		}
		out = append(out, as)
	}
	return out, nil
}

// qEntitlementSubs selects the subscriptions entitlement is computed from,
// with each customer's account and test clock time. AccountSubscriptions
// reads one account in one mode; the change feed (feedAnswers) reads many
// accounts in both modes with the same columns and joins, so its answers
// are computed from exactly what the endpoint's are.
const qEntitlementSubs = `
SELECT c.account_id, s.stripe_subscription_id, s.stripe_customer_id, s.livemode, s.status, s.currency, s.items,
       s.current_period_start, s.current_period_end, s.trial_end, s.cancel_at, s.cancel_at_period_end,
       c.deleted AS customer_deleted, s.pending_update, k.frozen_time AS clock_time
FROM customers c JOIN subscriptions s ON s.stripe_customer_id = c.stripe_customer_id
LEFT JOIN stripe_test_clocks k ON k.test_clock_id = c.test_clock_id AND NOT s.livemode`

const qAccountSubscriptions = qEntitlementSubs + `
WHERE c.account_id = $1 AND s.livemode = $2`

// toAccountSubscription is the row as entitlement reads it: the
// subscription, its customer's deletion and its test clock's time.
func (r accountSubRow) toAccountSubscription() (billing.AccountSubscription, error) {
	sub, err := r.toSubscription()
	if err != nil {
		return billing.AccountSubscription{}, err
	}
	as := billing.AccountSubscription{Subscription: sub, CustomerDeleted: r.CustomerDeleted}
	if r.ClockTime != nil {
		t := r.ClockTime.UTC()
		as.ClockTime = &t
	}
	return as, nil
}

// inReadTx runs fn in a read-only repeatable-read transaction: several
// queries that see one snapshot.
func (s *Store) inReadTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return fmt.Errorf("begin: %w", translate(err))
	}
	defer tx.Rollback() //nolint:errcheck // read only: nothing to keep
	return fn(tx)
}
