package stripeapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/webhooks"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"
)

// Backfill reads every customer and subscription, and reading their JSON
// was most of its CPU: stripe-go's CallRaw validates and unmarshals a page
// twice before handing it on, then each object was decoded alone and the
// last one's ID read once more. Backfill's lists therefore fetch a page's
// body with CallStreaming, which does the same request (parameters, auth,
// Stripe-Version, network retries, errors as *stripe.Error) but leaves the
// body unread, and decode it once, objects and all, with webhooks' page
// decoders. Other lists keep raw pages (Page.Objects).

// ListedPage is a page of a list decoded in one pass: each object or its
// own error, with its ID and creation time.
type ListedPage[T any] struct {
	Objects []webhooks.Listed[T]
	// At is when Stripe answered, as Page.At.
	At time.Time
}

// ListCustomerPages is ListCustomers with each page decoded
// (webhooks.DecodeCustomerPage).
func (c *Client) ListCustomerPages(ctx context.Context, w Window, fn func(ListedPage[billing.Customer]) error) error {
	return walk(ctx, c, "customers", func(lp stripe.ListParams) *stripe.Iter {
		return listedIter(c.api.Customers.B, c.api.Customers.Key, "/v1/customers",
			&stripe.CustomerListParams{ListParams: lp, CreatedRange: w.params()}, webhooks.DecodeCustomerPage)
	}, listedPageOf[billing.Customer], fn)
}

// ListSubscriptionPages is ListSubscriptions with each page decoded
// (webhooks.DecodeSubscriptionPage).
func (c *Client) ListSubscriptionPages(ctx context.Context, w Window, fn func(ListedPage[billing.Subscription]) error) error {
	return walk(ctx, c, "subscriptions", func(lp stripe.ListParams) *stripe.Iter {
		return listedIter(c.api.Subscriptions.B, c.api.Subscriptions.Key, "/v1/subscriptions",
			&stripe.SubscriptionListParams{ListParams: lp, Status: stripe.String("all"), CreatedRange: w.params()},
			webhooks.DecodeSubscriptionPage)
	}, listedPageOf[billing.Subscription], fn)
}

// listedIter lists path as rawIter does (same parameters, pagination,
// retries and errors), each page fetched by fetchPage and decoded by
// decode.
func listedIter[T any](b stripe.Backend, key, path string, params stripe.ListParamsContainer,
	decode func([]byte) (webhooks.ListPage[T], error)) *stripe.Iter {
	return stripe.GetIter(params, func(p *stripe.Params, f *form.Values) ([]interface{}, stripe.ListContainer, error) {
		// The iterator reads its list's meta even after an error.
		l := &listedList[T]{}
		body, header, err := fetchPage(b, key, path, p, f)
		if err != nil {
			return nil, l, err
		}
		page, err := decode(body)
		if err != nil {
			return nil, l, err
		}
		l.meta.HasMore = page.HasMore
		l.page = ListedPage[T]{Objects: page.Objects, At: answeredAt(header)}
		// The iterator reads the ID of a page's last item to ask for the
		// next: the decoded one, not another pass over its bytes.
		items := make([]rawItem, len(page.Objects))
		ret := make([]interface{}, len(items))
		for i := range items {
			ret[i] = &items[i]
		}
		if n := len(items); n > 0 {
			items[n-1].ID = truncID(page.Objects[n-1].ID)
		}
		return ret, l, nil
	})
}

// listedList is a decoded page as the iterator's list.
type listedList[T any] struct {
	meta stripe.ListMeta
	page ListedPage[T]
}

func (l *listedList[T]) GetListMeta() *stripe.ListMeta { return &l.meta }

// listedPageOf is pageOf for decoded pages.
func listedPageOf[T any](l stripe.ListContainer) (ListedPage[T], string, error) {
	ll, ok := l.(*listedList[T])
	if !ok {
		return ListedPage[T]{}, "", errors.New("list page of an unexpected type")
	}
	last := ""
	if n := len(ll.page.Objects); n > 0 {
		last = truncID(ll.page.Objects[n-1].ID)
	}
	return ll.page, last, nil
}

