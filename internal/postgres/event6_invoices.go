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
	// Paid amounts count whatever the order of the payment facts: a late
	// invoice.paid is still revenue.
	if err := recordInvoiceLines(ctx, tx, at, inv, c); err != nil {
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

// qInvoiceLines records a paid invoice's subscription lines ($1, one JSON
// array), classifying the lines whose payload did not say their kind from
// the subscription's items (by price; unknown when the subscription is not
// known yet: the ledger inputs' read classifies them once it is). A line
// already recorded (the same customer, price and
// period: a redelivered invoice) takes the newer amounts. It returns
// whether a line carries tax inside its amount: the customer's
// ledger then changes (automatic-tax inclusive prices count net of tax).
const qInvoiceLines = `
WITH s AS (
    SELECT subscription_ref, items FROM subscriptions WHERE stripe_subscription_id = $2
), l AS (
    SELECT u.price_id, u.amount, u.net, u.period_start, u.period_end,
        coalesce(NULLIF(u.usage, ''), (
            SELECT CASE WHEN i->>'usage_type' = 'metered' THEN 'metered'
                        WHEN i->>'billing_scheme' = 'tiered' THEN 'tiered' ELSE 'fixed' END
            FROM s, jsonb_array_elements(s.items) AS i WHERE i->>'price_id' = u.price_id LIMIT 1), 'unknown') AS usage_kind
    FROM jsonb_to_recordset($1::jsonb) AS u(price_id text, usage text, amount bigint, net bigint,
                                           period_start timestamptz, period_end timestamptz)
), ins AS (
    INSERT INTO invoice_line_amounts (customer_ref, subscription_ref, livemode, currency, price_id, usage_kind,
        period_start, period_end, amount_minor, net_minor, paid_at)
    SELECT $3, (SELECT subscription_ref FROM s), $4, $5, l.price_id, l.usage_kind, l.period_start, l.period_end,
        l.amount, l.net, $6
    FROM l
    ON CONFLICT (customer_ref, livemode, price_id, period_start, period_end) DO UPDATE SET
        amount_minor = EXCLUDED.amount_minor, net_minor = EXCLUDED.net_minor, usage_kind = EXCLUDED.usage_kind,
        subscription_ref = coalesce(EXCLUDED.subscription_ref, invoice_line_amounts.subscription_ref),
        currency = EXCLUDED.currency, paid_at = EXCLUDED.paid_at
    WHERE invoice_line_amounts.paid_at <= EXCLUDED.paid_at
    RETURNING usage_kind, amount_minor, net_minor
)
SELECT EXISTS (SELECT 1 FROM ins WHERE net_minor < amount_minor)`

// lineInput is one line as qInvoiceLines reads it; lines of one price and
// period (prorations) are summed first.
type lineInput struct {
	PriceID     string    `json:"price_id"`
	Usage       string    `json:"usage"`
	Amount      int64     `json:"amount"`
	Net         int64     `json:"net"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
}

// recordInvoiceLines stores a paid invoice's subscription lines
// (invoice_line_amounts), under the customer's row lock (c).
func recordInvoiceLines(ctx context.Context, tx ptx, at time.Time, inv *billing.Invoice, c *lockedCustomer) error {
	if inv.Status != billing.InvoicePaid || len(inv.Lines) == 0 || inv.Currency == "" {
		return nil
	}
	var in []lineInput
	idx := map[[3]string]int{}
	for _, l := range inv.Lines {
		k := [3]string{l.PriceID, l.PeriodStart.Format(time.RFC3339Nano), l.PeriodEnd.Format(time.RFC3339Nano)}
		if i, ok := idx[k]; ok {
			in[i].Amount = satAdd(in[i].Amount, l.Amount)
			in[i].Net = satAdd(in[i].Net, l.Net)
			if in[i].Usage == "" {
				in[i].Usage = l.Usage
			}
			continue
		}
		idx[k] = len(in)
		in = append(in, lineInput{PriceID: l.PriceID, Usage: l.Usage, Amount: l.Amount, Net: l.Net,
			PeriodStart: l.PeriodStart.UTC(), PeriodEnd: l.PeriodEnd.UTC()})
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("record invoice lines: %w", err)
	}
	tx.fin.recordedLines(ledgerKey{ref: c.Ref, livemode: inv.Livemode})
	var taxed bool
	if err := tx.QueryRowxContext(ctx, qInvoiceLines, string(raw), inv.SubscriptionID, c.Ref, inv.Livemode,
		inv.Currency, at).Scan(&taxed); err != nil {
		return fmt.Errorf("record invoice lines: %w", translate(err))
	}
	if taxed {
		// The tax share of a price holds from its first paid line back to
		// the subscription's start (billing.TaxFact): re-derive it all.
		tx.fin.touch(ledgerKey{ref: c.Ref, livemode: inv.Livemode}, time.Time{})
	}
	return nil
}

// satAdd adds without wrapping around.
func satAdd(a, b int64) int64 {
	s := a + b
	if (a > 0 && b > 0 && s < 0) || (a < 0 && b < 0 && s >= 0) {
		if a > 0 {
			return 1<<63 - 1
		}
		return -1 << 63
	}
	return s
}
