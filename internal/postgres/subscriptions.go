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
		if err := notifyAccountChange(ctx, tx.Tx, tx.changed, c.AccountID.String); err != nil {
			return "", fmt.Errorf("notify account change: %w", err)
		}
	}
	return billing.OutcomeApplied, nil
}
