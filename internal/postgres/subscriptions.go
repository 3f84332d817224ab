package postgres

import (
	"time"

	"github.com/billingd/billingd/billing"
)

// Subscriptions: current state (subscriptions) and state history
// (subscription_versions). Every version goes into the history, late ones
// included, because metrics derive from it; current state moves only to a
// newer version key (billing/order.go). Both are written under the owning
// customer's row lock (qLockCustomers), so versions of one customer never
// interleave.

// subscriptionRow is a subscriptions row; items and discounts are jsonb
// documents of itemDoc and discountDoc (event4_subscription_doc.go). Also read by
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
	var err error
	if s.Items, err = decodeItems(r.Items); err != nil {
		return s, err
	}
	if s.Discounts, err = decodeDiscounts(r.Discounts); err != nil {
		return s, err
	}
	return s, nil
}
