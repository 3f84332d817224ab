package stripeapi

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/webhooks"
	"github.com/stripe/stripe-go/v76"
)

// ActiveEntitlements lists every active entitlement of a customer
// (GET /v1/entitlements/active_entitlements?customer=..., all pages) and
// returns their lookup keys and when Stripe answered the first page (the
// version of the list: every page is read after it, so a change Stripe
// made meanwhile comes with a later event).
func (c *Client) ActiveEntitlements(ctx context.Context, customerID string) ([]string, time.Time, error) {
	var keys []string
	var at time.Time
	err := c.list(ctx, "active entitlements", func(lp stripe.ListParams) *stripe.Iter {
		return c.api.EntitlementsActiveEntitlements.List(&stripe.EntitlementsActiveEntitlementListParams{
			ListParams: lp, Customer: stripe.String(customerID)}).Iter
	}, func(p Page) error {
		if at.IsZero() {
			at = p.At
		}
		for _, raw := range p.Objects {
			k, err := webhooks.DecodeActiveEntitlement(raw)
			if err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	if at.IsZero() {
		at = time.Now().UTC()
	}
	return keys, at, nil
}

// fetchEntitlements runs a fetch_entitlements job: the complete list of
// the customer's active features, applied through the event path as an
// API fetch (versioned by Stripe's answer, so it replaces the truncated
// summary and loses to any later event). A customer Stripe does not know
// any more (404) has no entitlements: an empty, complete list.
func (w *JobWorker) fetchEntitlements(ctx context.Context, customerID string) error {
	if w.Events == nil {
		return fmt.Errorf("fetch entitlements: %w: no event applier configured", errApplyFetched)
	}
	keys, at, err := w.Stripe.ActiveEntitlements(ctx, customerID)
	if err != nil {
		return err
	}
	keys, err = webhooks.EntitlementKeys(keys)
	if err != nil {
		return fmt.Errorf("fetch entitlements: %w: %w", errApplyFetched, err)
	}
	ev := billing.Event{Type: webhooks.TypeEntitlementSummaryUpdated, Created: at, Livemode: w.Stripe.Livemode(),
		Entitlements: &billing.EntitlementSummary{CustomerID: customerID, Livemode: w.Stripe.Livemode(), Features: keys, Complete: true}}
	if _, err := w.Events.ApplyEvent(ctx, ev); err != nil {
		return fmt.Errorf("apply fetched entitlements: %w: %w", errApplyFetched, err)
	}
	return nil
}
