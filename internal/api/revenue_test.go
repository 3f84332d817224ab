package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/metricstest"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/web"
	"github.com/prometheus/client_golang/prometheus"
)

// counter reads one labelled counter from the fixture's registry.
func (f financeFixture) counter(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func ptr(t time.Time) *time.Time { return &t }

// financeExample is metrics.md's worked example (A and B) plus a yen
// customer, so per-currency figures and exponents show.
func financeExample() map[string][]billing.SubscriptionVersion {
	item := func(amount, qty int64, iv billing.Interval) billing.Item {
		return billing.Item{PriceID: "price_1", Quantity: qty, UnitAmount: amount, Interval: iv, IntervalCount: 1}
	}
	sub := func(st billing.Status, cur string, items ...billing.Item) billing.Subscription {
		return billing.Subscription{Status: st, Livemode: true, Currency: cur, Items: items}
	}
	ver := func(ref, when string, s billing.Subscription) billing.SubscriptionVersion {
		return billing.SubscriptionVersion{SubscriptionRef: ref, At: at(when), Event: "evt_" + when, State: s}
	}
	cancelling := sub(billing.StatusActive, "usd", item(2000, 2, billing.IntervalMonth))
	cancelling.CancelAtPeriodEnd, cancelling.CurrentPeriodEnd = true, ptr(at("2026-04-03T09:00:00Z"))
	return map[string][]billing.SubscriptionVersion{
		"00000000-0000-4000-8000-00000000000a": {
			ver("10000000-0000-4000-8000-00000000000a", "2026-01-03T09:00:00Z", sub(billing.StatusActive, "usd", item(2000, 1, billing.IntervalMonth))),
			ver("10000000-0000-4000-8000-00000000000a", "2026-02-10T12:00:00Z", sub(billing.StatusActive, "usd", item(2000, 2, billing.IntervalMonth))),
			ver("10000000-0000-4000-8000-00000000000a", "2026-03-15T08:00:00Z", cancelling),
		},
		"00000000-0000-4000-8000-00000000000b": {
			ver("10000000-0000-4000-8000-00000000000b", "2026-01-20T15:00:00Z", sub(billing.StatusActive, "usd", item(24000, 1, billing.IntervalYear))),
		},
		"00000000-0000-4000-8000-00000000000c": {
			ver("10000000-0000-4000-8000-00000000000c", "2026-02-01T00:00:00Z", sub(billing.StatusActive, "jpy", item(5000, 1, billing.IntervalMonth))),
		},
	}
}

type financeFixture struct {
	reg     *prometheus.Registry
	store   *postgres.Store
	srv     *httptest.Server
	finance string // a finance-scope token
	app     string // an app-scope token
	revoke  func(t *testing.T)
}

// setupFinance starts the API over a fresh database seeded with
// financeExample, with the clock fixed at 2026-06-01.
func setupFinance(t *testing.T) financeFixture {
	t.Helper()
	return setupFinanceWith(t, financeExample())
}

// setupFinanceWith is setupFinance over other seeded history.
func setupFinanceWith(t *testing.T, seed map[string][]billing.SubscriptionVersion) financeFixture {
	t.Helper()
	ctx := context.Background()
	st := pgtest.Open(t)
	if err := metricstest.Seed(ctx, st, seed); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, scope billing.Scope) (string, int64) {
		tok, h, err := billing.NewToken(scope)
		if err != nil {
			t.Fatal(err)
		}
		id, err := st.TokenCreate(ctx, name, scope, h)
		if err != nil {
			t.Fatal(err)
		}
		return tok, id
	}
	fin, finID := mk("finance", billing.ScopeFinance)
	app, _ := mk("backend", billing.ScopeApp)
	reg := prometheus.NewRegistry()
	s := &api.Server{Log: slog.New(slog.DiscardHandler), Tokens: st, Revenue: st, Registerer: reg,
		Sessions: st, Now: func() time.Time { return at("2026-06-01T00:00:00Z") }}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return financeFixture{reg: reg, store: st, srv: srv, finance: fin, app: app, revoke: func(t *testing.T) {
		if _, err := st.TokenRevoke(ctx, finID); err != nil {
			t.Fatal(err)
		}
	}}
}

