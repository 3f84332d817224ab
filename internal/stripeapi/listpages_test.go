package stripeapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/billingd/billingd/internal/stripefake"
	"github.com/billingd/billingd/webhooks"
)

// cut says how to cut a request's connection: not at all, before any
// answer, or in the middle of the body.
type cut int

const (
	noCut cut = iota
	cutBeforeAnswer
	cutMidBody
)

// cuttingProxy forwards to target and cuts the n-th request (from 1) of a
// path as how says.
func cuttingProxy(t *testing.T, target string, how func(path string, n int) cut) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path]++
		n := seen[r.URL.Path]
		mu.Unlock()
		switch how(r.URL.Path, n) {
		case cutBeforeAnswer:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		case cutMidBody:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "100000")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"object": "list", "data": [{"id": "sub_`))
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestBackfillListsThroughCutConnections: a connection cut before
// Stripe's answer or in the middle of a page is retried by stripe-go as
// before (CallStreaming's own handling of a failed request would panic:
// see pageTransport), and once its retries are spent the listing fails
// with the network error, resumable.
func TestBackfillListsThroughCutConnections(t *testing.T) {
	t.Parallel()
	t.Run("Retried", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		proxy := cuttingProxy(t, b.fake.URL, func(path string, n int) cut {
			switch {
			case path == "/v1/subscriptions" && n == 2:
				return cutBeforeAnswer
			case path == "/v1/subscriptions" && n == 4:
				return cutMidBody
			case path == "/v1/customers" && n == 1:
				return cutMidBody
			}
			return noCut
		})
		client, err := stripeapi.New(stripeapi.Config{Key: stripefake.Key, Base: proxy.URL, PageSize: 3, RateLimitBackoff: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		b.syncer.Client = client
		sum := b.backfill(t)
		if sum.Subscriptions.Listed != len(b.subs) || sum.Subscriptions.Applied != len(b.subs) || sum.Customers.Listed != len(b.custs) {
			t.Fatalf("summary %+v, want every object listed and applied once", sum)
		}
		if n := b.count(t, `SELECT count(*) FROM subscriptions`); n != len(b.subs) {
			t.Errorf("%d subscriptions stored, want %d", n, len(b.subs))
		}
	})
	t.Run("GivesUp", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var mu sync.Mutex
		attempts := 0
		proxy := cuttingProxy(t, b.fake.URL, func(path string, _ int) cut {
			if path != "/v1/subscriptions" {
				return noCut
			}
			mu.Lock()
			attempts++
			mu.Unlock()
			return cutBeforeAnswer
		})
		newClient := func() *stripeapi.Client {
			c, err := stripeapi.New(stripeapi.Config{Key: stripefake.Key, Base: proxy.URL, PageSize: 3, RateLimitBackoff: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		attemptsOf := func(list func(*stripeapi.Client) error) (int, error) {
			mu.Lock()
			attempts = 0
			mu.Unlock()
			err := list(newClient())
			mu.Lock()
			defer mu.Unlock()
			return attempts, err
		}
		// The raw pages' CallRaw is what stripe-go always did.
		nRaw, errRaw := attemptsOf(func(c *stripeapi.Client) error {
			return c.ListSubscriptions(context.Background(), stripeapi.Window{}, func(stripeapi.Page) error { return nil })
		})
		nPages, errPages := attemptsOf(func(c *stripeapi.Client) error {
			return c.ListSubscriptionPages(context.Background(), stripeapi.Window{}, func(stripeapi.ListedPage[billing.Subscription]) error { return nil })
		})
		var ue *url.Error
		if errPages == nil || errRaw == nil || !errors.As(errPages, &ue) || errPages.Error() != errRaw.Error() {
			t.Errorf("error %v, want the network error as CallRaw's: %v", errPages, errRaw)
		}
		if nPages != nRaw || nPages < 3 {
			t.Errorf("%d attempts at the page, want CallRaw's %d (stripe-go's 2 network retries)", nPages, nRaw)
		}
		b.syncer.Client = newClient()
		_, err := b.syncer.Backfill(context.Background())
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), "resumable") || !strings.Contains(err.Error(), "list subscriptions: Get ") {
			t.Fatalf("backfill: %v, want the listing's network error, resumable", err)
		}
	})
}

// TestListedPagesAsRawPages: backfill's decoded pages are the raw pages'
// objects, asked for with the same requests (window, limit, status,
// cursor) and versioned by the same Date header.
func TestListedPagesAsRawPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	w := stripeapi.Window{GTE: b.subs[1].Created, LTE: b.subs[9].Created}
	type seen struct {
		ids []string
		at  []time.Time
	}
	var raw, listed seen
	b.fake.ResetRequests()
	if err := b.syncer.Client.ListSubscriptions(ctx, w, func(p stripeapi.Page) error {
		for _, o := range p.Objects {
			s, err := webhooks.DecodeSubscription(o)
			if err != nil {
				return err
			}
			raw.ids = append(raw.ids, s.ID)
		}
		raw.at = append(raw.at, p.At)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rawReqs := b.fake.Requests()
	b.fake.ResetRequests()
	if err := b.syncer.Client.ListSubscriptionPages(ctx, w, func(p stripeapi.ListedPage[billing.Subscription]) error {
		for _, o := range p.Objects {
			if o.Err != nil {
				return o.Err
			}
			if o.ID != o.Object.ID || o.Created != o.Object.Created.Unix() {
				t.Errorf("listed as %s created %d, decoded %s created %v", o.ID, o.Created, o.Object.ID, o.Object.Created)
			}
			listed.ids = append(listed.ids, o.Object.ID)
		}
		listed.at = append(listed.at, p.At)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(raw.ids) < 7 || len(raw.at) < 3 {
		t.Fatalf("raw pages listed %d objects on %d pages: the window should hold several pages", len(raw.ids), len(raw.at))
	}
	if !reflect.DeepEqual(listed.ids, raw.ids) || len(listed.at) != len(raw.at) {
		t.Errorf("decoded pages listed %v on %d pages, raw pages %v on %d", listed.ids, len(listed.at), raw.ids, len(raw.at))
	}
	for i := range min(len(listed.at), len(raw.at)) {
		// The fake's Date header, in whole seconds: not our clock.
		if d := listed.at[i].Sub(raw.at[i]); d < -2*time.Second || d > 2*time.Second || listed.at[i].Nanosecond() != 0 {
			t.Errorf("page %d answered at %v, the raw page at %v", i, listed.at[i], raw.at[i])
		}
	}
	// The same requests, answered at other moments.
	untimed := func(reqs []stripefake.Request) []stripefake.Request {
		for i := range reqs {
			reqs[i].At = time.Time{}
		}
		return reqs
	}
	if got := untimed(b.fake.Requests()); !reflect.DeepEqual(got, untimed(rawReqs)) {
		t.Errorf("requests:\n%+v\nraw pages':\n%+v", got, rawReqs)
	}
}
