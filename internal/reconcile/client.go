// Package reconcile rebuilds and repairs billingd's state from the Stripe
// API: backfill (apply every customer and subscription Stripe lists) and
// reconcile (report drift between stored and Stripe state, and optionally
// apply Stripe's truth). Both decode Stripe's raw JSON with the webhook
// decoders and write through the same ApplyEvent path as webhooks, so the
// same privacy whitelist, ordering, ledger and outbox rules hold.
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// ErrAuth means Stripe refused the API key: retrying cannot help.
var ErrAuth = errors.New("the Stripe API rejected STRIPE_API_KEY")

// ClientConfig configures Client.
type ClientConfig struct {
	Key  string // STRIPE_API_KEY
	Base string // STRIPE_API_BASE; empty: Stripe itself
	// MaxNetworkRetries is stripe-go's own retry budget (network errors,
	// 409, lock timeouts, 5xx on GET). Default 2.
	MaxNetworkRetries int64
	// RateLimitRetries is how often a rate-limited (429) request is
	// retried with exponential backoff from RateLimitBackoff: stripe-go
	// deliberately does not retry rate limits, so this client does.
	// Defaults 8 and 1s.
	RateLimitRetries int
	RateLimitBackoff time.Duration
	// PageSize is the list limit (1-100, default 100).
	PageSize int64
	// HTTPClient overrides the HTTP client (tests); nil: a client with a
	// 80 s timeout, as stripe-go's default.
	HTTPClient *http.Client
}

// Client reads customers and subscriptions from the Stripe API as raw
// JSON: stripe-go's typed objects drop the fields of API versions other
// than its own, so the webhook decoders read the bytes Stripe sent.
type Client struct {
	api      *client.API
	live     bool
	retries  int
	backoff  time.Duration
	pageSize int64
}

// NewClient builds a client. It makes no request.
func NewClient(cfg ClientConfig) (*Client, error) {
	if strings.TrimSpace(cfg.Key) == "" {
		return nil, errors.New("STRIPE_API_KEY is not set")
	}
	if cfg.MaxNetworkRetries == 0 {
		cfg.MaxNetworkRetries = 2
	}
	if cfg.RateLimitRetries == 0 {
		cfg.RateLimitRetries = 8
	}
	if cfg.RateLimitBackoff == 0 {
		cfg.RateLimitBackoff = time.Second
	}
	if cfg.PageSize <= 0 || cfg.PageSize > 100 {
		cfg.PageSize = 100
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 80 * time.Second}
	}
	bc := &stripe.BackendConfig{
		HTTPClient:        cfg.HTTPClient,
		MaxNetworkRetries: stripe.Int64(cfg.MaxNetworkRetries),
		// stripe-go's logger prints request details to stderr; our own
		// errors say what failed, without payloads.
		LeveledLogger:   &stripe.LeveledLogger{Level: stripe.LevelNull},
		EnableTelemetry: stripe.Bool(false),
	}
	if cfg.Base != "" {
		bc.URL = stripe.String(cfg.Base)
	}
	backends := &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, bc),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, &stripe.BackendConfig{HTTPClient: cfg.HTTPClient}),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, &stripe.BackendConfig{HTTPClient: cfg.HTTPClient}),
	}
	key := strings.TrimSpace(cfg.Key)
	return &Client{
		api:     client.New(key, backends),
		live:    strings.HasPrefix(key, "sk_live_") || strings.HasPrefix(key, "rk_live_"),
		retries: cfg.RateLimitRetries, backoff: cfg.RateLimitBackoff, pageSize: cfg.PageSize,
	}, nil
}

// Livemode reports the mode of the key: a key sees one mode's objects only.
func (c *Client) Livemode() bool { return c.live }

// Page is one list page as Stripe answered it.
type Page struct {
	Objects []json.RawMessage
	// At is when Stripe answered (its Date header; our clock if absent):
	// the version of every object on the page (design invariant 2).
	At time.Time
}

// Window restricts a list to objects Stripe created in [GTE, LTE]; zero
// bounds are open.
type Window struct {
	GTE, LTE time.Time
}

func (w Window) params() *stripe.RangeQueryParams {
	if w.GTE.IsZero() && w.LTE.IsZero() {
		return nil
	}
	r := &stripe.RangeQueryParams{}
	if !w.GTE.IsZero() {
		r.GreaterThanOrEqual = w.GTE.Unix()
	}
	if !w.LTE.IsZero() {
		r.LesserThanOrEqual = w.LTE.Unix()
	}
	return r
}

// ListCustomers calls fn with every page of customers in w, newest first
// (auto-pagination). An error from fn stops the listing and is returned.
func (c *Client) ListCustomers(ctx context.Context, w Window, fn func(Page) error) error {
	return c.list(ctx, "customers", func(lp stripe.ListParams) *stripe.Iter {
		return c.api.Customers.List(&stripe.CustomerListParams{ListParams: lp, CreatedRange: w.params()}).Iter
	}, fn)
}