func (f financeFixture) get(t *testing.T, path, token string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

type revenueBody struct {
	Interval   string `json:"interval"`
	Currencies []struct {
		Currency string           `json:"currency"`
		Exponent int              `json:"exponent"`
		Periods  []map[string]any `json:"periods"`
	} `json:"currencies"`
}

func TestRevenueEndpoint(t *testing.T) {
	t.Parallel()
	f := setupFinance(t)
	t.Run("WorkedExampleJSON", func(t *testing.T) {
		resp, b := f.get(t, "/v1/metrics/revenue?from=2026-01-01&to=2026-04-30&interval=month&currency=usd", f.finance, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		var body revenueBody
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
		if len(body.Currencies) != 1 || body.Currencies[0].Currency != "usd" || len(body.Currencies[0].Periods) != 4 {
			t.Fatalf("body %s", b)
		}
		ps := body.Currencies[0].Periods
		want := []struct {
			field string
			month int
			value any
		}{
			{"mrr", 0, 4000.0}, {"new", 0, 4000.0}, {"arr", 0, 48000.0}, {"customer_churn_rate", 0, nil},
			{"mrr", 1, 6000.0}, {"expansion", 1, 2000.0}, {"net_new", 1, 2000.0}, {"arpa", 1, 3000.0},
			{"mrr", 2, 6000.0}, {"churn", 2, 0.0},
			{"mrr", 3, 2000.0}, {"churn", 3, 4000.0}, {"customer_churn_rate", 3, 0.5}, {"active_subscriptions", 3, 1.0},
			{"start", 3, "2026-04-01"}, {"end", 3, "2026-04-30"},
		}
		for _, w := range want {
			if got := ps[w.month][w.field]; got != w.value {
				t.Errorf("month %d %s = %v, want %v", w.month, w.field, got, w.value)
			}
		}
	})
	t.Run("EveryCurrencyWithItsExponent", func(t *testing.T) {
		_, b := f.get(t, "/v1/metrics/revenue?from=2026-02-01&to=2026-02-28", f.finance, nil)
		var body revenueBody
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
		if len(body.Currencies) != 2 || body.Currencies[0].Currency != "jpy" || body.Currencies[0].Exponent != 0 ||
			body.Currencies[0].Periods[0]["mrr"] != 5000.0 || body.Currencies[1].Exponent != 2 {
			t.Fatalf("body %s", b)
		}
	})
	csvTests := []struct {
		name string
		path string
		hdr  map[string]string
	}{
		{"AcceptCSV", "/v1/metrics/revenue?from=2026-01-01&to=2026-04-30&currency=usd", map[string]string{"Accept": "text/csv"}},
		{"FormatCSV", "/v1/metrics/revenue?from=2026-01-01&to=2026-04-30&currency=usd&format=csv", nil},
	}
	for _, tc := range csvTests {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := f.get(t, tc.path, f.finance, tc.hdr)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
				t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 5 || rows[0][0] != "currency" || rows[0][4] != "mrr" {
				t.Fatalf("csv %q", rows)
			}
			if apr := rows[4]; apr[2] != "2026-04-01" || apr[4] != "2000" || apr[12] != "4000" || apr[16] != "0.5" {
				t.Fatalf("april row %q", apr)
			}
			if jan := rows[1]; jan[16] != "" {
				t.Fatalf("undefined rate must be empty in CSV, got %q", jan[16])
			}
		})
	}
	bad := []struct {
		name, query, code string
	}{
		{"BadDate", "from=2026-13-01", "invalid_date"},
		{"BadToDate", "to=yesterday", "invalid_date"},
		{"FromAfterTo", "from=2026-05-01&to=2026-04-01", "invalid_range"},
		{"OverTenYears", "from=2010-01-01&to=2026-01-02", "range_too_long"},
		{"UnknownInterval", "interval=quarter", "invalid_interval"},
		{"BadCurrency", "currency=dollars", "invalid_currency"},
		{"BadFormat", "format=xml", "invalid_format"},
		{"BadLivemode", "livemode=maybe", "invalid_livemode"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := f.get(t, "/v1/metrics/revenue?"+tc.query, f.finance, nil)
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			_ = json.Unmarshal(b, &e)
			if resp.StatusCode != 400 || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Fatalf("status %d body %s; want 400 %s", resp.StatusCode, b, tc.code)
			}
		})
	}
	t.Run("TenYearsExactlyIsFine", func(t *testing.T) {
		if resp, b := f.get(t, "/v1/metrics/revenue?from=2016-06-01&to=2026-06-01&interval=day", f.finance, nil); resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
	})
	auth := []struct {
		name, token string
		want        int
	}{
		{"NoToken", "", 401},
		{"UnknownToken", "bd_fin_nope", 401},
		{"AppScope", f.app, 403},
		{"FinanceScope", f.finance, 200},
	}
	for _, tc := range auth {
		t.Run("Auth"+tc.name, func(t *testing.T) {
			for _, p := range []string{"/v1/metrics/revenue", "/v1/metrics/summary"} {
				if resp, b := f.get(t, p, tc.token, nil); resp.StatusCode != tc.want {
					t.Fatalf("%s: status %d, want %d: %s", p, resp.StatusCode, tc.want, b)
				}
			}
		})
	}
}

