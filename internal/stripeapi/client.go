package stripeapi

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
	"github.com/stripe/stripe-go/v76/form"
)

// ErrAuth means Stripe refused the API key: retrying cannot help.
var ErrAuth = errors.New("the Stripe API rejected STRIPE_API_KEY")

// Config configures a Client.
type Config struct {
	Key  string // STRIPE_API_KEY
	Base string // STRIPE_API_BASE; empty: Stripe itself
	// NetworkRetries is stripe-go's own retry budget per request (network
	// errors, 409, lock timeouts, 5xx on GET). 0 takes 2, right for the
	// reads of backfill and reconcile; NoNetworkRetries turns them off, for
	// the erasure jobs, whose outbox retries durably instead.
	NetworkRetries int64
	// RateLimitRetries is how often a rate-limited (429) read is retried
	// with exponential backoff from RateLimitBackoff: stripe-go
	// deliberately does not retry rate limits, so this client does.
	// Defaults 8 and 1s. Writes are not retried here (the jobs' outbox
	// does).
	RateLimitRetries int
	RateLimitBackoff time.Duration
	// PageSize is the list limit (1-100, default 100).
	PageSize int64
	// ReadRate is the most requests per second the client sends
	// (STRIPE_READ_RATE); 0 takes DefaultReadRate of the key's mode
	// (readrate.go).
	ReadRate float64
	// HTTPClient overrides the HTTP client; nil: a client with a 80 s
	// timeout, as stripe-go's default.
	HTTPClient *http.Client
}

// NoNetworkRetries is Config.NetworkRetries for no stripe-go retries.
const NoNetworkRetries = -1

// Client talks to the Stripe API. Reads (customers and subscriptions)
// return raw JSON, or for backfill pages decoded by the webhook decoders
// (listpages.go): stripe-go's typed objects drop the fields of API
// versions other than its own, so the webhook decoders read the bytes
// Stripe sent. Writes are the erasure jobs' two calls.
type Client struct {
	api      *client.API
	live     bool
	retries  int
	backoff  time.Duration
	pageSize int64
	pacer    *pacer
	rate     float64
}

// New builds a client: the one stripe-go client configuration of billingd
// (its logger off, since its lines quote Stripe's messages, which name IDs;
// no telemetry). It makes no request.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.Key) == "" {
		return nil, errors.New("STRIPE_API_KEY is not set")
	}
	switch {
	case cfg.NetworkRetries == 0:
		cfg.NetworkRetries = 2
	case cfg.NetworkRetries < 0:
		cfg.NetworkRetries = 0
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
	key := strings.TrimSpace(cfg.Key)
	live := strings.HasPrefix(key, "sk_live_") || strings.HasPrefix(key, "rk_live_")
	if cfg.ReadRate <= 0 {
		cfg.ReadRate = DefaultReadRate(live)
	}
	pc := newPacer(cfg.ReadRate)
	paced := *cfg.HTTPClient
	next := paced.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	paced.Transport = &pageTransport{next: &pacedTransport{next: next, pacer: pc}}
	bc := &stripe.BackendConfig{
		HTTPClient:        &paced,
		MaxNetworkRetries: stripe.Int64(cfg.NetworkRetries),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		EnableTelemetry:   stripe.Bool(false),
	}
	if cfg.Base != "" {
		bc.URL = stripe.String(cfg.Base)
	}
	backends := &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, bc),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, &stripe.BackendConfig{HTTPClient: cfg.HTTPClient}),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, &stripe.BackendConfig{HTTPClient: cfg.HTTPClient}),
	}
	return &Client{
		api:     client.New(key, backends),
		live:    live,
		retries: cfg.RateLimitRetries, backoff: cfg.RateLimitBackoff, pageSize: cfg.PageSize,
		pacer: pc, rate: cfg.ReadRate,
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
		return rawIter(c.api.Customers.B, c.api.Customers.Key, "/v1/customers",
			&stripe.CustomerListParams{ListParams: lp, CreatedRange: w.params()})
	}, fn)
}

// ListSubscriptions calls fn with every page of subscriptions in w, of
// every status (status=all: Stripe leaves canceled ones out otherwise).
func (c *Client) ListSubscriptions(ctx context.Context, w Window, fn func(Page) error) error {
	return c.list(ctx, "subscriptions", func(lp stripe.ListParams) *stripe.Iter {
		return rawIter(c.api.Subscriptions.B, c.api.Subscriptions.Key, "/v1/subscriptions",
			&stripe.SubscriptionListParams{ListParams: lp, Status: stripe.String("all"), CreatedRange: w.params()})
	}, fn)
}

