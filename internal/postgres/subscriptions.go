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
// written only from billing.Item and billing.Discount. Also read by
// reconcile.go.
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

// qWriteSubscription writes one version in one statement, under the
// customer's row lock (taken by lockCustomer in an earlier statement, so
// this statement's snapshot already shows every committed change of the
// subscription):
//
//   - old: current state before, returned for the change record;
//   - up: insert, or replace current state when the version key is newer
//     (the WHERE guard, byte-order collation as in Go's billing.VersionKey);
//     a first insert takes over invoice facts that arrived before the
//     subscription (pending_invoice_facts, deleted in the same statement);
//   - v: the version into the state history, whether or not it was newer;
//   - h: the customer's history in the version's mode after the insert (for
//     recomputeMovements): the rows this statement's snapshot shows plus v's,
//     since a statement does not see its own inserts.
//
// One statement instead of four: the event path's cost is round trips.
const qWriteSubscription = `
WITH old AS (
    SELECT subscription_ref, to_jsonb(s) AS state FROM subscriptions s WHERE stripe_subscription_id = $1
), p AS (
    DELETE FROM pending_invoice_facts WHERE stripe_subscription_id = $1
    RETURNING latest_invoice_status, invoice_attempt_count, next_payment_attempt, invoice_version_at
), up AS (
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
    RETURNING subscription_ref
), ref AS (
    SELECT COALESCE((SELECT subscription_ref FROM up), (SELECT subscription_ref FROM old)) AS r
), v AS (
    INSERT INTO subscription_versions (subscription_ref, customer_ref, livemode, status, currency, items,
        discounts, mrr_minor, mrr_fixed, current_period_start, current_period_end, trial_end, cancel_at,
        cancel_at_period_end, ended_at, version_at, version_rank, version_event)
    SELECT ref.r, $3::uuid, $4::boolean, $5::text, $6::text, $7::jsonb, $9::jsonb, $10::bigint, $11::boolean,
        $14::timestamptz, $15::timestamptz, $17::timestamptz, $18::timestamptz, $19::boolean, $21::timestamptz,
        $23::timestamptz, $24::smallint, $25::text
    FROM ref
    ON CONFLICT (subscription_ref, version_at, version_rank, version_event) DO NOTHING
    RETURNING ` + historyColumns + `
), h AS (
    SELECT ` + historyColumns + ` FROM subscription_versions WHERE customer_ref = $3::uuid AND livemode = $4::boolean
    UNION ALL
    SELECT * FROM v
)
SELECT ref.r::text AS ref, EXISTS (SELECT 1 FROM up) AS changed, (SELECT state FROM old) AS old,
       (SELECT json_agg(h) FROM h) AS history
FROM ref`

// historyColumns are the subscription_versions columns the derivation
// reads (versionRow).
const historyColumns = `subscription_ref, livemode, status, currency, items, discounts,
    current_period_start, current_period_end, trial_end, cancel_at, cancel_at_period_end, ended_at,
    version_at, version_rank, version_event`

// oldState is a subscriptions row as to_jsonb renders it, for the change
// record's Prev.
type oldState struct {
	ID                 string             `json:"stripe_subscription_id"`
	CustomerID         string             `json:"stripe_customer_id"`
	Livemode           bool               `json:"livemode"`
	Status             billing.Status     `json:"status"`
	Currency           string             `json:"currency"`
	Items              []billing.Item     `json:"items"`
	ItemsIncomplete    bool               `json:"items_incomplete"`
	Discounts          []billing.Discount `json:"discounts"`
	Created            *time.Time         `json:"created"`
	StartDate          *time.Time         `json:"start_date"`
	CurrentPeriodStart *time.Time         `json:"current_period_start"`
	CurrentPeriodEnd   *time.Time         `json:"current_period_end"`
	TrialStart         *time.Time         `json:"trial_start"`
	TrialEnd           *time.Time         `json:"trial_end"`
	CancelAt           *time.Time         `json:"cancel_at"`
	CancelAtPeriodEnd  bool               `json:"cancel_at_period_end"`
	CanceledAt         *time.Time         `json:"canceled_at"`
	EndedAt            *time.Time         `json:"ended_at"`
	CollectionPaused   bool               `json:"collection_paused"`
}

func (o oldState) toSubscription() billing.Subscription {
	return billing.Subscription{
		ID: o.ID, CustomerID: o.CustomerID, Livemode: o.Livemode, Status: o.Status, Currency: o.Currency,
		Items: o.Items, ItemsIncomplete: o.ItemsIncomplete, Discounts: o.Discounts, Created: o.Created,
		StartDate: o.StartDate, CurrentPeriodStart: o.CurrentPeriodStart, CurrentPeriodEnd: o.CurrentPeriodEnd,
		TrialStart: o.TrialStart, TrialEnd: o.TrialEnd, CancelAt: o.CancelAt, CancelAtPeriodEnd: o.CancelAtPeriodEnd,
		CanceledAt: o.CanceledAt, EndedAt: o.EndedAt, CollectionPaused: o.CollectionPaused,
	}
}

