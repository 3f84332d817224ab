package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// CheckoutAccount reads what a checkout or portal session of accountID
// needs (POST /v1/accounts/{id}/checkout-sessions and portal-sessions):
// the account's customers, with their mode, deletion and link time, and
// its subscriptions in mode livemode. One snapshot; an unknown account has
// neither.
func (s *Store) CheckoutAccount(ctx context.Context, accountID string, livemode bool) (billing.CheckoutAccount, error) {
	if !billing.ValidAccountID(accountID) {
		return billing.CheckoutAccount{}, fmt.Errorf("read checkout account: %w: malformed account ID", billing.ErrInvalid)
	}
	var out billing.CheckoutAccount
	err := s.inReadTx(ctx, func(tx *sqlx.Tx) error {
		const qc = `
SELECT stripe_customer_id, livemode, deleted, coalesce(linked_at, created_at) AS linked_at
FROM customers WHERE account_id = $1`
		var cs []struct {
			ID       string    `db:"stripe_customer_id"`
			Livemode *bool     `db:"livemode"`
			Deleted  bool      `db:"deleted"`
			LinkedAt time.Time `db:"linked_at"`
		}
		if err := tx.SelectContext(ctx, &cs, qc, accountID); err != nil {
			return translate(err)
		}
		for _, c := range cs {
			out.Customers = append(out.Customers, billing.CheckoutCustomer{ID: c.ID, Livemode: c.Livemode, Deleted: c.Deleted, LinkedAt: c.LinkedAt})
		}
		const qs = `
SELECT s.stripe_subscription_id, s.stripe_customer_id, s.livemode, s.status, s.currency, s.items,
       s.current_period_start, s.current_period_end, s.trial_end, s.cancel_at, s.cancel_at_period_end,
       c.deleted AS customer_deleted
FROM customers c JOIN subscriptions s ON s.stripe_customer_id = c.stripe_customer_id
WHERE c.account_id = $1 AND s.livemode = $2`
		var rows []accountSubRow
		if err := tx.SelectContext(ctx, &rows, qs, accountID, livemode); err != nil {
			return translate(err)
		}
		for _, r := range rows {
			sub, err := r.toSubscription()
			if err != nil {
				return err
			}
			out.Subscriptions = append(out.Subscriptions, billing.AccountSubscription{Subscription: sub, CustomerDeleted: r.CustomerDeleted})
		}
		return nil
	})
	if err != nil {
		return billing.CheckoutAccount{}, fmt.Errorf("read checkout account: %w", err)
	}
	return out, nil
}
