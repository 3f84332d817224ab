package stripeapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/stripe/stripe-go/v76"
)

// The calls behind the app's checkout and portal sessions. Their errors
// are billing errors (sessionError): the API answers them without knowing
// Stripe, and Stripe's own messages, which can quote a parameter (an
// e-mail address), go nowhere.

// Price is what a checkout needs to know of a price.
type Price struct {
	ID        string
	ProductID string
	Active    bool
	Recurring bool
}

// GetPrice fetches a price; billing.ErrPriceNotFound when Stripe does not
// know it in the key's mode.
func (c *Client) GetPrice(ctx context.Context, id string) (Price, error) {
	p, err := c.api.Prices.Get(id, &stripe.PriceParams{Params: stripe.Params{Context: ctx}})
	if err != nil {
		if se := stripeError(err); se != nil && (se.HTTPStatusCode == http.StatusNotFound || se.Code == stripe.ErrorCodeResourceMissing) {
			return Price{}, fmt.Errorf("get price: %w", billing.ErrPriceNotFound)
		}
		return Price{}, sessionError("get price", err)
	}
	out := Price{ID: p.ID, Active: p.Active, Recurring: p.Recurring != nil || p.Type == stripe.PriceTypeRecurring}
	if p.Product != nil {
		out.ProductID = p.Product.ID
	}
	return out, nil
}

// CustomerInMode reports whether Stripe knows customer id in the key's
// mode and has not deleted it: a key sees one mode's objects only.
func (c *Client) CustomerInMode(ctx context.Context, id string) (bool, error) {
	cu, err := c.api.Customers.Get(id, &stripe.CustomerParams{Params: stripe.Params{Context: ctx}})
	if err != nil {
		if se := stripeError(err); se != nil && se.HTTPStatusCode == http.StatusNotFound {
			return false, nil
		}
		return false, sessionError("get customer", err)
	}
	return !cu.Deleted && cu.Livemode == c.live, nil
}

// CheckoutParams is one Checkout Session to create, every value chosen:
// billingd's part (customer, reference, metadata) and the app's.
type CheckoutParams struct {
	AccountID           string
	Price               string
	Quantity            int64
	SuccessURL          string
	CancelURL           string
	TrialPeriodDays     int64
	AllowPromotionCodes bool
	// Customer is the account's customer in the key's mode; empty: Checkout
	// creates one (and CustomerEmail, if any, prefills it).
	Customer          string
	CustomerEmail     string
	ClientReferenceID string
	IdempotencyKey    string
}

// CreateCheckoutSession creates a Checkout Session in subscription mode.
func (c *Client) CreateCheckoutSession(ctx context.Context, p CheckoutParams) (billing.CheckoutRedirect, error) {
	params := &stripe.CheckoutSessionParams{
		Params:            stripe.Params{Context: ctx, IdempotencyKey: stripe.String(p.IdempotencyKey)},
		Mode:              stripe.String(string(stripe.CheckoutSessionModeSubscription)),
		LineItems:         []*stripe.CheckoutSessionLineItemParams{{Price: stripe.String(p.Price), Quantity: stripe.Int64(p.Quantity)}},
		SuccessURL:        stripe.String(p.SuccessURL),
		CancelURL:         stripe.String(p.CancelURL),
		ClientReferenceID: stripe.String(p.ClientReferenceID),
		// Both: Checkout Session metadata for the app's own reading, and the
		// subscription's, which the webhook path reads as a link hint.
		Metadata:         map[string]string{"account_id": p.AccountID},
		SubscriptionData: &stripe.CheckoutSessionSubscriptionDataParams{Metadata: map[string]string{"account_id": p.AccountID}},
	}
	if p.TrialPeriodDays > 0 {
		params.SubscriptionData.TrialPeriodDays = stripe.Int64(p.TrialPeriodDays)
	}
	if p.AllowPromotionCodes {
		params.AllowPromotionCodes = stripe.Bool(true)
	}
	switch {
	case p.Customer != "":
		// Stripe refuses customer_email with customer: the customer has one.
		params.Customer = stripe.String(p.Customer)
	case p.CustomerEmail != "":
		params.CustomerEmail = stripe.String(p.CustomerEmail)
	}
	s, err := c.api.CheckoutSessions.New(params)
	if err != nil {
		return billing.CheckoutRedirect{}, sessionError("create checkout session", err)
	}
	return billing.CheckoutRedirect{ID: s.ID, URL: s.URL, ExpiresAt: time.Unix(s.ExpiresAt, 0).UTC(), Livemode: s.Livemode}, nil
}

// PortalParams is one Billing Portal session to create.
type PortalParams struct {
	Customer       string
	ReturnURL      string
	Configuration  string
	Flow           billing.PortalFlow
	Subscription   string // for the subscription flows
	IdempotencyKey string
}

