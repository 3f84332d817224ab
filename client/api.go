package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Entitlement is billingd's answer to "what may this account use?".
type Entitlement struct {
	Entitled   bool       `json:"entitled"`
	Status     string     `json:"status"` // the deciding subscription's status; "none" without one
	Plan       *string    `json:"plan"`   // its primary price ID
	ValidUntil *time.Time `json:"valid_until"`
	Livemode   bool       `json:"livemode"`

	// Features granted (catalog, Stripe Entitlements, overrides); a key is
	// present when granted. FeaturesIncomplete: Stripe's list could not be
	// read whole yet.
	Features           map[string]FeatureGrant `json:"features"`
	FeaturesIncomplete bool                    `json:"features_incomplete"`
	Quantity           int64                   `json:"quantity"` // the primary item's
	Trial              bool                    `json:"trial"`
	InGrace            bool                    `json:"in_grace"` // past_due, still entitled
	CancelAtPeriodEnd  bool                    `json:"cancel_at_period_end"`
	ScheduledChange    *ScheduledChange        `json:"scheduled_change"` // nil: nothing scheduled
}

// FeatureGrant is one granted feature: Limit nil means on, with no
// numeric limit.
type FeatureGrant struct {
	Limit *int64 `json:"limit"`
}

// ScheduledChange is what the deciding subscription changes to, and when.
type ScheduledChange struct {
	At       *time.Time `json:"at"`
	Plan     *string    `json:"plan"`
	Quantity *int64     `json:"quantity"`
	Cancel   bool       `json:"cancel"`
}

// Feature is one feature's answer.
type Feature struct {
	Enabled            bool   `json:"enabled"`
	Limit              *int64 `json:"limit"` // nil: no numeric limit (or not enabled)
	FeaturesIncomplete bool   `json:"features_incomplete"`
}

// Feature asks whether the account may use one feature (by its catalog
// key or Stripe lookup key), and how much of it. ETags as Entitlement.
func (c *Client) Feature(ctx context.Context, accountID, key string, opts ...ReadOption) (*Feature, error) {
	q, h := url.Values{}, http.Header{}
	for _, o := range opts {
		o(q, h)
	}
	path := accountPath(accountID, "/entitlement/features/"+url.PathEscape(key))
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var f Feature
	if h.Get("Cache-Control") != "" {
		if _, err := c.call(ctx, http.MethodGet, path, h, nil, &f); err != nil {
			return nil, err
		}
		return &f, nil
	}
	if err := c.getTagged(ctx, path, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// ReadOption changes an entitlement read.
type ReadOption func(url.Values, http.Header)

// TestMode reads the account's test-mode subscriptions instead of live ones.
func TestMode() ReadOption { return func(q url.Values, _ http.Header) { q.Set("livemode", "false") } }

// Fresh reads past billingd's cache (Cache-Control: no-cache): for the
// moment right after a change made through another replica.
func Fresh() ReadOption {
	return func(_ url.Values, h http.Header) { h.Set("Cache-Control", "no-cache") }
}

// Entitlement asks what the account may use. Answers are kept with their
// ETag, and an unchanged answer costs billingd a 304.
func (c *Client) Entitlement(ctx context.Context, accountID string, opts ...ReadOption) (*Entitlement, error) {
	q, h := url.Values{}, http.Header{}
	for _, o := range opts {
		o(q, h)
	}
	path := accountPath(accountID, "/entitlement")
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var e Entitlement
	if h.Get("Cache-Control") != "" {
		if _, err := c.call(ctx, http.MethodGet, path, h, nil, &e); err != nil {
			return nil, err
		}
		return &e, nil
	}
	if err := c.getTagged(ctx, path, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// LinkResult is the answer of Link.
type LinkResult struct {
	AccountID           string `json:"account_id"`
	StripeCustomerID    string `json:"stripe_customer_id"`
	ReusedErasedAccount bool   `json:"reused_erased_account"`
	// Created: the link was made by this call (false: it already existed).
	Created bool `json:"-"`
}

// Link links a Stripe customer to the account (idempotent). Errors:
// ErrCustomerLinkedElsewhere, ErrAccountErased, and the customer_deleted
// and customer_erased codes.
func (c *Client) Link(ctx context.Context, accountID, stripeCustomerID string) (*LinkResult, error) {
	var r LinkResult
	status, err := c.call(ctx, http.MethodPut, accountPath(accountID, "/billing"), nil,
		map[string]string{"stripe_customer_id": stripeCustomerID}, &r)
	if err != nil {
		return nil, err
	}
	r.Created = status == http.StatusCreated
	return &r, nil
}

// LinkReference is a signed, expiring client_reference_id for a Checkout
// Session or Payment Link the app creates itself.
type LinkReference struct {
	AccountID         string    `json:"account_id"`
	ClientReferenceID string    `json:"client_reference_id"`
	ExpiresAt         time.Time `json:"expires_at"`
}

// LinkReference asks for a reference valid for ttl (0: billingd's default,
// 48 h).
func (c *Client) LinkReference(ctx context.Context, accountID string, ttl time.Duration) (*LinkReference, error) {
	var in any
	if ttl > 0 {
		in = map[string]int64{"ttl_seconds": int64(ttl / time.Second)}
	}
	var r LinkReference
	if _, err := c.call(ctx, http.MethodPost, accountPath(accountID, "/link-reference"), nil, in, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// DeleteOptions are the erasure's optional steps in Stripe and ProfitWell.
type DeleteOptions struct {
	CancelSubscriptions bool // cancel the customer's subscriptions in Stripe
	DeleteCustomer      bool // delete the customer in Stripe
	EraseProfitWell     bool // erase the customer's alias in ProfitWell
}

// DeleteAccount erases the account's billing links for good (idempotent).
func (c *Client) DeleteAccount(ctx context.Context, accountID string, o DeleteOptions) error {
	q := url.Values{}
	for k, v := range map[string]bool{"cancel_subscriptions": o.CancelSubscriptions,
		"delete_customer": o.DeleteCustomer, "erase_profitwell": o.EraseProfitWell} {
		if v {
			q.Set(k, strconv.FormatBool(v))
		}
	}
	path := accountPath(accountID, "")
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	_, err := c.call(ctx, http.MethodDelete, path, nil, nil, nil)
	return err
}