// fetchPage GETs one list page with CallStreaming and returns its body
// and headers. query is the iterator's (limit, window, cursor).
func fetchPage(b stripe.Backend, key, path string, p *stripe.Params, query *form.Values) ([]byte, http.Header, error) {
	ctx := p.Context
	if ctx == nil {
		ctx = context.Background()
	}
	fetch := &pageFetch{}
	req := &pageRequest{Params: *p, query: query}
	req.Context = context.WithValue(ctx, pageFetchKey{}, fetch)
	var stream stripe.APIStream
	if err := b.CallStreaming(http.MethodGet, path, key, req, &stream); err != nil {
		if fetch.err != nil {
			return nil, nil, fetch.err // the network error pageTransport stood in for
		}
		return nil, nil, err
	}
	// Already read by pageTransport: its bytes, without a copy.
	stream.LastResponse.Body.Close()
	return fetch.body, stream.LastResponse.Header, nil
}

// pageRequest is a page's parameters as CallStreaming takes them: a
// params struct it encodes itself, here the iterator's query as it is.
// stripe.Params is embedded for the request's context and because
// CallStreaming looks up the Metadata and Expand fields by name (a struct
// without them panics).
type pageRequest struct {
	stripe.Params `form:"-"`
	query         *form.Values `form:"-"`
}

// AppendTo implements form.Appender: the iterator's query, in its order.
func (r *pageRequest) AppendTo(values *form.Values, _ []string) {
	if r.query == nil {
		return
	}
	for _, kv := range strings.Split(r.query.Encode(), "&") {
		k, v, _ := strings.Cut(kv, "=")
		k, errK := url.QueryUnescape(k)
		v, errV := url.QueryUnescape(v)
		if k != "" && errK == nil && errV == nil {
			values.Add(k, v)
		}
	}
}

// maxPageBytes bounds a list page read into memory: a hundred objects
// are well under a megabyte even with many items each.
var maxPageBytes = 32 << 20 // a variable for the test of the bound

// pageFetch is one fetchPage's exchange with pageTransport.
type pageFetch struct {
	body []byte // the last attempt's body
	err  error  // the last attempt's network error
}

type pageFetchKey struct{}

// pageTransport is the API client's outermost transport; it acts only on
// fetchPage's requests (their context carries a *pageFetch).
//
// It reads the body before answering, as stripe-go's CallRaw does, so
// that a connection cut in the middle of a page is a network error
// stripe-go retries rather than a failed listing.
//
// And it answers a network error (a pacer wait or request cut short by a
// walker's cancelled context included) as a response: stripe-go v76's
// CallStreaming reads the response of a failed request, which is nil,
// and panics (stripe/stripe-go#2211, fixed in v83). The error is kept
// for fetchPage, and the response stands for it: a 502 without a Stripe
// error body, which stripe-go retries exactly as it does a network error
// (up to MaxNetworkRetries, not once the context is done).
type pageTransport struct {
	next http.RoundTripper
}

func (t *pageTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	fetch, _ := r.Context().Value(pageFetchKey{}).(*pageFetch)
	if fetch == nil {
		return t.next.RoundTrip(r)
	}
	fetch.body, fetch.err = nil, nil
	resp, err := t.next.RoundTrip(r)
	if err == nil {
		fetch.body, err = io.ReadAll(io.LimitReader(resp.Body, int64(maxPageBytes)+1))
		resp.Body.Close()
		if err == nil && len(fetch.body) > maxPageBytes {
			err = fmt.Errorf("list page larger than %d MiB", maxPageBytes>>20)
		}
	}
	if err != nil {
		// As http.Client would have returned it.
		fetch.err = &url.Error{Op: r.Method[:1] + strings.ToLower(r.Method[1:]), URL: r.URL.Redacted(), Err: err}
		return &http.Response{
			Status: "502 Bad Gateway", StatusCode: http.StatusBadGateway,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Body: http.NoBody, Request: r,
		}, nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(fetch.body))
	return resp, nil
}