// applySubscription handles every customer.subscription.* event (and API
// fetches of a subscription): history always, current state if newer.
func applySubscription(ctx context.Context, tx ptx, ev billing.Event) (billing.Outcome, error) {
	s := *ev.Subscription
	c, dead, err := lockCustomer(ctx, tx, s.CustomerID, s.Livemode, s.AccountHint, viaSubscriptionMetadata, nil, "")
	if err != nil {
		return "", err
	}
	if dead {
		return billing.OutcomeTombstoned, nil
	}
	out, linked, err := link(ctx, tx, s.CustomerID, &c, s.AccountHint, viaSubscriptionMetadata)
	if err != nil {
		return "", err
	}
	if s.Items == nil {
		s.Items = []billing.Item{}
	}
	if s.Discounts == nil {
		s.Discounts = []billing.Discount{}
	}
	items, err := json.Marshal(s.Items)
	if err != nil {
		return "", fmt.Errorf("encode items: %w", err)
	}
	discounts, err := json.Marshal(s.Discounts)
	if err != nil {
		return "", fmt.Errorf("encode discounts: %w", err)
	}
	key := billing.SubscriptionVersionKey(s, ev.Created, ev.ID)
	mrr, fixed := billing.SubscriptionMRR(s)
	var res struct {
		Ref     string `db:"ref"`
		Changed bool   `db:"changed"`
		Old     []byte `db:"old"`
		History []byte `db:"history"`
	}
	err = tx.queryRowx(ctx, qWriteSubscription, s.ID, s.CustomerID, c.Ref, s.Livemode, string(s.Status),
		s.Currency, string(items), s.ItemsIncomplete, string(discounts), mrr, fixed, s.Created, s.StartDate,
		s.CurrentPeriodStart, s.CurrentPeriodEnd, s.TrialStart, s.TrialEnd, s.CancelAt, s.CancelAtPeriodEnd,
		s.CanceledAt, s.EndedAt, s.CollectionPaused, key.At, key.Rank, key.Event).StructScan(&res)
	if err != nil {
		return "", fmt.Errorf("write subscription: %w", translate(err))
	}
	// recomputeMovements, from the history the write returned, and the
	// outbox and invalidation rows in the ledger rewrite's statement.
	versions, err := decodeHistory(res.History)
	if err != nil {
		return "", fmt.Errorf("recompute movements: %w", err)
	}
	q := &ledgerQueue{}
	if res.Changed && s.Livemode {
		ch := SubscriptionChange{Next: s, CustomerRef: c.Ref, SubscriptionRef: res.Ref, At: ev.Created}
		if len(res.Old) > 0 {
			var o oldState
			if err := json.Unmarshal(res.Old, &o); err != nil {
				return "", fmt.Errorf("read previous subscription state: %w", err)
			}
			prev := o.toSubscription()
			ch.Prev = &prev
		}
		if q.outbox, err = subscriptionSyncRows(ch); err != nil {
			return "", fmt.Errorf("enqueue subscription sync: %w", err)
		}
	}
	q.account = linked
	if res.Changed && c.AccountID.Valid && !c.Deleted {
		q.account = c.AccountID.String
	}
	if err := replaceLedgerAndQueue(ctx, tx.Tx, c.Ref, s.Livemode, ev.Created, billing.DeriveLedger(versions), q); err != nil {
		return "", fmt.Errorf("recompute movements: %w", err)
	}
	if out == billing.OutcomeApplied && !res.Changed {
		out = billing.OutcomeStale
	}
	return out, nil
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
func applyInvoice(ctx context.Context, tx ptx, ev billing.Event) (billing.Outcome, error) {
	inv := ev.Invoice
	if inv.CustomerID == "" || inv.SubscriptionID == "" {
		return billing.OutcomeIgnored, nil
	}
	c, dead, err := lockCustomer(ctx, tx, inv.CustomerID, inv.Livemode, "", "", nil, "")
	if err != nil {
		return "", err
	}
	if dead {
		return billing.OutcomeTombstoned, nil
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
	if err := sqlx.SelectContext(ctx, tx.Tx, &rows, qCur, inv.SubscriptionID); err != nil {
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
		if err := notifyAccountChange(ctx, tx.Tx, c.AccountID.String); err != nil {
			return "", fmt.Errorf("notify account change: %w", err)
		}
	}
	return billing.OutcomeApplied, nil
}
