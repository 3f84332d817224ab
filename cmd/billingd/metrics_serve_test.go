package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/metricstest"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// TestServeFinance runs the real binary over seeded revenue history: the
// finance endpoints answer a finance token, the dashboard signs in and its
// cookie reads the CSV, and `billingd metrics rebuild` runs beside the
// serving process without changing the answers.
func TestServeFinance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	st, err := postgres.Open(ctx, dbURL, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	item := billing.Item{PriceID: "price_1", Quantity: 3, UnitAmount: 1000, Interval: billing.IntervalMonth, IntervalCount: 1}
	day := time.Now().UTC().AddDate(0, 0, -10).Truncate(time.Second)
	if err := metricstest.Seed(ctx, st, map[string][]billing.SubscriptionVersion{
		"00000000-0000-4000-8000-0000000000f1": {{SubscriptionRef: "10000000-0000-4000-8000-0000000000f1", At: day, Event: "evt_f1",
			State: billing.Subscription{Status: billing.StatusActive, Livemode: true, Currency: "eur", Items: []billing.Item{item}}}},
	}); err != nil {
		t.Fatal(err)
	}
	tok, hash, err := billing.NewToken(billing.ScopeFinance)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TokenCreate(ctx, "finance-team", billing.ScopeFinance, hash); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	env := []string{"DATABASE_URL=" + dbURL, "LISTEN_ADDR=" + addr}
	p := startBillingd(t, env, "serve")
	waitReady(t, p, addr, 60*time.Second)
	base := "http://" + addr

	get := func(t *testing.T, path string, auth func(*http.Request)) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		auth(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	summary := func(t *testing.T) string {
		code, body := get(t, "/v1/metrics/summary", bearer)
		if code != 200 || !strings.Contains(body, `"currency":"eur","exponent":2,"decimals":2,"mrr":3000`) {
			t.Fatalf("summary %d: %s", code, body)
		}
		// as_of moves with the clock; the figures must not.
		_, figures, _ := strings.Cut(body, `"currencies"`)
		return figures
	}
	t.Run("SummaryWithToken", func(t *testing.T) { summary(t) })
	t.Run("DashboardSessionReadsCSV", func(t *testing.T) {
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noRedirect.PostForm(base+"/dashboard/login", url.Values{"token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
			t.Fatalf("login %d, cookies %v", resp.StatusCode, resp.Cookies())
		}
		c := resp.Cookies()[0]
		code, body := get(t, "/v1/metrics/revenue?interval=month&format=csv&currency=eur", func(r *http.Request) { r.AddCookie(c) })
		if code != 200 || !strings.HasPrefix(body, "currency,currency_exponent,period_start") || !strings.Contains(body, "eur,2,") {
			t.Fatalf("csv %d: %s", code, body)
		}
	})
	t.Run("RebuildWhileServing", func(t *testing.T) {
		before := summary(t)
		var out, errb bytes.Buffer
		if err := run(ctx, []string{"metrics", "rebuild"}, func(k string) string {
			if k == "DATABASE_URL" {
				return dbURL
			}
			return ""
		}, &out, &errb); err != nil {
			t.Fatalf("rebuild: %v\n%s", err, errb.String())
		}
		if after := summary(t); after != before {
			t.Fatalf("summary changed by a rebuild:\n%s\n%s", before, after)
		}
	})
}