func TestSummaryEndpoint(t *testing.T) {
	t.Parallel()
	f := setupFinance(t)
	resp, b := f.get(t, "/v1/metrics/summary", f.finance, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var s struct {
		AsOf       time.Time                 `json:"as_of"`
		Currencies []billing.CurrencySummary `json:"currencies"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if !s.AsOf.Equal(at("2026-06-01T00:00:00Z")) || len(s.Currencies) != 2 {
		t.Fatalf("summary %s", b)
	}
	usd := s.Currencies[1]
	if usd.Currency != "usd" || usd.MRR != 2000 || usd.ARR != 24000 || usd.PayingCustomers != 1 || usd.ActiveSubscriptions != 1 ||
		usd.ARPA == nil || *usd.ARPA != 2000 {
		t.Fatalf("usd %+v", usd)
	}
	// The first day with data per currency (the dashboard's default range
	// starts there): A's first subscription, the yen customer's.
	if usd.FirstActivity != "2026-01-03" || s.Currencies[0].FirstActivity != "2026-02-01" {
		t.Errorf("first_activity usd %q jpy %q, want 2026-01-03 and 2026-02-01", usd.FirstActivity, s.Currencies[0].FirstActivity)
	}
	for _, key := range []string{`"movements_30d":{"new":`, `"active_subscriptions":`, `"arpa":`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("summary lacks %s: %s", key, b)
		}
	}
	t.Run("TestModeIsEmpty", func(t *testing.T) {
		_, b := f.get(t, "/v1/metrics/summary?livemode=false", f.finance, nil)
		if !strings.Contains(string(b), `"currencies":[]`) {
			t.Fatalf("test-mode summary %s", b)
		}
	})
}

func TestDashboardSession(t *testing.T) {
	t.Parallel()
	f := setupFinance(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login := func(t *testing.T, token string, origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/dashboard/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	withCookie := func(t *testing.T, path string, c *http.Cookie) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
		req.AddCookie(c)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	t.Run("NoSessionShowsLogin", func(t *testing.T) {
		resp, b := f.get(t, "/dashboard", "", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(b), `action="/dashboard/login"`) ||
			!strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
	})
	rejected := []struct{ name, token, origin string }{
		{"WrongToken", "bd_fin_wrong", ""},
		{"AppToken", f.app, ""},
		{"Empty", "", ""},
	}
	for _, tc := range rejected {
		t.Run("Login"+tc.name, func(t *testing.T) {
			resp := login(t, tc.token, tc.origin)
			if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
				t.Fatalf("status %d cookies %v", resp.StatusCode, resp.Cookies())
			}
		})
	}
	t.Run("LoginCrossOrigin", func(t *testing.T) {
		if resp := login(t, f.finance, "https://evil.example"); resp.StatusCode != 403 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	resp := login(t, f.finance, f.srv.URL)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("login: status %d cookies %v", resp.StatusCode, resp.Cookies())
	}
	c := resp.Cookies()[0]
	t.Run("CookieIsHttpOnlyStrictAndHoldsNoToken", func(t *testing.T) {
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.MaxAge <= 0 || strings.Contains(c.Value, f.finance) {
			t.Fatalf("cookie %+v", c)
		}
	})
	t.Run("DashboardWithSession", func(t *testing.T) {
		resp, b := withCookie(t, "/dashboard", c)
		if resp.StatusCode != 200 || !strings.Contains(b, `id="mrr-chart"`) {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
	})
	t.Run("APIWithSession", func(t *testing.T) {
		if resp, b := withCookie(t, "/v1/metrics/summary", c); resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
	})
	t.Run("TamperedCookie", func(t *testing.T) {
		bad := *c
		last := c.Value[len(c.Value)-1]
		bad.Value = c.Value[:len(c.Value)-1] + map[bool]string{true: "B", false: "A"}[last == 'A']
		if resp, _ := withCookie(t, "/v1/metrics/summary", &bad); resp.StatusCode != 401 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("StaticAssets", func(t *testing.T) {
		// Every module and stylesheet the page loads is served, as
		// JavaScript or CSS (browsers refuse a module of another type).
		files, err := fs.Glob(web.Static, "static/*.[jc]s*")
		if err != nil || len(files) < 5 {
			t.Fatalf("embedded assets %v: %v", files, err)
		}
		for _, name := range files {
			p := "/dashboard/" + name
			resp, b := f.get(t, p, "", nil)
			if resp.StatusCode != 200 || len(b) < 100 {
				t.Fatalf("%s: status %d", p, resp.StatusCode)
			}
			want := map[bool]string{true: "text/javascript", false: "text/css"}[strings.HasSuffix(name, ".js")]
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
				t.Errorf("%s: Content-Type %q, want %s", p, ct, want)
			}
		}
		if resp, _ := f.get(t, "/dashboard/static/login.html", "", nil); resp.StatusCode != 404 {
			t.Fatalf("login.html served raw: %d", resp.StatusCode)
		}
	})
	t.Run("LoginMetrics", func(t *testing.T) {
		if ok, rej := f.counter(t, "billingd_dashboard_logins_total", "outcome", "ok"),
			f.counter(t, "billingd_dashboard_logins_total", "outcome", "rejected"); ok != 1 || rej != 3 {
			t.Fatalf("logins ok %v rejected %v, want 1 and 3", ok, rej)
		}
	})
	t.Run("RevokedTokenEndsSession", func(t *testing.T) {
		f.revoke(t)
		if resp, _ := withCookie(t, "/v1/metrics/summary", c); resp.StatusCode != 401 {
			t.Fatalf("status %d after revoke", resp.StatusCode)
		}
	})
}