// rawIter lists path as stripe-go's own List does (same parameters,
// pagination, retries and errors) but keeps each page's objects as raw
// JSON. stripe-go decoded every object of a page into its typed structs
// (payment methods, customers' contact fields and all: 40 % of a
// backfill's CPU) only for billingd to read its own fields again from the
// raw page with its decoders; this way the objects' personal fields are
// never decoded either.
func rawIter(b stripe.Backend, key, path string, params stripe.ListParamsContainer) *stripe.Iter {
	return stripe.GetIter(params, func(p *stripe.Params, f *form.Values) ([]interface{}, stripe.ListContainer, error) {
		l := &rawList{}
		err := b.CallRaw(http.MethodGet, path, key, f, p, l)
		// The iterator reads the ID of a page's last item to ask for the next.
		ret := make([]interface{}, len(l.Data))
		for i := range ret {
			ret[i] = &rawItem{}
		}
		if n := len(l.Data); n > 0 {
			ret[n-1].(*rawItem).ID = rawID(l.Data[n-1])
		}
		return ret, l, err
	})
}

// rawList is a list page with its objects undecoded.
type rawList struct {
	stripe.APIResource
	stripe.ListMeta
	Data []json.RawMessage `json:"data"`
}

func (l *rawList) GetListMeta() *stripe.ListMeta { return &l.ListMeta }

// rawItem stands for one object of a rawList in the iterator.
type rawItem struct{ ID string }

// list walks a list of raw pages, for the callers that read objects
// their own way (reconcile, sweep, catalog, entitlements).
func (c *Client) list(ctx context.Context, what string, newIter func(stripe.ListParams) *stripe.Iter, fn func(Page) error) error {
	return walk(ctx, c, what, newIter, rawPageOf, fn)
}

// walk walks a list with stripe-go's iterator, handing fn each page as
// pageOf reads it from the iterator's list container, with the ID of its
// last object. A rate-limited page ends the iterator; the walk then
// sleeps and resumes after the last object handed to fn, so nothing is
// applied twice or skipped.
func walk[P any](ctx context.Context, c *Client, what string, newIter func(stripe.ListParams) *stripe.Iter,
	pageOf func(stripe.ListContainer) (P, string, error), fn func(P) error) error {
	var after string
	var limitedSince time.Time
	for attempt := 0; ; attempt++ {
		var applied bool
		err := prefetch(ctx, c, what, newIter, pageOf, after, func(p P, last string) error {
			if err := fn(p); err != nil {
				return err
			}
			if last != "" {
				after = last
			}
			applied = true
			return nil
		})
		var ie iterError
		if !errors.As(err, &ie) {
			return err // nil, or fn's
		}
		err = ie.err
		if applied {
			attempt, limitedSince = 0, time.Time{}
		}
		if rateLimited(err) && limitedSince.IsZero() {
			limitedSince = time.Now()
		}
		// Parallel walkers share one limit: a page may meet several 429s
		// in a row while the pacer slows down, so a rate limit is given
		// up on only after the retries and a minute.
		if !rateLimited(err) || (attempt >= c.retries && time.Since(limitedSince) > time.Minute) {
			return readError("list "+what, err)
		}
		if err := c.sleep(ctx, attempt); err != nil {
			return err
		}
	}
}

// iterError is an error of the list request itself (to retry a 429), as
// opposed to one fn returned.
type iterError struct{ err error }

func (e iterError) Error() string { return e.err.Error() }

