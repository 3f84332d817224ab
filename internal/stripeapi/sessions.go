package stripeapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
)

// SessionStore is what checkout and portal sessions read and sign
// (*postgres.Store implements it).
type SessionStore interface {
	CheckoutAccount(ctx context.Context, accountID string, livemode bool) (billing.CheckoutAccount, error)
	LinkReferenceUntil(ctx context.Context, accountID string, expires time.Time) (string, error)
}

// Sessions creates the app's Checkout and Billing Portal sessions (POST
// /v1/accounts/{id}/checkout-sessions and portal-sessions). The mode is
// the key's: a Stripe key creates sessions of its own mode only.
type Sessions struct {
	Client *Client
	Store  SessionStore
	// Grace is ENTITLEMENT_GRACE_PERIOD: "already subscribed" and the
	// portal's subscription flows judge entitlement as the API does.
	Grace time.Duration
	// Now is the clock (tests set it); nil: time.Now.
	Now func() time.Time
	// Timeout bounds one session request, all its Stripe calls and their
	// retries together; 0: DefaultSessionTimeout. It must end before the
	// HTTP server's write timeout (30 s), so the app gets the 503 rather
	// than a cut connection.
	Timeout time.Duration
}

// DefaultSessionTimeout is Sessions.Timeout's default.
const DefaultSessionTimeout = 25 * time.Second

func (s *Sessions) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.Timeout
	if d <= 0 {
		d = DefaultSessionTimeout
	}
	return context.WithTimeout(ctx, d)
}

func (s *Sessions) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Livemode is the mode of the sessions created: the key's.
func (s *Sessions) Livemode() bool { return s.Client.Livemode() }

func (s *Sessions) mode(asked *bool) (bool, error) {
	live := s.Client.Livemode()
	if asked != nil && *asked != live {
		return false, billing.ErrLivemodeMismatch
	}
	return live, nil
}

// Checkout creates a Checkout Session in subscription mode for req (valid:
// the API checked its shape). The account's customer in the key's mode is
// reused, so a returning user never gets a second customer; otherwise
// Checkout creates one, prefilled with req.CustomerEmail. The session
// carries a signed link reference as client_reference_id and account_id
// in its metadata and its subscription's, so the customer it creates links
// to the account whichever event arrives first.
func (s *Sessions) Checkout(ctx context.Context, req billing.CheckoutRequest) (billing.CheckoutRedirect, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	live, err := s.mode(req.Livemode)
	if err != nil {
		return billing.CheckoutRedirect{}, err
	}
	acct, err := s.Store.CheckoutAccount(ctx, req.AccountID, live)
	if err != nil {
		return billing.CheckoutRedirect{}, err
	}
	now := s.now()
	// Signed first: an erased account is refused before Stripe is asked.
	ref, err := s.Store.LinkReferenceUntil(ctx, req.AccountID, billing.LinkReferenceExpiry(now, 0))
	if err != nil {
		return billing.CheckoutRedirect{}, err
	}
	price, err := s.Client.GetPrice(ctx, req.Price)
	if err != nil {
		return billing.CheckoutRedirect{}, err
	}
	switch {
	case !price.Active:
		return billing.CheckoutRedirect{}, billing.ErrPriceInactive
	case !price.Recurring:
		return billing.CheckoutRedirect{}, billing.ErrPriceNotRecurring
	}
	if !req.AllowMultiple && billing.SubscribedToProduct(acct.Subscriptions, live, price.ProductID, price.ID, now, s.Grace) {
		return billing.CheckoutRedirect{}, billing.ErrAlreadySubscribed
	}
	customer, err := s.customer(ctx, acct.Customers, live)
	if err != nil {
		return billing.CheckoutRedirect{}, err
	}
	key, appKey := req.IdempotencyKey, req.IdempotencyKey != ""
	if !appKey {
		key = newIdempotencyKey("checkout")
	}
	p := CheckoutParams{
		AccountID: req.AccountID, Price: price.ID, Quantity: req.Quantity, SuccessURL: req.SuccessURL, CancelURL: req.CancelURL,
		TrialPeriodDays: req.TrialPeriodDays, AllowPromotionCodes: req.AllowPromotionCodes,
		Customer: customer, CustomerEmail: req.CustomerEmail, ClientReferenceID: ref, IdempotencyKey: key,
	}
	cs, err := s.Client.CreateCheckoutSession(ctx, p)
	if appKey && errors.Is(err, billing.ErrIdempotencyKeyReused) {
		// The first attempt may have been made yesterday (UTC), signing
		// yesterday's expiry: repeat it exactly once. Anything else that
		// differs is the app's reuse of a key for another request.
		if p.ClientReferenceID, err = s.Store.LinkReferenceUntil(ctx, req.AccountID, billing.LinkReferenceExpiry(now, 1)); err != nil {
			return billing.CheckoutRedirect{}, err
		}
		cs, err = s.Client.CreateCheckoutSession(ctx, p)
	}
	return cs, err
}

// Portal creates a Billing Portal session for the account's customer in
// the key's mode; billing.ErrNoCustomer when it has none. The
// subscription flows open on the subscription the app named (if the
// account's) or the one that decides its entitlement, and its customer.
func (s *Sessions) Portal(ctx context.Context, req billing.PortalRequest) (billing.PortalRedirect, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	live, err := s.mode(req.Livemode)
	if err != nil {
		return billing.PortalRedirect{}, err
	}
	acct, err := s.Store.CheckoutAccount(ctx, req.AccountID, live)
	if err != nil {
		return billing.PortalRedirect{}, err
	}
	customer, err := s.customer(ctx, acct.Customers, live)
	if err != nil {
		return billing.PortalRedirect{}, err
	}
	if customer == "" {
		return billing.PortalRedirect{}, billing.ErrNoCustomer
	}
	p := PortalParams{ReturnURL: req.ReturnURL, Configuration: req.Configuration, Flow: req.Flow,
		Customer: customer, IdempotencyKey: req.IdempotencyKey}
	if req.Flow.NeedsSubscription() {
		sub, ok := billing.PortalSubscription(acct.Subscriptions, live, req.Subscription, s.now(), s.Grace)
		if !ok {
			return billing.PortalRedirect{}, billing.ErrNoSubscription
		}
		p.Subscription, p.Customer = sub.ID, sub.CustomerID
	}
	if p.IdempotencyKey == "" {
		p.IdempotencyKey = newIdempotencyKey("portal")
	}
	return s.Client.CreatePortalSession(ctx, p)
}

// customer picks the account's customer in mode live: the latest linked
// of those Stripe has said are of that mode, else the first of those of
// no known mode yet (linked through the API before any event) that the
// key can see, asked of Stripe; "" when there is none.
func (s *Sessions) customer(ctx context.Context, cs []billing.CheckoutCustomer, live bool) (string, error) {
	known, unknown := billing.ReusableCustomers(cs, live)
	if len(known) > 0 {
		return known[0], nil
	}
	for i, id := range unknown {
		if i == billing.MaxUnknownCustomerLookups {
			break
		}
		ok, err := s.Client.CustomerInMode(ctx, id)
		if err != nil {
			return "", err
		}
		if ok {
			return id, nil
		}
	}
	return "", nil
}

// newIdempotencyKey is the key of a request the app sent without one:
// random, so two requests never share one.
func newIdempotencyKey(what string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // cannot happen on supported platforms
	}
	return "billingd-" + what + "-" + hex.EncodeToString(b[:])
}
