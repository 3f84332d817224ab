package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// Subscriptions: current state (subscriptions) and state history
// (subscription_versions). Every version goes into the history, late ones
// included, because metrics derive from it; current state moves only to a
// newer version key (billing/order.go). Both are written under the owning
// customer's row lock (lockCustomer), so versions of one customer never
// interleave.

// subscriptionRow is a subscriptions row; items and discounts are jsonb
// written only from billing.Item and billing.Discount.
type subscriptionRow struct {
	ID                 string     `db:"stripe_subscription_id"`
	Ref                string     `db:"subscription_ref"`
	CustomerID         string     `db:"stripe_customer_id"`
	CustomerRef        string     `db:"customer_ref"`
	Livemode           bool       `db:"livemode"`
	Status             string     `db:"status"`
	Currency           string     `db:"currency"`
	Items              []byte     `db:"items"`
	ItemsIncomplete    bool       `db:"items_incomplete"`
	Discounts          []byte     `db:"discounts"`
	Created            *time.Time `db:"created"`
	StartDate          *time.Time `db:"start_date"`
	CurrentPeriodStart *time.Time `db:"current_period_start"`
	CurrentPeriodEnd   *time.Time `db:"current_period_end"`
	TrialStart         *time.Time `db:"trial_start"`
	TrialEnd           *time.Time `db:"trial_end"`
	CancelAt           *time.Time `db:"cancel_at"`
	CancelAtPeriodEnd  bool       `db:"cancel_at_period_end"`
	CanceledAt         *time.Time `db:"canceled_at"`
	EndedAt            *time.Time `db:"ended_at"`
	CollectionPaused   bool       `db:"collection_paused"`
	VersionAt          time.Time  `db:"version_at"`
	VersionRank        int        `db:"version_rank"`
	VersionEvent       string     `db:"version_event"`
}

func (r subscriptionRow) key() billing.VersionKey {
	return billing.VersionKey{At: r.VersionAt, Rank: r.VersionRank, Event: r.VersionEvent}
}

// toSubscription converts a row back into the domain value.
func (r subscriptionRow) toSubscription() (billing.Subscription, error) {
	s := billing.Subscription{
		ID: r.ID, CustomerID: r.CustomerID, Livemode: r.Livemode, Status: billing.Status(r.Status),
		Currency: r.Currency, ItemsIncomplete: r.ItemsIncomplete, Created: r.Created, StartDate: r.StartDate,
		CurrentPeriodStart: r.CurrentPeriodStart, CurrentPeriodEnd: r.CurrentPeriodEnd,
		TrialStart: r.TrialStart, TrialEnd: r.TrialEnd, CancelAt: r.CancelAt,
		CancelAtPeriodEnd: r.CancelAtPeriodEnd, CanceledAt: r.CanceledAt, EndedAt: r.EndedAt,
		CollectionPaused: r.CollectionPaused,
	}
	if err := json.Unmarshal(r.Items, &s.Items); err != nil {
		return s, fmt.Errorf("read subscription items: %w", err)
	}
	if err := json.Unmarshal(r.Discounts, &s.Discounts); err != nil {
		return s, fmt.Errorf("read subscription discounts: %w", err)
	}
	return s, nil
}

