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

// AccountExport gathers everything billingd holds about one account, for a
// subject access request: its customer links; the current state and state
// history of those customers' subscriptions; invoice facts still waiting
// for a subscription; their revenue movements and subscription activity
// (found through customer_ref, the surrogate the history tables key on);
// and the audit entries whose subject is the account. Nothing about another
// account can match: every query starts from customers.account_id (or,
// for customers Stripe deleted, the keyed hash of their former account). One
// read-only repeatable-read transaction gives a consistent snapshot. An
// unknown account gives an export with every list empty, not an error.
func (s *Store) AccountExport(ctx context.Context, accountID string) (billing.AccountExport, error) {
	exp := billing.AccountExport{
		AccountID:           accountID,
		GeneratedAt:         time.Now().UTC(),
		Customers:           []billing.ExportCustomer{},
		Subscriptions:       []billing.ExportSubscription{},
		PendingInvoices:     []billing.ExportPendingInvoice{},
		SubscriptionHistory: []billing.ExportSubscriptionVer{},
		Movements:           []billing.ExportMovement{},
		Activity:            []billing.ExportActivity{},
		Audit:               []billing.ExportAuditEntry{},
		CustomerDiscounts:   []billing.ExportCustomerDiscount{},
		InvoiceLines:        []billing.ExportInvoiceLine{},

		Overrides:            []billing.ExportOverride{},
		EntitlementSummaries: []billing.ExportEntitlementSummary{},
		Schedules:            []billing.ExportSchedule{},
	}
	// audit_log names an account only by keyed hashes. Computed before
	// the read-only transaction: the first use may generate and store the key.
	hashes, err := s.SubjectHMACs(ctx, accountID) // one per key of the erasure ring
	subject := pq.ByteaArray(hashes)
	if err != nil {
		return exp, fmt.Errorf("export account: %w", err)
	}
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return exp, fmt.Errorf("export account: begin: %w", translate(err))
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to keep
	steps := []struct {
		what string
		fn   func() error
	}{
		{"customers", func() error { return exportCustomers(ctx, tx, accountID, subject, &exp.Customers) }},
		{"subscriptions", func() error { return exportSubscriptions(ctx, tx, accountID, subject, &exp.Subscriptions) }},
		{"pending invoice facts", func() error { return exportPendingInvoices(ctx, tx, accountID, subject, &exp.PendingInvoices) }},
		{"subscription history", func() error { return exportHistory(ctx, tx, accountID, subject, &exp.SubscriptionHistory) }},
		{"movements", func() error { return exportMovements(ctx, tx, accountID, subject, &exp.Movements) }},
		{"subscription activity", func() error { return exportActivity(ctx, tx, accountID, subject, &exp.Activity) }},
		{"audit", func() error { return exportAudit(ctx, tx, subject, &exp.Audit) }},
		{"overrides", func() error { return exportOverrides(ctx, tx, accountID, &exp.Overrides) }},
		{"entitlement summaries", func() error {
			return exportEntitlementSummaries(ctx, tx, accountID, subject, &exp.EntitlementSummaries)
		}},
		{"subscription schedules", func() error { return exportSchedules(ctx, tx, accountID, subject, &exp.Schedules) }},
		{"customer discounts", func() error { return exportCustomerDiscounts(ctx, tx, accountID, subject, &exp.CustomerDiscounts) }},
		{"invoice lines", func() error { return exportInvoiceLines(ctx, tx, accountID, subject, &exp.InvoiceLines) }},
	}
	for _, st := range steps {
		if err := st.fn(); err != nil {
			return exp, fmt.Errorf("export account %s: %w", st.what, translate(err))
		}
	}
	return exp, nil
}

func exportCustomers(ctx context.Context, tx *sqlx.Tx, accountID string, subject pq.ByteaArray, out *[]billing.ExportCustomer) error {
	const q = `
SELECT stripe_customer_id, customer_ref, account_id, linked_via, linked_at, livemode, deleted,
       version_at, version_event, created_at, updated_at, test_clock_id
FROM customers
WHERE account_id = $1 OR former_account_hmac = ANY($2)
ORDER BY created_at, stripe_customer_id`
	return tx.SelectContext(ctx, out, q, accountID, subject)
}

