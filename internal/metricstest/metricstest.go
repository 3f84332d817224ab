// Package metricstest seeds revenue history for tests and benchmarks of the
// metrics code: state-history rows as the event path writes them, with the
// ledger derived the way the event path derives it (Store.RebuildCustomerLedger).
// Only tests and bench code import it.
package metricstest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/postgres"
)

// InsertVersion writes one subscription_versions row for customerRef, as
// the event path would (mrr_minor from billing.SubscriptionMRR). It does not
// touch the ledger.
func InsertVersion(ctx context.Context, st *postgres.Store, customerRef string, v billing.SubscriptionVersion) error {
	items, err := json.Marshal(nonNil(v.State.Items))
	if err != nil {
		return err
	}
	discounts, err := json.Marshal(nonNilD(v.State.Discounts))
	if err != nil {
		return err
	}
	mrr, fixed := billing.SubscriptionMRR(v.State)
	const q = `
INSERT INTO subscription_versions (subscription_ref, customer_ref, livemode, status, currency, items, discounts,
    mrr_minor, mrr_fixed, current_period_start, current_period_end, trial_end, cancel_at, cancel_at_period_end,
    ended_at, version_at, version_rank, version_event)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`
	s := v.State
	_, err = st.DB().ExecContext(ctx, q, v.SubscriptionRef, customerRef, s.Livemode, string(s.Status), s.Currency,
		string(items), string(discounts), mrr, fixed, s.CurrentPeriodStart, s.CurrentPeriodEnd, s.TrialEnd, s.CancelAt,
		s.CancelAtPeriodEnd, s.EndedAt, v.At, v.Rank, v.Event)
	if err != nil {
		return fmt.Errorf("insert version: %w", err)
	}
	return nil
}

// Seed inserts every version of every customer and derives each
// customer's ledger.
func Seed(ctx context.Context, st *postgres.Store, customers map[string][]billing.SubscriptionVersion) error {
	for ref, vs := range customers {
		for _, v := range vs {
			if err := InsertVersion(ctx, st, ref, v); err != nil {
				return err
			}
		}
		if err := st.RebuildCustomerLedger(ctx, ref); err != nil {
			return err
		}
	}
	return nil
}

func nonNil(it []billing.Item) []billing.Item {
	if it == nil {
		return []billing.Item{}
	}
	return it
}

func nonNilD(d []billing.Discount) []billing.Discount {
	if d == nil {
		return []billing.Discount{}
	}
	return d
}