// currentSubscription reads a subscription's current state, or nil if it
// is not known yet. The caller holds the customer's lock.
func currentSubscription(ctx context.Context, tx *sqlx.Tx, id string) (*subscriptionRow, error) {
	const q = `
SELECT stripe_subscription_id, subscription_ref, stripe_customer_id, customer_ref, livemode, status,
       currency, items, items_incomplete, discounts, created, start_date, current_period_start,
       current_period_end, trial_start, trial_end, cancel_at, cancel_at_period_end, canceled_at,
       ended_at, collection_paused, version_at, version_rank, version_event
FROM subscriptions WHERE stripe_subscription_id = $1`
	var r subscriptionRow
	if err := tx.QueryRowxContext(ctx, q, id).StructScan(&r); err != nil {
		if errNotFoundRow(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read subscription: %w", translate(err))
	}
	return &r, nil
}

// applySubscription handles every customer.subscription.* event (and API
// fetches of a subscription): history always, current state if newer.
func applySubscription(ctx context.Context, tx *sqlx.Tx, ev billing.Event) (billing.Outcome, error) {
	s := *ev.Subscription
	if dead, err := isTombstoned(ctx, tx, s.CustomerID, s.ID); err != nil {
		return "", fmt.Errorf("check tombstones: %w", err)
	} else if dead {
		return billing.OutcomeTombstoned, nil
	}
	c, err := lockCustomer(ctx, tx, s.CustomerID, s.Livemode, s.AccountHint, viaSubscriptionMetadata, nil, "")
	if err != nil {
		return "", err
	}
	out, linked, err := link(ctx, tx, s.CustomerID, &c, s.AccountHint, viaSubscriptionMetadata)
	if err != nil {
		return "", err
	}
	cur, err := currentSubscription(ctx, tx, s.ID)
	if err != nil {
		return "", err
	}
	key := billing.SubscriptionVersionKey(s, ev.Created, ev.ID)
	mrr, fixed := billing.SubscriptionMRR(s)
	items, err := json.Marshal(s.Items)
	if err != nil {
		return "", fmt.Errorf("encode items: %w", err)
	}
	discounts, err := json.Marshal(s.Discounts)
	if err != nil {
		return "", fmt.Errorf("encode discounts: %w", err)
	}
	if s.Discounts == nil {
		discounts = []byte("[]")
	}
	if s.Items == nil {
		items = []byte("[]")
	}
	w := subscriptionWrite{s: &s, customerRef: c.Ref, key: key, mrr: mrr, fixed: fixed, items: string(items), discounts: string(discounts)}

	newer := cur == nil || key.NewerThan(cur.key())
	ref := ""
	if cur != nil {
		ref = cur.Ref
	}
	if newer {
		r, ok, err := writeCurrent(ctx, tx, w)
		if err != nil {
			return "", err
		}
		if ok {
			ref = r
		} else {
			newer = false // the row guard found a newer version: keep it
		}
	}
	if err := insertVersion(ctx, tx, ref, w); err != nil {
		return "", err
	}
	if err := recomputeMovements(ctx, tx, c.Ref, s.Livemode, ev.Created); err != nil {
		return "", fmt.Errorf("recompute movements: %w", err)
	}
	if newer && s.Livemode {
		ch := SubscriptionChange{Next: s, CustomerRef: c.Ref, SubscriptionRef: ref, At: ev.Created}
		if cur != nil {
			prev, err := cur.toSubscription()
			if err != nil {
				return "", err
			}
			ch.Prev = &prev
		}
		if err := enqueueSubscriptionSync(ctx, tx, ch); err != nil {
			return "", fmt.Errorf("enqueue subscription sync: %w", err)
		}
	}
	acct := linked
	if newer && c.AccountID.Valid && !c.Deleted {
		acct = c.AccountID.String
	}
	if acct != "" {
		if err := notifyAccountChange(ctx, tx, acct); err != nil {
			return "", fmt.Errorf("notify account change: %w", err)
		}
	}
	if out == billing.OutcomeApplied && !newer {
		out = billing.OutcomeStale
	}
	return out, nil
}

// subscriptionWrite is one version ready to be written.
type subscriptionWrite struct {
	s           *billing.Subscription
	customerRef string
	key         billing.VersionKey
	mrr         int64
	fixed       bool
	items       string
	discounts   string
}

// writeCurrent inserts or replaces current state and returns the
// subscription_ref. The WHERE guard repeats the version comparison in SQL
// (COLLATE "C": byte order, as in Go) so a replaced row is always older;
// ok is false if the guard refused. Invoice facts are left alone on update:
// they have their own ordering (applyInvoice). A first insert takes over
// the invoice facts that arrived before the subscription
// (pending_invoice_facts) and deletes them, in the same statement.
func writeCurrent(ctx context.Context, tx *sqlx.Tx, w subscriptionWrite) (string, bool, error) {
	const q = `
WITH p AS (
    DELETE FROM pending_invoice_facts WHERE stripe_subscription_id = $1
    RETURNING latest_invoice_status, invoice_attempt_count, next_payment_attempt, invoice_version_at
)
INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, customer_ref, livemode, status,
    currency, items, items_incomplete, discounts, mrr_minor, mrr_fixed, created, start_date,
    current_period_start, current_period_end, trial_start, trial_end, cancel_at, cancel_at_period_end,
    canceled_at, ended_at, collection_paused, version_at, version_rank, version_event,
    latest_invoice_status, invoice_attempt_count, next_payment_attempt, invoice_version_at)
SELECT $1::text, $2::text, $3::uuid, $4::boolean, $5::text, $6::text, $7::jsonb, $8::boolean, $9::jsonb,
    $10::bigint, $11::boolean, $12::timestamptz, $13::timestamptz, $14::timestamptz, $15::timestamptz,
    $16::timestamptz, $17::timestamptz, $18::timestamptz, $19::boolean, $20::timestamptz, $21::timestamptz,
    $22::boolean, $23::timestamptz, $24::smallint, $25::text,
    p.latest_invoice_status, COALESCE(p.invoice_attempt_count, 0), p.next_payment_attempt, p.invoice_version_at
FROM (VALUES (1)) AS one LEFT JOIN p ON true
ON CONFLICT (stripe_subscription_id) DO UPDATE SET
    livemode = EXCLUDED.livemode, status = EXCLUDED.status, currency = EXCLUDED.currency,
    items = EXCLUDED.items, items_incomplete = EXCLUDED.items_incomplete, discounts = EXCLUDED.discounts,
    mrr_minor = EXCLUDED.mrr_minor, mrr_fixed = EXCLUDED.mrr_fixed, created = EXCLUDED.created,
    start_date = EXCLUDED.start_date, current_period_start = EXCLUDED.current_period_start,
    current_period_end = EXCLUDED.current_period_end, trial_start = EXCLUDED.trial_start,
    trial_end = EXCLUDED.trial_end, cancel_at = EXCLUDED.cancel_at,
    cancel_at_period_end = EXCLUDED.cancel_at_period_end, canceled_at = EXCLUDED.canceled_at,
    ended_at = EXCLUDED.ended_at, collection_paused = EXCLUDED.collection_paused,
    version_at = EXCLUDED.version_at, version_rank = EXCLUDED.version_rank,
    version_event = EXCLUDED.version_event, updated_at = now()
WHERE (subscriptions.version_at, subscriptions.version_rank, subscriptions.version_event COLLATE "C")
    < (EXCLUDED.version_at, EXCLUDED.version_rank, EXCLUDED.version_event COLLATE "C")
RETURNING subscription_ref`
	s := w.s
	var ref string
	err := tx.QueryRowxContext(ctx, q, s.ID, s.CustomerID, w.customerRef, s.Livemode, string(s.Status),
		s.Currency, w.items, s.ItemsIncomplete, w.discounts, w.mrr, w.fixed, s.Created, s.StartDate,
		s.CurrentPeriodStart, s.CurrentPeriodEnd, s.TrialStart, s.TrialEnd, s.CancelAt, s.CancelAtPeriodEnd,
		s.CanceledAt, s.EndedAt, s.CollectionPaused, w.key.At, w.key.Rank, w.key.Event).Scan(&ref)
	if err != nil {
		if errNotFoundRow(err) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("write subscription: %w", translate(err))
	}
	return ref, true, nil
}

// insertVersion appends the version to the state history. A version
// already recorded (same ref and key) is left as it is.
func insertVersion(ctx context.Context, tx *sqlx.Tx, ref string, w subscriptionWrite) error {
	const q = `
INSERT INTO subscription_versions (subscription_ref, customer_ref, livemode, status, currency, items,
    discounts, mrr_minor, mrr_fixed, current_period_start, current_period_end, trial_end, cancel_at,
    cancel_at_period_end, ended_at, version_at, version_rank, version_event)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (subscription_ref, version_at, version_rank, version_event) DO NOTHING`
	s := w.s
	_, err := tx.ExecContext(ctx, q, ref, w.customerRef, s.Livemode, string(s.Status), s.Currency, w.items,
		w.discounts, w.mrr, w.fixed, s.CurrentPeriodStart, s.CurrentPeriodEnd, s.TrialEnd, s.CancelAt,
		s.CancelAtPeriodEnd, s.EndedAt, w.key.At, w.key.Rank, w.key.Event)
	if err != nil {
		return fmt.Errorf("insert subscription version: %w", translate(err))
	}
	return nil
}

// applyInvoice handles invoice.paid and invoice.payment_failed: it updates
// only the subscription's invoice facts (latest_invoice_status,
// invoice_attempt_count, next_payment_attempt), ordered by
// invoice_version_at with billing.InvoiceFactsNewer.
//
// An invoice can arrive before its subscription (Stripe does not order
// deliveries). Its facts then wait in pending_invoice_facts, under the same
// ordering rule, and the subscription's first version takes them over
// (writeCurrent), so the final state does not depend on delivery order.
// One-off invoices (no subscription) and invoices without a customer are
// ignored: nothing in them concerns entitlement.
func applyInvoice(ctx context.Context, tx *sqlx.Tx, ev billing.Event) (billing.Outcome, error) {
	inv := ev.Invoice
	if inv.CustomerID == "" || inv.SubscriptionID == "" {
		return billing.OutcomeIgnored, nil
	}
	if dead, err := isTombstoned(ctx, tx, inv.CustomerID, inv.SubscriptionID); err != nil {
		return "", fmt.Errorf("check tombstones: %w", err)
	} else if dead {
		return billing.OutcomeTombstoned, nil
	}
	c, err := lockCustomer(ctx, tx, inv.CustomerID, inv.Livemode, "", "", nil, "")
	if err != nil {
		return "", err
	}
	// Current facts: on the subscription if it is known, else pending.
	const qCur = `
SELECT true AS known, invoice_version_at, latest_invoice_status, invoice_attempt_count
FROM subscriptions WHERE stripe_subscription_id = $1
UNION ALL
SELECT false, invoice_version_at, latest_invoice_status, invoice_attempt_count
FROM pending_invoice_facts WHERE stripe_subscription_id = $1`
	var rows []struct {
		Known    bool           `db:"known"`
		At       *time.Time     `db:"invoice_version_at"`
		Status   sql.NullString `db:"latest_invoice_status"`
		Attempts int64          `db:"invoice_attempt_count"`
	}
	if err := sqlx.SelectContext(ctx, tx, &rows, qCur, inv.SubscriptionID); err != nil {
		return "", fmt.Errorf("read invoice facts: %w", translate(err))
	}
	known := false
	var curAt *time.Time
	var curStatus billing.InvoiceStatus
	var curAttempts int64
	for _, r := range rows {
		if r.Known || !known {
			known, curAt, curStatus, curAttempts = r.Known, r.At, billing.InvoiceStatus(r.Status.String), r.Attempts
		}
	}
	if len(rows) > 0 && !billing.InvoiceFactsNewer(ev.Created, inv.Status, inv.AttemptCount, curAt, curStatus, curAttempts) {
		return billing.OutcomeStale, nil
	}
	if !known {
		const qPending = `
INSERT INTO pending_invoice_facts (stripe_subscription_id, stripe_customer_id, latest_invoice_status,
    invoice_attempt_count, next_payment_attempt, invoice_version_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (stripe_subscription_id) DO UPDATE SET
    latest_invoice_status = EXCLUDED.latest_invoice_status, invoice_attempt_count = EXCLUDED.invoice_attempt_count,
    next_payment_attempt = EXCLUDED.next_payment_attempt, invoice_version_at = EXCLUDED.invoice_version_at`
		if _, err := tx.ExecContext(ctx, qPending, inv.SubscriptionID, inv.CustomerID, string(inv.Status),
			inv.AttemptCount, inv.NextPaymentAttempt, ev.Created); err != nil {
			return "", fmt.Errorf("hold invoice facts: %w", translate(err))
		}
		return billing.OutcomeApplied, nil
	}
	const q = `
UPDATE subscriptions SET latest_invoice_status = $2, invoice_attempt_count = $3,
    next_payment_attempt = $4, invoice_version_at = $5, updated_at = now()
WHERE stripe_subscription_id = $1`
	if _, err := tx.ExecContext(ctx, q, inv.SubscriptionID, string(inv.Status), inv.AttemptCount, inv.NextPaymentAttempt, ev.Created); err != nil {
		return "", fmt.Errorf("write invoice facts: %w", translate(err))
	}
	if c.AccountID.Valid && !c.Deleted {
		if err := notifyAccountChange(ctx, tx, c.AccountID.String); err != nil {
			return "", fmt.Errorf("notify account change: %w", err)
		}
	}
	return billing.OutcomeApplied, nil
}
