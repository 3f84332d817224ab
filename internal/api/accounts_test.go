package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/entcache"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// appBundle is one billingd API on a fresh database, with its entitlement
// cache listening, and a token of each scope.
type appBundle struct {
	st      *postgres.Store
	url     string
	srv     *httptest.Server
	appTok  string
	finTok  string
	revoked string
}

func setupApp(t *testing.T) appBundle {
	t.Helper()
	url := pgtest.URL(t)
	st, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := appBundle{st: st, url: url}
	b.srv = startAPI(t, st, url)
	b.appTok = mintToken(t, st, "backend", billing.ScopeApp)
	b.finTok = mintToken(t, st, "finance-team", billing.ScopeFinance)
	b.revoked = mintToken(t, st, "old-backend", billing.ScopeApp)
	list, err := st.TokenList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TokenRevoke(context.Background(), list[len(list)-1].ID); err != nil {
		t.Fatal(err)
	}
	return b
}

// startAPI runs an API server (one "replica") with its own cache on db.
func startAPI(t *testing.T, st *postgres.Store, url string) *httptest.Server {
	t.Helper()
	cache := entcache.New(st, api.RenderEntitlement, entcache.Options{Grace: 72 * time.Hour, Log: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cache.Run(ctx); close(done) }()
	srv := httptest.NewServer((&api.Server{Log: slog.New(slog.DiscardHandler), Tokens: cache,
		Entitlements: cache, Accounts: st, LinkReferences: st, Catalogs: st, Overrides: st, MaxBodyBytes: 1024}).Handler())
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return srv
}

func mintToken(t *testing.T, st *postgres.Store, name string, scope billing.Scope) string {
	t.Helper()
	tok, hash, err := billing.NewToken(scope)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TokenCreate(context.Background(), name, scope, hash); err != nil {
		t.Fatal(err)
	}
	return tok
}

// seedSub stores a customer (linked to acct unless acct is "") and one
// subscription of it, as the event path would have.
func seedSub(t *testing.T, st *postgres.Store, cus, acct, sub string, live bool, status billing.Status, price string, periodStart, periodEnd time.Time) {
	t.Helper()
	const qc = `
INSERT INTO customers (stripe_customer_id, account_id, livemode, linked_via, linked_at)
VALUES ($1, NULLIF($2, ''), $3, CASE WHEN $2 = '' THEN NULL ELSE 'customer_metadata' END, CASE WHEN $2 = '' THEN NULL ELSE now() END)
ON CONFLICT (stripe_customer_id) DO NOTHING`
	if _, err := st.DB().Exec(qc, cus, acct, live); err != nil {
		t.Fatal(err)
	}
	items, _ := json.Marshal([]billing.Item{{PriceID: price, ProductID: "prod_x", Quantity: 1, UnitAmount: 1000, Interval: billing.IntervalMonth, IntervalCount: 1}})
	const qs = `
INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, customer_ref, livemode, status, currency, items,
    current_period_start, current_period_end, version_at, version_rank, version_event)
SELECT $1, $2, customer_ref, $3, $4, 'eur', $5, $6, $7, now(), 0, 'evt_seed'
FROM customers WHERE stripe_customer_id = $2
ON CONFLICT (stripe_subscription_id) DO UPDATE SET status = EXCLUDED.status, items = EXCLUDED.items`
	if _, err := st.DB().Exec(qs, sub, cus, live, string(status), string(items), periodStart, periodEnd); err != nil {
		t.Fatal(err)
	}
}

type result struct {
	status int
	header http.Header
	body   []byte
	code   string // error code, if the body is an error
}

func do(t *testing.T, srv *httptest.Server, method, path, token, body string, hdr ...string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, body: b}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil {
		r.code = e.Error.Code
	}
	return r
}

type entitlementBody struct {
	Entitled   bool    `json:"entitled"`
	Status     string  `json:"status"`
	Plan       *string `json:"plan"`
	ValidUntil *string `json:"valid_until"`
	Livemode   bool    `json:"livemode"`
}

