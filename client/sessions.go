package client

import (
	"context"
	"net/http"
	"time"
)

// CheckoutParams are a Checkout Session's parameters. Price, SuccessURL
// and CancelURL are required; the URLs must be within billingd's
// APP_URL_ALLOWLIST.
type CheckoutParams struct {
	Price               string `json:"price"`
	Quantity            int64  `json:"quantity,omitempty"`
	SuccessURL          string `json:"success_url"`
	CancelURL           string `json:"cancel_url"`
	TrialPeriodDays     int64  `json:"trial_period_days,omitempty"`
	AllowPromotionCodes bool   `json:"allow_promotion_codes,omitempty"`
	// AllowMultiple: create it even when the account is already entitled
	// to the price's product (else ErrAlreadySubscribed).
	AllowMultiple bool `json:"allow_multiple,omitempty"`
	// CustomerEmail prefills Checkout; billingd forwards it to Stripe and
	// never keeps it.
	CustomerEmail string `json:"customer_email,omitempty"`
	// IdempotencyKey makes the call safe to repeat (the client's own
	// retries reuse it); empty: the client generates one per call.
	IdempotencyKey string `json:"-"`
}

// CheckoutSession is where to send the user.
type CheckoutSession struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
	Livemode  bool      `json:"livemode"`
}

// CheckoutSession creates a Stripe Checkout Session (subscription mode)
// for the account: billingd reuses its customer, signs the link reference
// and sets the metadata, so the payment links to this account.
func (c *Client) CheckoutSession(ctx context.Context, accountID string, p CheckoutParams) (*CheckoutSession, error) {
	key := p.IdempotencyKey
	if key == "" {
		key = newIdempotencyKey()
	}
	var s CheckoutSession
	if _, err := c.call(ctx, http.MethodPost, accountPath(accountID, "/checkout-sessions"),
		http.Header{"Idempotency-Key": {key}}, p, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// PortalParams are a Billing Portal session's parameters; ReturnURL must
// be within APP_URL_ALLOWLIST.
type PortalParams struct {
	ReturnURL     string `json:"return_url"`
	Configuration string `json:"configuration,omitempty"` // bpc_…
	// Flow: "payment_method_update", "subscription_cancel" or
	// "subscription_update" ("" for the portal's home).
	Flow         string `json:"flow,omitempty"`
	Subscription string `json:"subscription,omitempty"` // sub_… for the subscription flows
	// IdempotencyKey as in CheckoutParams.
	IdempotencyKey string `json:"-"`
}

// PortalSession is where to send the user.
type PortalSession struct {
	URL      string `json:"url"`
	Livemode bool   `json:"livemode"`
}

// PortalSession creates a Billing Portal session for the account's
// customer (ErrNoCustomer when it has none in the key's mode).
func (c *Client) PortalSession(ctx context.Context, accountID string, p PortalParams) (*PortalSession, error) {
	key := p.IdempotencyKey
	if key == "" {
		key = newIdempotencyKey()
	}
	var s PortalSession
	if _, err := c.call(ctx, http.MethodPost, accountPath(accountID, "/portal-sessions"),
		http.Header{"Idempotency-Key": {key}}, p, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