func exportSubscriptions(ctx context.Context, tx *sqlx.Tx, accountID string, subject pq.ByteaArray, out *[]billing.ExportSubscription) error {
	const q = `
SELECT s.stripe_subscription_id, s.subscription_ref, s.stripe_customer_id, s.customer_ref, s.livemode,
       s.status, s.currency, s.items, s.items_incomplete, s.discounts,
       s.mrr_minor, s.mrr_fixed, s.created, s.start_date, s.current_period_start, s.current_period_end,
       s.trial_start, s.trial_end, s.cancel_at, s.cancel_at_period_end, s.canceled_at, s.ended_at,
       s.collection_paused, s.automatic_tax, s.latest_invoice_status, s.invoice_attempt_count, s.next_payment_attempt,
       s.invoice_version_at, coalesce(s.pending_update, 'null') AS pending_update, s.version_at, s.version_rank, s.version_event, s.updated_at
FROM subscriptions s
JOIN customers c ON c.stripe_customer_id = s.stripe_customer_id
WHERE (c.account_id = $1 OR c.former_account_hmac = ANY($2))
ORDER BY s.stripe_customer_id, s.stripe_subscription_id`
	return tx.SelectContext(ctx, out, q, accountID, subject)
}

func exportPendingInvoices(ctx context.Context, tx *sqlx.Tx, accountID string, subject pq.ByteaArray, out *[]billing.ExportPendingInvoice) error {
	const q = `
SELECT p.stripe_subscription_id, p.stripe_customer_id, p.latest_invoice_status, p.invoice_attempt_count,
       p.next_payment_attempt, p.invoice_version_at, p.received_at
FROM pending_invoice_facts p
JOIN customers c ON c.stripe_customer_id = p.stripe_customer_id
WHERE (c.account_id = $1 OR c.former_account_hmac = ANY($2))
ORDER BY p.stripe_customer_id, p.stripe_subscription_id`
	return tx.SelectContext(ctx, out, q, accountID, subject)
}

func exportHistory(ctx context.Context, tx *sqlx.Tx, accountID string, subject pq.ByteaArray, out *[]billing.ExportSubscriptionVer) error {
	const q = `
SELECT v.id, v.subscription_ref, v.customer_ref, v.livemode, v.status, v.currency,
       v.items, v.discounts, v.mrr_minor, v.mrr_fixed,
       v.current_period_start, v.current_period_end, v.trial_end, v.cancel_at, v.cancel_at_period_end,
       v.ended_at, v.automatic_tax, v.version_at, v.version_rank, v.version_event, v.recorded_at
FROM subscription_versions v
JOIN customers c ON c.customer_ref = v.customer_ref
WHERE (c.account_id = $1 OR c.former_account_hmac = ANY($2))
ORDER BY v.subscription_ref, v.version_at, v.version_rank, v.version_event`
	return tx.SelectContext(ctx, out, q, accountID, subject)
}

func exportMovements(ctx context.Context, tx *sqlx.Tx, accountID string, subject pq.ByteaArray, out *[]billing.ExportMovement) error {
	const q = `
SELECT m.id, m.customer_ref, m.subscription_ref, m.livemode, m.currency, m.effective_at, m.kind,
       m.delta_minor, m.customer_mrr_before, m.customer_mrr_after
FROM mrr_movements m
JOIN customers c ON c.customer_ref = m.customer_ref
WHERE (c.account_id = $1 OR c.former_account_hmac = ANY($2))
ORDER BY m.effective_at, m.id`
	return tx.SelectContext(ctx, out, q, accountID, subject)
}