// ListSubscriptions calls fn with every page of subscriptions in w, of
// every status (status=all: Stripe leaves canceled ones out otherwise).
func (c *Client) ListSubscriptions(ctx context.Context, w Window, fn func(Page) error) error {
	return c.list(ctx, "subscriptions", func(lp stripe.ListParams) *stripe.Iter {
		return c.api.Subscriptions.List(&stripe.SubscriptionListParams{ListParams: lp, Status: stripe.String("all"), CreatedRange: w.params()}).Iter
	}, fn)
}

// list walks a list with stripe-go's iterator. A rate-limited page ends
// the iterator; the walk then sleeps and resumes after the last object
// handed to fn, so nothing is applied twice or skipped.
func (c *Client) list(ctx context.Context, what string, newIter func(stripe.ListParams) *stripe.Iter, fn func(Page) error) error {
	var after string
	for attempt := 0; ; attempt++ {
		lp := stripe.ListParams{Context: ctx, Limit: stripe.Int64(c.pageSize)}
		if after != "" {
			lp.StartingAfter = stripe.String(after)
		}
		it := newIter(lp)
		var cur stripe.ListContainer
		for it.Next() {
			if l := it.List(); l != cur {
				cur = l
				p, err := pageOf(l)
				if err != nil {
					return fmt.Errorf("list %s: %w", what, err)
				}
				if err := fn(p); err != nil {
					return err
				}
				attempt = 0
			}
			after = itemID(it.Current())
		}
		err := it.Err()
		if err == nil {
			return nil
		}
		if !rateLimited(err) || attempt >= c.retries {
			return classify("list "+what, err)
		}
		if err := c.sleep(ctx, attempt); err != nil {
			return err
		}
	}
}

// sleep waits backoff·2^attempt (capped at 30 s) or until ctx ends.
func (c *Client) sleep(ctx context.Context, attempt int) error {
	d := min(c.backoff<<min(attempt, 10), 30*time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func itemID(v any) string {
	switch o := v.(type) {
	case *stripe.Subscription:
		return o.ID
	case *stripe.Customer:
		return o.ID
	}
	return ""
}

// pageOf extracts the raw objects of a list page.
func pageOf(l stripe.ListContainer) (Page, error) {
	var resp *stripe.APIResponse
	switch o := l.(type) {
	case *stripe.SubscriptionList:
		resp = o.LastResponse
	case *stripe.CustomerList:
		resp = o.LastResponse
	}
	if resp == nil {
		return Page{}, errors.New("list page without a response")
	}
	var body struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(resp.RawJSON, &body); err != nil {
		return Page{}, fmt.Errorf("read list page: %w", err)
	}
	return Page{Objects: body.Data, At: answeredAt(resp)}, nil
}

func answeredAt(resp *stripe.APIResponse) time.Time {
	if resp != nil && resp.Header != nil {
		if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			return t.UTC()
		}
	}
	return time.Now().UTC()
}

// Object is one object fetched by ID. Found is false when Stripe answered
// 404 (it does not know the ID).
type Object struct {
	Raw   json.RawMessage
	At    time.Time
	Found bool
}

// GetCustomer fetches one customer; a deleted one comes back with
// "deleted": true.
func (c *Client) GetCustomer(ctx context.Context, id string) (Object, error) {
	return c.get(ctx, "get customer", func() (*stripe.APIResponse, error) {
		cu, err := c.api.Customers.Get(id, &stripe.CustomerParams{Params: stripe.Params{Context: ctx}})
		if err != nil {
			return nil, err
		}
		return cu.LastResponse, nil
	})
}

// GetSubscription fetches one subscription.
func (c *Client) GetSubscription(ctx context.Context, id string) (Object, error) {
	return c.get(ctx, "get subscription", func() (*stripe.APIResponse, error) {
		s, err := c.api.Subscriptions.Get(id, &stripe.SubscriptionParams{Params: stripe.Params{Context: ctx}})
		if err != nil {
			return nil, err
		}
		return s.LastResponse, nil
	})
}

func (c *Client) get(ctx context.Context, what string, call func() (*stripe.APIResponse, error)) (Object, error) {
	for attempt := 0; ; attempt++ {
		resp, err := call()
		if err == nil {
			return Object{Raw: resp.RawJSON, At: answeredAt(resp), Found: true}, nil
		}
		var se *stripe.Error
		if errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound {
			return Object{}, nil
		}
		if !rateLimited(err) || attempt >= c.retries {
			return Object{}, classify(what, err)
		}
		if err := c.sleep(ctx, attempt); err != nil {
			return Object{}, err
		}
	}
}

func rateLimited(err error) bool {
	var se *stripe.Error
	return errors.As(err, &se) && se.HTTPStatusCode == http.StatusTooManyRequests
}

// classify turns a stripe-go error into one clear line. Stripe's own
// message is kept only for errors that are not about the key.
func classify(what string, err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch se.HTTPStatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("%w (401): check the key and that it belongs to the intended account and mode", ErrAuth)
	case http.StatusForbidden:
		return fmt.Errorf("%w (403): the key may not read customers and subscriptions (restricted key without those permissions?)", ErrAuth)
	case http.StatusTooManyRequests:
		return fmt.Errorf("%s: still rate limited by Stripe after retries; run again later", what)
	}
	return fmt.Errorf("%s: Stripe answered %d %s: %s", what, se.HTTPStatusCode, se.Type, se.Msg)
}
