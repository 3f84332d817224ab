package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/lib/pq"
)

// Movers lists a page of movements with the account behind each, newest
// first (keyset pagination on (effective_at, id), through the time-led
// covering index of mrr_movements). An erased customer has no customers
// row any more (its history was moved to a fresh reference): it is shown
// as billing.AccountErased, with its amounts.
func (s *Store) Movers(ctx context.Context, q billing.MoverQuery) ([]billing.Mover, bool, error) {
	if q.Limit <= 0 || !q.From.Before(q.To) {
		return nil, false, fmt.Errorf("movers: %w: bad limit or range", billing.ErrInvalid)
	}
	to := q.To
	if !q.AsOf.IsZero() && q.AsOf.Before(to) {
		to = q.AsOf // scheduled movements count once they happen
	}
	after := q.After
	if after == nil {
		after = &billing.MoverCursor{At: to, ID: 0}
	}
	const qPage = `
SELECT m.id, m.effective_at, m.kind, m.currency, m.delta_minor, m.customer_mrr_before, m.customer_mrr_after,
       m.customer_ref::text AS customer_ref, c.account_id, c.stripe_customer_id IS NOT NULL AS known,
       coalesce(c.deleted, false) AS deleted
FROM mrr_movements m
LEFT JOIN customers c ON c.customer_ref = m.customer_ref
WHERE m.livemode = $1 AND ($2 = '' OR m.currency = $2) AND ($3 = '' OR m.kind = $3)
  AND m.effective_at >= $4 AND m.effective_at < $5
  AND (m.effective_at < $6 OR (m.effective_at = $6 AND m.id < $7))
ORDER BY m.effective_at DESC, m.id DESC
LIMIT $8`
	var rows []struct {
		ID          int64     `db:"id"`
		At          time.Time `db:"effective_at"`
		Kind        string    `db:"kind"`
		Currency    string    `db:"currency"`
		Delta       int64     `db:"delta_minor"`
		Before      int64     `db:"customer_mrr_before"`
		After       int64     `db:"customer_mrr_after"`
		CustomerRef string    `db:"customer_ref"`
		AccountID   *string   `db:"account_id"`
		Known       bool      `db:"known"`
		Deleted     bool      `db:"deleted"`
	}
	afterID := after.ID
	if q.After == nil {
		afterID = 1<<63 - 1
	}
	err := s.db.SelectContext(ctx, &rows, qPage, q.Livemode, q.Currency, string(q.Kind), q.From, to, after.At, afterID, q.Limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("movers: %w", translate(err))
	}
	more := len(rows) > q.Limit
	if more {
		rows = rows[:q.Limit]
	}
	// The plans around each movement, from the page's customers' history:
	// one query for the page.
	refs := make([]string, 0, len(rows))
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.CustomerRef] {
			seen[r.CustomerRef] = true
			refs = append(refs, r.CustomerRef)
		}
	}
	history := map[ledgerKey]*ledgerWork{}
	if len(refs) > 0 {
		const qHist = `
SELECT customer_ref::text AS customer_ref, subscription_ref, livemode, status, currency, items, discounts,
       current_period_start, current_period_end, trial_end, cancel_at, cancel_at_period_end, ended_at,
       automatic_tax, version_at, version_rank, version_event
FROM subscription_versions
WHERE customer_ref = ANY($1::uuid[]) AND livemode = $2 AND version_at <= $3`
		var hs []struct {
			CustomerRef string `db:"customer_ref"`
			versionRow
		}
		if err := s.db.SelectContext(ctx, &hs, qHist, pq.Array(refs), q.Livemode, to); err != nil {
			return nil, false, fmt.Errorf("movers: plans: %w", translate(err))
		}
		for _, h := range hs {
			v, err := h.versionRow.toVersion()
			if err != nil {
				return nil, false, fmt.Errorf("movers: %w", err)
			}
			k := ledgerKey{ref: h.CustomerRef, livemode: q.Livemode}
			if history[k] == nil {
				history[k] = &ledgerWork{}
			}
			history[k].versions = append(history[k].versions, v)
		}
		// The customers' discounts and tax facts: the plans that have MRR
		// are the ledger's.
		if err := readInputs(ctx, s.db, qLedgerInputsRead, history); err != nil {
			return nil, false, fmt.Errorf("movers: plans: %w", err)
		}
		if _, err := resolveLedgerDiscounts(ctx, s.db, history); err != nil {
			return nil, false, fmt.Errorf("movers: plans: %w", err)
		}
	}
	out := make([]billing.Mover, 0, len(rows))
	for _, r := range rows {
		m := billing.Mover{ID: r.ID, At: r.At.UTC(), Kind: billing.MovementKind(r.Kind), Currency: r.Currency, Delta: r.Delta,
			MRRBefore: r.Before, MRRAfter: r.After}
		switch {
		case !r.Known:
			m.Account = billing.AccountErased
		case r.AccountID != nil:
			m.AccountID, m.Account = *r.AccountID, *r.AccountID
		case r.Deleted:
			m.Account = billing.AccountDeleted
		default:
			m.Account = billing.AccountUnlinked
		}
		var h billing.CustomerHistory
		if l := history[ledgerKey{ref: r.CustomerRef, livemode: q.Livemode}]; l != nil {
			h = l.history()
		}
		m.PlansBefore, m.PlansAfter = billing.PlansAround(h, q.Livemode, r.Currency, r.At)
		out = append(out, m)
	}
	return out, more, nil
}