func TestEntitlementEndpoint(t *testing.T) {
	t.Parallel()
	b := setupApp(t)
	now := time.Now().UTC().Truncate(time.Second)
	end := now.Add(20 * 24 * time.Hour)
	seedSub(t, b.st, "cus_E1", "acct_paid", "sub_E1", true, billing.StatusActive, "price_pro", now.Add(-time.Hour), end)
	seedSub(t, b.st, "cus_E2", "acct_paid", "sub_E2", false, billing.StatusTrialing, "price_test", now.Add(-time.Hour), end)
	seedSub(t, b.st, "cus_E3", "acct_gone", "sub_E3", true, billing.StatusCanceled, "price_pro", now.Add(-time.Hour), end)

	pro, test := "price_pro", "price_test"
	endS := end.Format(time.RFC3339)
	tests := []struct {
		name   string
		path   string
		token  string
		status int
		code   string
		want   *entitlementBody
	}{
		{"OK", "/v1/accounts/acct_paid/entitlement", b.appTok, 200, "", &entitlementBody{true, "active", &pro, &endS, true}},
		{"OKLivemodeTrue", "/v1/accounts/acct_paid/entitlement?livemode=true", b.appTok, 200, "", &entitlementBody{true, "active", &pro, &endS, true}},
		{"OKTestMode", "/v1/accounts/acct_paid/entitlement?livemode=false", b.appTok, 200, "", &entitlementBody{true, "trialing", &test, &endS, false}},
		{"OKCanceled", "/v1/accounts/acct_gone/entitlement", b.appTok, 200, "", &entitlementBody{false, "canceled", &pro, nil, true}},
		{"OKUnknownAccount", "/v1/accounts/acct_free/entitlement", b.appTok, 200, "", &entitlementBody{false, "none", nil, nil, true}},
		{"ErrBadLivemode", "/v1/accounts/acct_paid/entitlement?livemode=yes", b.appTok, 400, "invalid_livemode", nil},
		{"ErrRepeatedLivemode", "/v1/accounts/acct_paid/entitlement?livemode=true&livemode=false", b.appTok, 400, "invalid_livemode", nil},
		{"ErrBadAccountID", "/v1/accounts/acct%20x/entitlement", b.appTok, 400, "invalid_account_id", nil},
		{"ErrAccountIDTooLong", "/v1/accounts/" + strings.Repeat("a", 129) + "/entitlement", b.appTok, 400, "invalid_account_id", nil},
		{"ErrNoToken", "/v1/accounts/acct_paid/entitlement", "", 401, "unauthorized", nil},
		{"ErrUnknownToken", "/v1/accounts/acct_paid/entitlement", "bd_app_" + strings.Repeat("A", 43), 401, "unauthorized", nil},
		{"ErrRevokedToken", "/v1/accounts/acct_paid/entitlement", b.revoked, 401, "unauthorized", nil},
		{"ErrFinanceScope", "/v1/accounts/acct_paid/entitlement", b.finTok, 403, "forbidden", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, b.srv, http.MethodGet, tt.path, tt.token, "")
			if r.status != tt.status || r.code != tt.code {
				t.Fatalf("got %d %q, want %d %q (body %s)", r.status, r.code, tt.status, tt.code, r.body)
			}
			if tt.want == nil {
				return
			}
			var got entitlementBody
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			if !sameEntitlement(got, *tt.want) {
				t.Errorf("body %s, want %+v", r.body, *tt.want)
			}
			if cc := r.header.Get("Cache-Control"); cc != "private, no-cache" {
				t.Errorf("Cache-Control = %q", cc)
			}
			if r.header.Get("ETag") == "" {
				t.Error("no ETag")
			}
		})
	}

	t.Run("UnauthorizedLooksTheSame", func(t *testing.T) {
		a := do(t, b.srv, http.MethodGet, "/v1/accounts/acct_paid/entitlement", "", "")
		u := do(t, b.srv, http.MethodGet, "/v1/accounts/acct_paid/entitlement", "bd_app_nope", "")
		r := do(t, b.srv, http.MethodGet, "/v1/accounts/acct_paid/entitlement", b.revoked, "")
		if string(a.body) != string(u.body) || string(u.body) != string(r.body) {
			t.Errorf("401 bodies differ: %s / %s / %s", a.body, u.body, r.body)
		}
	})
	t.Run("NotModified", func(t *testing.T) {
		r := do(t, b.srv, http.MethodGet, "/v1/accounts/acct_paid/entitlement", b.appTok, "")
		tag := r.header.Get("ETag")
		for _, inm := range []string{tag, "W/" + tag, `"other", ` + tag, "*"} {
			nm := do(t, b.srv, http.MethodGet, "/v1/accounts/acct_paid/entitlement", b.appTok, "", "If-None-Match", inm)
			if nm.status != http.StatusNotModified || len(nm.body) != 0 || nm.header.Get("ETag") != tag {
				t.Errorf("If-None-Match %s: %d %q etag %q, want 304, empty, %s", inm, nm.status, nm.body, nm.header.Get("ETag"), tag)
			}
		}
		stale := do(t, b.srv, http.MethodGet, "/v1/accounts/acct_paid/entitlement", b.appTok, "", "If-None-Match", `"stale"`)
		if stale.status != http.StatusOK {
			t.Errorf("stale If-None-Match: %d, want 200", stale.status)
		}
		other := do(t, b.srv, http.MethodGet, "/v1/accounts/acct_gone/entitlement", b.appTok, "")
		if other.header.Get("ETag") == tag {
			t.Error("different answers share an ETag")
		}
	})
}