func exportActivity(ctx context.Context, tx *sqlx.Tx, accountID string, subject pq.ByteaArray, out *[]billing.ExportActivity) error {
	const q = `
SELECT a.id, a.customer_ref, a.subscription_ref, a.livemode, a.currency, a.effective_at, a.delta
FROM subscription_activity a
JOIN customers c ON c.customer_ref = a.customer_ref
WHERE (c.account_id = $1 OR c.former_account_hmac = ANY($2))
ORDER BY a.effective_at, a.id`
	return tx.SelectContext(ctx, out, q, accountID, subject)
}

// exportAudit finds the audit entries whose subject is the account, by the
// keyed hash of its ID, the only form in which audit_log names an account.
func exportAudit(ctx context.Context, tx *sqlx.Tx, subject pq.ByteaArray, out *[]billing.ExportAuditEntry) error {
	const q = `
SELECT id, at, actor, action, details
FROM audit_log
WHERE subject_hmac = ANY($1)
ORDER BY at, id`
	return tx.SelectContext(ctx, out, q, subject)
}

func exportOverrides(ctx context.Context, tx *sqlx.Tx, accountID string, out *[]billing.ExportOverride) error {
	const q = `
SELECT account_id, features, expires_at, created_at, updated_at, updated_by
FROM account_overrides WHERE account_id = $1`
	return tx.SelectContext(ctx, out, q, accountID)
}

func exportEntitlementSummaries(ctx context.Context, tx *sqlx.Tx, accountID string, subject pq.ByteaArray, out *[]billing.ExportEntitlementSummary) error {
	const q = `
SELECT e.stripe_customer_id, e.livemode, to_jsonb(e.lookup_keys) AS lookup_keys, e.complete,
       e.version_at, e.version_event, e.updated_at
FROM stripe_entitlement_summaries e
JOIN customers c ON c.stripe_customer_id = e.stripe_customer_id
WHERE (c.account_id = $1 OR c.former_account_hmac = ANY($2))
ORDER BY e.stripe_customer_id`
	return tx.SelectContext(ctx, out, q, accountID, subject)
}

func exportSchedules(ctx context.Context, tx *sqlx.Tx, accountID string, subject pq.ByteaArray, out *[]billing.ExportSchedule) error {
	const q = `
SELECT sc.stripe_schedule_id, sc.stripe_customer_id, sc.stripe_subscription_id, sc.livemode, sc.status,
       sc.end_behavior, sc.phases, sc.version_at, sc.version_rank, sc.version_event, sc.updated_at
FROM subscription_schedules sc
JOIN customers c ON c.stripe_customer_id = sc.stripe_customer_id
WHERE (c.account_id = $1 OR c.former_account_hmac = ANY($2))
ORDER BY sc.stripe_customer_id, sc.stripe_schedule_id`
	return tx.SelectContext(ctx, out, q, accountID, subject)
}

func exportCustomerDiscounts(ctx context.Context, tx *sqlx.Tx, accountID string, subject pq.ByteaArray, out *[]billing.ExportCustomerDiscount) error {
	const q = `
SELECT d.customer_ref, d.livemode, d.version_at, d.version_event, d.discounts, d.recorded_at
FROM customer_discount_versions d
JOIN customers c ON c.customer_ref = d.customer_ref
WHERE (c.account_id = $1 OR c.former_account_hmac = ANY($2))
ORDER BY d.customer_ref, d.version_at, d.version_event`
	return tx.SelectContext(ctx, out, q, accountID, subject)
}

func exportInvoiceLines(ctx context.Context, tx *sqlx.Tx, accountID string, subject pq.ByteaArray, out *[]billing.ExportInvoiceLine) error {
	const q = `
SELECT l.customer_ref, l.subscription_ref, l.livemode, l.currency, l.price_id, l.usage_kind,
       l.period_start, l.period_end, l.amount_minor, l.net_minor, l.paid_at
FROM invoice_line_amounts l
JOIN customers c ON c.customer_ref = l.customer_ref
WHERE (c.account_id = $1 OR c.former_account_hmac = ANY($2))
ORDER BY l.customer_ref, l.period_start, l.price_id`
	return tx.SelectContext(ctx, out, q, accountID, subject)
}
