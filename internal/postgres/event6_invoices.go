package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

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
// ignored: nothing in them concerns entitlement. at is the event's
// creation, the facts' version; c is the customer's row as the batch
// locked it, which serialises the facts of its subscriptions.
func applyInvoice(ctx context.Context, tx ptx, at time.Time, inv *billing.Invoice, c *lockedCustomer) (billing.Outcome, error) {
	if inv.CustomerID == "" || inv.SubscriptionID == "" {
		return billing.OutcomeIgnored, nil
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
	if len(rows) > 0 && !billing.InvoiceFactsNewer(at, inv.Status, inv.AttemptCount, curAt, curStatus, curAttempts) {
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
			inv.AttemptCount, inv.NextPaymentAttempt, at); err != nil {
			return "", fmt.Errorf("hold invoice facts: %w", translate(err))
		}
		return billing.OutcomeApplied, nil
	}
	const q = `
UPDATE subscriptions SET latest_invoice_status = $2, invoice_attempt_count = $3,
    next_payment_attempt = $4, invoice_version_at = $5, updated_at = now()
WHERE stripe_subscription_id = $1`
	if _, err := tx.ExecContext(ctx, q, inv.SubscriptionID, string(inv.Status), inv.AttemptCount, inv.NextPaymentAttempt, at); err != nil {
		return "", fmt.Errorf("write invoice facts: %w", translate(err))
	}
	if c.AccountID.Valid && !c.Deleted {
		if err := notifyAccountChange(ctx, tx, tx.changed, c.AccountID.String); err != nil {
			return "", fmt.Errorf("notify account change: %w", err)
		}
	}
	return billing.OutcomeApplied, nil
}
