package postgres

import (
	"context"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// SubscriptionChange is what the event path knows after it applied a new
// current state: the state before (nil for a first-seen subscription) and
// after, with the surrogate references that stand in for Stripe IDs outside
// the link tables.
type SubscriptionChange struct {
	Prev            *billing.Subscription
	Next            billing.Subscription
	CustomerRef     string
	SubscriptionRef string
	At              time.Time // the version's time (event created, or API fetch time)
}

// enqueueSubscriptionSync appends the outbox rows (ProfitWell sync) that a
// change of a subscription's current state calls for, in the caller's
// transaction. Called only when current state changed (not for stale
// versions) and only for live-mode subscriptions.
//
// OWNER: issue 7 (ProfitWell). Until that lands this enqueues nothing.
func enqueueSubscriptionSync(ctx context.Context, tx *sqlx.Tx, ch SubscriptionChange) error {
	return nil
}
