package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// BackfillSummary counts what a ProfitWell backfill queued (or would queue).
type BackfillSummary struct {
	Customers     int
	Subscriptions int            // live-mode subscriptions looked at
	Rows          map[string]int // rows queued by action
	Skipped       int            // subscriptions that need nothing (incomplete, incomplete_expired)
}

// ProfitWellBackfill queues, for every live-mode subscription, the rows
// that send its current state from scratch (billing.BackfillActions, at
// time at), one customer per transaction under that customer's row lock so
// its rows follow any the event path queued. Sends are idempotent, so a
// second run only re-asserts the same state. With dryRun nothing is
// written. progress, if not nil, is called after each customer.
func (s *Store) ProfitWellBackfill(ctx context.Context, at time.Time, dryRun bool, progress func(done, total int)) (BackfillSummary, error) {
	const qCustomers = `
SELECT DISTINCT stripe_customer_id
FROM subscriptions
WHERE livemode
ORDER BY stripe_customer_id`
	sum := BackfillSummary{Rows: map[string]int{}}
	var customers []string
	if err := s.db.SelectContext(ctx, &customers, qCustomers); err != nil {
		return sum, fmt.Errorf("list customers for backfill: %w", translate(err))
	}
	for i, cus := range customers {
		err := s.inTx(ctx, func(tx *sqlx.Tx) error {
			subs, err := backfillSubscriptions(ctx, tx, cus)
			if err != nil {
				return err
			}
			if len(subs) > 0 {
				sum.Customers++
			}
			for _, bs := range subs {
				sum.Subscriptions++
				actions := billing.BackfillActions(bs.sub, at)
				if len(actions) == 0 {
					sum.Skipped++
				}
				for _, a := range actions {
					sum.Rows[string(a.Kind)]++
					if dryRun {
						continue
					}
					if _, err := EnqueueProfitWell(ctx, tx, a.Kind, a.Payload(bs.customerRef, bs.ref)); err != nil {
						return fmt.Errorf("backfill %s: %w", a.Kind, err)
					}
				}
			}
			return nil
		})
		if err != nil {
			return sum, err
		}
		if progress != nil {
			progress(i+1, len(customers))
		}
	}
	return sum, nil
}

type backfillSub struct {
	ref, customerRef string
	sub              billing.Subscription
}

// backfillSubscriptions locks customer cus (the lock the event path takes)
// and reads its live-mode subscriptions. A customer erased meanwhile has
// no rows left and yields nothing.
func backfillSubscriptions(ctx context.Context, tx *sqlx.Tx, cus string) ([]backfillSub, error) {
	const qLock = `SELECT 1 FROM customers WHERE stripe_customer_id = $1 FOR UPDATE`
	const q = `
SELECT subscription_ref, customer_ref, livemode, status, currency, items, items_incomplete, discounts,
       created, start_date, current_period_end, cancel_at, cancel_at_period_end, canceled_at, ended_at
FROM subscriptions
WHERE stripe_customer_id = $1 AND livemode
ORDER BY subscription_ref`
	var one []int
	if err := tx.SelectContext(ctx, &one, qLock, cus); err != nil {
		return nil, fmt.Errorf("lock customer for backfill: %w", translate(err))
	}
	if len(one) == 0 {
		return nil, nil
	}
	var rows []subscriptionRow
	if err := tx.SelectContext(ctx, &rows, q, cus); err != nil {
		return nil, fmt.Errorf("read subscriptions for backfill: %w", translate(err))
	}
	out := make([]backfillSub, 0, len(rows))
	for _, r := range rows {
		sub, err := r.toSubscription()
		if err != nil {
			return nil, err
		}
		out = append(out, backfillSub{ref: r.Ref, customerRef: r.CustomerRef, sub: sub})
	}
	return out, nil
}