// CreatePortalSession creates a Billing Portal session. A flow sends the
// user back to ReturnURL when done.
func (c *Client) CreatePortalSession(ctx context.Context, p PortalParams) (billing.PortalRedirect, error) {
	params := &stripe.BillingPortalSessionParams{
		Params:    stripe.Params{Context: ctx, IdempotencyKey: stripe.String(p.IdempotencyKey)},
		Customer:  stripe.String(p.Customer),
		ReturnURL: stripe.String(p.ReturnURL),
	}
	if p.Configuration != "" {
		params.Configuration = stripe.String(p.Configuration)
	}
	if p.Flow != billing.FlowNone {
		fd := &stripe.BillingPortalSessionFlowDataParams{
			Type: stripe.String(string(p.Flow)),
			AfterCompletion: &stripe.BillingPortalSessionFlowDataAfterCompletionParams{
				Type:     stripe.String("redirect"),
				Redirect: &stripe.BillingPortalSessionFlowDataAfterCompletionRedirectParams{ReturnURL: stripe.String(p.ReturnURL)},
			},
		}
		switch p.Flow {
		case billing.FlowSubscriptionCancel:
			fd.SubscriptionCancel = &stripe.BillingPortalSessionFlowDataSubscriptionCancelParams{Subscription: stripe.String(p.Subscription)}
		case billing.FlowSubscriptionUpdate:
			fd.SubscriptionUpdate = &stripe.BillingPortalSessionFlowDataSubscriptionUpdateParams{Subscription: stripe.String(p.Subscription)}
		}
		params.FlowData = fd
	}
	s, err := c.api.BillingPortalSessions.New(params)
	if err != nil {
		if se := stripeError(err); se != nil && se.Code == stripe.ErrorCodeResourceMissing && se.Param == "configuration" {
			return billing.PortalRedirect{}, fmt.Errorf("create portal session: %w", billing.ErrConfigurationNotFound)
		}
		return billing.PortalRedirect{}, sessionError("create portal session", err)
	}
	return billing.PortalRedirect{URL: s.URL, Livemode: s.Livemode}, nil
}

func stripeError(err error) *stripe.Error {
	var se *stripe.Error
	if errors.As(err, &se) {
		return se
	}
	return nil
}

// StripeFailure describes a Stripe error without its message (which may
// quote a parameter): for logs.
type StripeFailure struct {
	Status    int
	Type      string
	Code      string
	Param     string
	RequestID string
}

// FailureOf returns the loggable facts of a Stripe error in err's chain.
func FailureOf(err error) (StripeFailure, bool) {
	var sf *stripeFailureError
	if errors.As(err, &sf) {
		return sf.f, true
	}
	return StripeFailure{}, false
}

type stripeFailureError struct {
	what string
	f    StripeFailure
	kind error
}

func (e *stripeFailureError) Error() string {
	return fmt.Sprintf("%s: Stripe answered %d type=%s code=%s param=%s request_id=%s: %v",
		e.what, e.f.Status, e.f.Type, e.f.Code, e.f.Param, e.f.RequestID, e.kind)
}

func (e *stripeFailureError) Unwrap() error { return e.kind }

// sessionError classifies a failed session call. 503 (ErrStripeUnavailable)
// only when a retry can succeed: no answer (network, timeout), rate
// limited, a concurrent request with the same idempotency key or a lock
// (409), or Stripe's own failure (5xx). A reused idempotency key is the
// app's to fix (409). Everything else (the key refused, a parameter Stripe
// will never accept) is 502: retrying sends the same request.
func sessionError(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", what, billing.ErrStripeUnavailable, err)
	}
	se := stripeError(err)
	if se == nil {
		// No answer: the request may or may not have reached Stripe; the
		// idempotency key makes the retry safe either way.
		return fmt.Errorf("%s: %w: %w", what, billing.ErrStripeUnavailable, err)
	}
	f := StripeFailure{Status: se.HTTPStatusCode, Type: string(se.Type), Code: string(se.Code), Param: se.Param, RequestID: se.RequestID}
	var kind error
	switch {
	case se.Type == stripe.ErrorTypeIdempotency:
		kind = billing.ErrIdempotencyKeyReused
	case se.HTTPStatusCode == http.StatusTooManyRequests, se.HTTPStatusCode == http.StatusConflict, se.HTTPStatusCode >= 500:
		kind = billing.ErrStripeUnavailable
	case se.HTTPStatusCode == http.StatusUnauthorized, se.HTTPStatusCode == http.StatusForbidden:
		kind = fmt.Errorf("%w: %w", billing.ErrStripeRejected, ErrAuth)
	default:
		kind = billing.ErrStripeRejected
	}
	return &stripeFailureError{what: what, f: f, kind: kind}
}