// prefetch lists from after (one pass of stripe-go's iterator) and calls
// fn with each page in order, and the page's last ID. The next page is
// requested while fn applies the current one: at Stripe's 100-300 ms a
// page, a walker that waited for its page to be applied before asking for
// the next would spend half its time idle. At most one page waits ahead.
func prefetch[P any](ctx context.Context, c *Client, what string, newIter func(stripe.ListParams) *stripe.Iter,
	pageOf func(stripe.ListContainer) (P, string, error), after string, fn func(p P, last string) error) error {
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	type fetched struct {
		page P
		last string
		err  error
	}
	pages := make(chan fetched)
	go func() {
		defer close(pages)
		send := func(f fetched) bool {
			select {
			case pages <- f:
				return true
			case <-ictx.Done():
				return false
			}
		}
		lp := stripe.ListParams{Context: ictx, Limit: stripe.Int64(c.pageSize)}
		if after != "" {
			lp.StartingAfter = stripe.String(after)
		}
		it := newIter(lp)
		var cur stripe.ListContainer
		for it.Next() {
			l := it.List()
			if l == cur {
				continue
			}
			cur = l
			p, last, err := pageOf(l)
			if err != nil {
				send(fetched{err: fmt.Errorf("list %s: %w", what, err)})
				return
			}
			if !send(fetched{page: p, last: last}) {
				return
			}
		}
		if err := it.Err(); err != nil && ictx.Err() == nil {
			send(fetched{err: iterError{err}})
		}
	}()
	for f := range pages {
		if f.err != nil {
			return f.err
		}
		if err := fn(f.page, f.last); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// sleep waits backoff·2^attempt (capped at 30 s) or until ctx ends; not
// at all when Stripe said how long to wait (Retry-After): the pacer holds
// every request until then.
func (c *Client) sleep(ctx context.Context, attempt int) error {
	if c.pacer.paused() {
		return nil
	}
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

// rawPageOf is pageOf with the page's last ID.
func rawPageOf(l stripe.ListContainer) (Page, string, error) {
	p, err := pageOf(l)
	if err != nil {
		return Page{}, "", err
	}
	last := ""
	if n := len(p.Objects); n > 0 {
		last = rawID(p.Objects[n-1])
	}
	return p, last, nil
}

// pageOf extracts the raw objects of a list page.
func pageOf(l stripe.ListContainer) (Page, error) {
	var resp *stripe.APIResponse
	switch o := l.(type) {
	case *rawList:
		var h http.Header
		if o.LastResponse != nil {
			h = o.LastResponse.Header
		}
		return Page{Objects: o.Data, At: answeredAt(h)}, nil
	case *stripe.SubscriptionList:
		resp = o.LastResponse
	case *stripe.CustomerList:
		resp = o.LastResponse
	case *stripe.EntitlementsActiveEntitlementList:
		resp = o.LastResponse
	case *stripe.ProductList:
		resp = o.LastResponse
	case *stripe.PriceList:
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
	return Page{Objects: body.Data, At: answeredAt(resp.Header)}, nil
}

// answeredAt is when Stripe answered: its Date header, our clock if absent.
func answeredAt(h http.Header) time.Time {
	if t, err := http.ParseTime(h.Get("Date")); err == nil {
		return t.UTC()
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
			return Object{Raw: resp.RawJSON, At: answeredAt(resp.Header), Found: true}, nil
		}
		var se *stripe.Error
		if errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound {
			return Object{}, nil
		}
		if !rateLimited(err) || attempt >= c.retries {
			return Object{}, readError(what, err)
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

// readError turns a stripe-go error of a read into one clear line.
// Stripe's own message is kept only for errors that are not about the key.
func readError(what string, err error) error {
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
	return &apiError{msg: fmt.Sprintf("%s: Stripe answered %d %s: %s", what, se.HTTPStatusCode, se.Type, se.Msg), se: se}
}

// apiError is a read's Stripe error as one clear line that still unwraps
// to the *stripe.Error, so a job can classify the answer (jobOutcome).
type apiError struct {
	msg string
	se  *stripe.Error
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.se }

// DeleteCustomer deletes a customer in Stripe; the error is stripe-go's
// (*stripe.Error for an answer), for jobOutcome to classify. No context on
// purpose, for both writes: a call under way when serve stops finishes and
// its outcome is recorded, within the HTTP client's timeout.
func (c *Client) DeleteCustomer(id string) error {
	_, err := c.api.Customers.Del(id, nil)
	return err
}

// CancelSubscription cancels a subscription in Stripe at once.
func (c *Client) CancelSubscription(id string) error {
	_, err := c.api.Subscriptions.Cancel(id, nil)
	return err
}

// SubscriptionWithDiscounts fetches a subscription with its discounts
// expanded (in stripe-go's API version a discount carries its coupon),
// for the job that resolves discounts known by ID only. The error is
// stripe-go's, for jobOutcome to classify.
func (c *Client) SubscriptionWithDiscounts(id string) ([]byte, error) {
	p := &stripe.SubscriptionParams{}
	p.AddExpand("discounts")
	s, err := c.api.Subscriptions.Get(id, p)
	if err != nil {
		return nil, err
	}
	return s.LastResponse.RawJSON, nil
}

// Coupon fetches one coupon, for the job that resolves a customer's
// discount whose coupon arrived as a bare ID.
func (c *Client) Coupon(id string) ([]byte, error) {
	cp, err := c.api.Coupons.Get(id, nil)
	if err != nil {
		return nil, err
	}
	return cp.LastResponse.RawJSON, nil
}

// ListProducts calls fn with every page of products (active or not).
func (c *Client) ListProducts(ctx context.Context, fn func(Page) error) error {
	return c.list(ctx, "products", func(lp stripe.ListParams) *stripe.Iter {
		return c.api.Products.List(&stripe.ProductListParams{ListParams: lp}).Iter
	}, fn)
}

// ListPrices calls fn with every page of prices (active or not).
func (c *Client) ListPrices(ctx context.Context, fn func(Page) error) error {
	return c.list(ctx, "prices", func(lp stripe.ListParams) *stripe.Iter {
		return c.api.Prices.List(&stripe.PriceListParams{ListParams: lp}).Iter
	}, fn)
}
