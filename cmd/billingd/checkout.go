package main

import (
	"net/http"
	"time"

	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/internal/stripeapi"
)

// checkoutStripeTimeout bounds one Stripe call of a checkout or portal
// session: a user is waiting, and the app's retry with the same
// Idempotency-Key is safe.
const checkoutStripeTimeout = 20 * time.Second

// startCheckout turns on POST /v1/accounts/{id}/checkout-sessions and
// portal-sessions when APP_URL_ALLOWLIST is set (validateServe has
// checked that STRIPE_API_KEY is too); otherwise they answer 503.
func (e *env) startCheckout(srv *api.Server, st *postgres.Store) error {
	if e.cfg.AppURLAllowlist.Empty() {
		return nil
	}
	// stripe-go retries network errors, 409s and 5xx twice under the same
	// idempotency key: a retry never creates a second session.
	client, err := stripeapi.New(stripeapi.Config{Key: e.cfg.StripeAPIKey, Base: e.cfg.StripeAPIBase,
		HTTPClient: &http.Client{Timeout: checkoutStripeTimeout}})
	if err != nil {
		return err
	}
	srv.Checkout = &stripeapi.Sessions{Client: client, Store: st, Grace: e.cfg.EntitlementGrace}
	srv.AppURLs = e.cfg.AppURLAllowlist
	mode := "test"
	if client.Livemode() {
		mode = "live"
	}
	e.log.Info("checkout and portal sessions on", "livemode", mode, "app_url_allowlist", e.cfg.AppURLAllowlist.String())
	return nil
}
