package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// LedgerCustomers returns up to limit customer references with revenue
// history (state history or derived rows), in order, after `after` (""
// for the first page): the rebuild walks them in pages so it never holds a
// long transaction. Erased customers are included: their history stays,
// keyed by the surrogate reference, though their customers row is gone.
func (s *Store) LedgerCustomers(ctx context.Context, after string, limit int) ([]string, error) {
	// Each branch walks its (customer_ref, ...) index from the cursor and
	// stops after limit distinct references, so a page costs O(limit), not
	// a pass over both tables.
	const q = `
SELECT customer_ref::text FROM (
    (SELECT DISTINCT customer_ref FROM subscription_versions WHERE customer_ref > $1::uuid ORDER BY customer_ref LIMIT $2)
    UNION
    (SELECT DISTINCT customer_ref FROM mrr_movements WHERE customer_ref > $1::uuid ORDER BY customer_ref LIMIT $2)
) r
ORDER BY customer_ref
LIMIT $2`
	if after == "" {
		after = "00000000-0000-0000-0000-000000000000"
	}
	var refs []string
	if err := s.db.SelectContext(ctx, &refs, q, after, limit); err != nil {
		return nil, fmt.Errorf("list ledger customers: %w", translate(err))
	}
	return refs, nil
}

// RebuildCustomerLedger re-derives one customer's whole ledger (both
// modes) and its revenue facts from its state history and the customer's
// discounts and tax facts (ledger_inputs.go), safely while events are being applied:
// it takes the customers row lock that the event transaction takes, so a
// concurrent event for this customer waits (or this waits for it) and both
// see each other's versions. An erased customer has no row to lock, but no
// event can add to its history either (tombstones); a transaction-scoped
// advisory lock on the reference keeps two rebuilds from interleaving.
func (s *Store) RebuildCustomerLedger(ctx context.Context, customerRef string) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		const lockRow = `SELECT 1 FROM customers WHERE customer_ref = $1 FOR UPDATE`
		if _, err := tx.ExecContext(ctx, lockRow, customerRef); err != nil {
			return fmt.Errorf("rebuild ledger: lock customer %s: %w", customerRef, translate(err))
		}
		const lockRef = `SELECT pg_advisory_xact_lock(hashtextextended('billingd.ledger:' || $1, 0))`
		if _, err := tx.ExecContext(ctx, lockRef, customerRef); err != nil {
			return fmt.Errorf("rebuild ledger: lock reference %s: %w", customerRef, translate(err))
		}
		// The facts too, here rather than by the deriver: the rebuild's
		// figures are final when it returns. Its queued rows go with it
		// (every version they stand for is visible under the locks held).
		var facts factWrite
		modes := []bool{true, false}
		ledgers := make(map[ledgerKey]*ledgerWork, len(modes))
		for _, live := range modes {
			versions, err := customerHistory(ctx, tx, customerRef, live)
			if err != nil {
				return fmt.Errorf("rebuild ledger: %w", err)
			}
			ledgers[ledgerKey{ref: customerRef, livemode: live}] = &ledgerWork{versions: versions}
		}
		// The ledger's other inputs, as the event path reads them (both
		// modes in one query): the ledger and the facts derive from the
		// same history.
		if _, err := loadLedgerInputs(ctx, tx, ledgers); err != nil {
			return fmt.Errorf("rebuild ledger: customer %s: %w", customerRef, err)
		}
		for _, live := range modes {
			h := ledgers[ledgerKey{ref: customerRef, livemode: live}].history()
			var w ledgerWrite
			w.add(customerRef, live, time.Time{}, billing.DeriveCustomerLedger(h), true)
			w.pending = nil
			if err := w.exec(ctx, tx); err != nil {
				return fmt.Errorf("rebuild ledger: customer %s: %w", customerRef, err)
			}
			facts.add(customerRef, live, time.Time{}, h)
		}
		facts.rebuilt = []string{customerRef}
		if err := facts.exec(ctx, tx); err != nil {
			return fmt.Errorf("rebuild ledger: customer %s: %w", customerRef, err)
		}
		return nil
	})
}