func sameEntitlement(a, b entitlementBody) bool {
	eq := func(x, y *string) bool { return (x == nil && y == nil) || (x != nil && y != nil && *x == *y) }
	return a.Entitled == b.Entitled && a.Status == b.Status && a.Livemode == b.Livemode && eq(a.Plan, b.Plan) && eq(a.ValidUntil, b.ValidUntil)
}

func TestLinkEndpoint(t *testing.T) {
	t.Parallel()
	b := setupApp(t)
	now := time.Now().UTC().Truncate(time.Second)
	seedSub(t, b.st, "cus_Other", "acct_other", "sub_O", true, billing.StatusActive, "price_pro", now, now.Add(time.Hour))
	seedSub(t, b.st, "cus_Unlinked", "", "sub_U", true, billing.StatusActive, "price_pro", now, now.Add(time.Hour))
	if _, err := b.st.DB().Exec(`INSERT INTO customers (stripe_customer_id, livemode, deleted) VALUES ('cus_Deleted', true, true)`); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		path   string
		token  string
		body   string
		status int
		code   string
	}{
		{"CreatedNewCustomer", "/v1/accounts/acct_1/billing", b.appTok, `{"stripe_customer_id":"cus_New1"}`, 201, ""},
		{"IdempotentRepeat", "/v1/accounts/acct_1/billing", b.appTok, `{"stripe_customer_id":"cus_New1"}`, 200, ""},
		{"CreatedSecondCustomer", "/v1/accounts/acct_1/billing", b.appTok, `{"stripe_customer_id":"cus_Unlinked"}`, 201, ""},
		{"ErrLinkedElsewhere", "/v1/accounts/acct_1/billing", b.appTok, `{"stripe_customer_id":"cus_Other"}`, 409, "customer_linked_elsewhere"},
		{"ErrDeletedCustomer", "/v1/accounts/acct_1/billing", b.appTok, `{"stripe_customer_id":"cus_Deleted"}`, 409, "customer_deleted"},
		{"ErrMalformedJSON", "/v1/accounts/acct_1/billing", b.appTok, `{"stripe_customer_id":`, 400, "invalid_json"},
		{"ErrUnknownField", "/v1/accounts/acct_1/billing", b.appTok, `{"customer":"cus_New1"}`, 400, "invalid_json"},
		{"ErrTrailingData", "/v1/accounts/acct_1/billing", b.appTok, `{"stripe_customer_id":"cus_New1"} {}`, 400, "invalid_json"},
		{"ErrEmptyBody", "/v1/accounts/acct_1/billing", b.appTok, ``, 400, "invalid_json"},
		{"ErrBadCustomerID", "/v1/accounts/acct_1/billing", b.appTok, `{"stripe_customer_id":"sub_123"}`, 400, "invalid_customer_id"},
		{"ErrBodyTooLarge", "/v1/accounts/acct_1/billing", b.appTok, `{"stripe_customer_id":"cus_` + strings.Repeat("a", 2000) + `"}`, 413, "body_too_large"},
		{"ErrBadAccountID", "/v1/accounts/acct!/billing", b.appTok, `{"stripe_customer_id":"cus_New2"}`, 400, "invalid_account_id"},
		{"ErrNoToken", "/v1/accounts/acct_1/billing", "", `{"stripe_customer_id":"cus_New2"}`, 401, "unauthorized"},
		{"ErrFinanceScope", "/v1/accounts/acct_1/billing", b.finTok, `{"stripe_customer_id":"cus_New2"}`, 403, "forbidden"},
	}
	for _, tt := range tests { // in order: later cases build on earlier links
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, b.srv, http.MethodPut, tt.path, tt.token, tt.body, "Content-Type", "application/json")
			if r.status != tt.status || r.code != tt.code {
				t.Fatalf("got %d %q, want %d %q (body %s)", r.status, r.code, tt.status, tt.code, r.body)
			}
		})
	}

	t.Run("LinkedCustomerNowEntitles", func(t *testing.T) {
		// cus_Unlinked had an active subscription before it was linked: the
		// link itself must change acct_1's answer.
		r := do(t, b.srv, http.MethodGet, "/v1/accounts/acct_1/entitlement", b.appTok, "")
		var got entitlementBody
		if err := json.Unmarshal(r.body, &got); err != nil || !got.Entitled {
			t.Fatalf("entitlement after link: %s", r.body)
		}
	})
	t.Run("NoPartialWriteOnConflict", func(t *testing.T) {
		var acct string
		if err := b.st.DB().Get(&acct, `SELECT account_id FROM customers WHERE stripe_customer_id = 'cus_Other'`); err != nil || acct != "acct_other" {
			t.Fatalf("cus_Other is linked to %q (%v), want acct_other", acct, err)
		}
	})
	t.Run("ErrErasedCustomer", func(t *testing.T) {
		if _, err := b.st.EraseAccount(context.Background(), billing.ErasureRequest{AccountID: "acct_other", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		r := do(t, b.srv, http.MethodPut, "/v1/accounts/acct_1/billing", b.appTok, `{"stripe_customer_id":"cus_Other"}`)
		if r.status != http.StatusConflict || r.code != "customer_erased" {
			t.Fatalf("got %d %q, want 409 customer_erased (body %s)", r.status, r.code, r.body)
		}
		var n int
		if err := b.st.DB().Get(&n, `SELECT count(*) FROM customers WHERE stripe_customer_id = 'cus_Other'`); err != nil || n != 0 {
			t.Fatalf("erased customer stored again: %d rows (%v)", n, err)
		}
	})
}

func TestBillingEndpoint(t *testing.T) {
	t.Parallel()
	b := setupApp(t)
	now := time.Now().UTC().Truncate(time.Second)
	seedSub(t, b.st, "cus_B1", "acct_b", "sub_B1", true, billing.StatusActive, "price_pro", now.Add(-time.Hour), now.Add(time.Hour))
	if r := do(t, b.srv, http.MethodPut, "/v1/accounts/acct_b/billing", b.appTok, `{"stripe_customer_id":"cus_B2"}`); r.status != 201 {
		t.Fatalf("link: %d %s", r.status, r.body)
	}

	tests := []struct {
		name   string
		path   string
		token  string
		status int
		code   string
	}{
		{"OK", "/v1/accounts/acct_b/billing", b.appTok, 200, ""},
		{"ErrUnknownAccount", "/v1/accounts/acct_nobody/billing", b.appTok, 404, "account_not_found"},
		{"ErrBadAccountID", "/v1/accounts/a%20b/billing", b.appTok, 400, "invalid_account_id"},
		{"ErrRevokedToken", "/v1/accounts/acct_b/billing", b.revoked, 401, "unauthorized"},
		{"ErrFinanceScope", "/v1/accounts/acct_b/billing", b.finTok, 403, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, b.srv, http.MethodGet, tt.path, tt.token, "")
			if r.status != tt.status || r.code != tt.code {
				t.Fatalf("got %d %q, want %d %q (body %s)", r.status, r.code, tt.status, tt.code, r.body)
			}
		})
	}

	t.Run("Shape", func(t *testing.T) {
		r := do(t, b.srv, http.MethodGet, "/v1/accounts/acct_b/billing", b.appTok, "")
		var got struct {
			AccountID string `json:"account_id"`
			Customers []struct {
				ID       string `json:"stripe_customer_id"`
				Livemode *bool  `json:"livemode"`
			} `json:"customers"`
			Subscriptions []struct {
				ID                string  `json:"id"`
				Status            string  `json:"status"`
				CurrentPeriodEnd  *string `json:"current_period_end"`
				TrialEnd          *string `json:"trial_end"`
				CancelAtPeriodEnd bool    `json:"cancel_at_period_end"`
				Items             []struct {
					PriceID   string `json:"price_id"`
					ProductID string `json:"product_id"`
					Quantity  int64  `json:"quantity"`
					Interval  string `json:"interval"`
				} `json:"items"`
			} `json:"subscriptions"`
		}
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		if got.AccountID != "acct_b" || len(got.Customers) != 2 || got.Customers[0].ID != "cus_B1" || got.Customers[1].ID != "cus_B2" {
			t.Fatalf("customers: %s", r.body)
		}
		if got.Customers[1].Livemode != nil {
			t.Errorf("a customer linked before any event has livemode %v, want null", *got.Customers[1].Livemode)
		}
		if len(got.Subscriptions) != 1 {
			t.Fatalf("subscriptions: %s", r.body)
		}
		s := got.Subscriptions[0]
		wantEnd := now.Add(time.Hour).Format(time.RFC3339)
		if s.ID != "sub_B1" || s.Status != "active" || s.CurrentPeriodEnd == nil || *s.CurrentPeriodEnd != wantEnd || s.TrialEnd != nil ||
			len(s.Items) != 1 || s.Items[0].PriceID != "price_pro" || s.Items[0].ProductID != "prod_x" || s.Items[0].Quantity != 1 || s.Items[0].Interval != "month" {
			t.Errorf("subscription: %s", r.body)
		}
		if r.header.Get("ETag") == "" || r.header.Get("Cache-Control") != "private, no-cache" {
			t.Errorf("headers: %v", r.header)
		}
	})
}
