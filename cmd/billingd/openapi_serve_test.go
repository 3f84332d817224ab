package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/internal/stripefake"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// oaCall is one real request to the running binary.
type oaCall struct {
	name   string
	method string
	path   string
	token  string // "app", "finance", "none" or a literal token
	body   string
	hdr    []string
	want   int
	// badRequest: the request breaks the document on purpose (malformed
	// JSON, a pattern it violates): the validator must refuse it too, so
	// the document describes what the server refuses.
	badRequest bool
}

// TestOpenAPIRealRequests runs the real binary and, for every operation in
// the /openapi.json it serves, sends real requests (successes and the
// documented errors), validating each request and each response (status,
// headers, body) against the document with kin-openapi. An operation no
// call reaches with a 2xx fails the test, so a new route needs a call here
// as well as a place in the document (internal/api's
// TestEveryRouteDocumented holds routes and document to each other).
//
// It runs with a direct database and through PgBouncer 1.18 in transaction
// mode (DATABASE_SESSION_URL past it), so every write endpoint's
// statements are proven on a pooler too: a JSON []byte bound to a jsonb
// parameter under binary parameters, or a statement outliving its
// transaction, fails a call with 500.
func TestOpenAPIRealRequests(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"direct", "pgbouncer"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			openAPIRealRequests(t, mode)
		})
	}
}

func openAPIRealRequests(t *testing.T, mode string) {
	ctx := context.Background()
	url := pgtest.URL(t)
	dbEnv := []string{"DATABASE_URL=" + url}
	if mode == "pgbouncer" {
		b := pgtest.StartPgBouncer(t, pgtest.AdminURL(t))
		dbEnv = []string{"DATABASE_URL=" + b.URL(url), "DATABASE_SESSION_URL=" + url}
	}
	st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tokens := map[string]string{"none": ""}
	for name, scope := range map[string]billing.Scope{"app": billing.ScopeApp, "finance": billing.ScopeFinance} {
		tok, hash, err := billing.NewToken(scope)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.TokenCreate(ctx, "openapi-"+name, scope, hash); err != nil {
			t.Fatal(err)
		}
		tokens[name] = tok
	}
	const secret = "whsec_openapi_contract_0123456789"
	// Stripe is the in-repo fake: checkout needs a price, the portal a
	// customer the key's (test) mode sees.
	fake := stripefake.New()
	defer fake.Close()
	fake.PutPrice(stripefake.Price{ID: "price_oa", ProductID: "prod_oa", Recurring: true})
	fake.PutCustomer(stripefake.Customer{ID: "cus_oaportal", Created: time.Now().Add(-time.Hour)})
	// The app's webhook endpoint: every entitlement.changed delivery is
	// validated against the document's webhooks section below.
	hooks := &hookRecorder{}
	hookSrv := httptest.NewServer(hooks)
	defer hookSrv.Close()
	addr := freeAddr(t)
	p := startBillingd(t, append(dbEnv, "LISTEN_ADDR="+addr, "STRIPE_WEBHOOK_SECRETS="+secret, "LOG_LEVEL=warn",
		"STRIPE_API_BASE="+fake.URL, "STRIPE_API_KEY="+stripefake.Key, "APP_URL_ALLOWLIST=https://app.example.com/billing",
		"APP_WEBHOOK_URL="+hookSrv.URL, "APP_WEBHOOK_SECRET=openapi_app_webhook_secret_0123456789"), "serve")
	waitReady(t, p, addr, 60*time.Second)
	base := "http://" + addr
	hc := &http.Client{Timeout: 30 * time.Second}

	// The document the binary serves is the one checked.
	resp, err := hc.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
		t.Fatalf("GET /openapi.json: %d %s", resp.StatusCode, resp.Header)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}

	// One linked, active subscription in live mode (through a webhook,
	// metadata hint), so reads have something to show.
	c := &rywClient{t: t, base: base, token: tokens["app"], secret: secret, http: hc}
	t0 := time.Now().Add(-time.Hour).Unix()
	c.event("evt_oa_1", t0, "oa1", "active", "acct_oa1")
	c.event("evt_oa_2", t0, "oa2", "active", "")
	// The feed has acct_oa1's entry before GET /v1/changes is called, so
	// the call validates a real entry.
	hooks.wait(t, "acct_oa1", `"status":"active"`)

	today := time.Now().UTC().Format(time.DateOnly)
	calls := []oaCall{
		{name: "entitlement", method: "GET", path: "/v1/accounts/acct_oa1/entitlement", token: "app", want: 200},
		{name: "entitlement test mode unknown", method: "GET", path: "/v1/accounts/acct_nobody/entitlement?livemode=false", token: "app", want: 200},
		{name: "entitlement no-cache", method: "GET", path: "/v1/accounts/acct_oa1/entitlement", token: "app", hdr: []string{"Cache-Control", "no-cache"}, want: 200},
		{name: "entitlement bad livemode", method: "GET", path: "/v1/accounts/acct_oa1/entitlement?livemode=maybe", token: "app", want: 400, badRequest: true},
		{name: "entitlement bad account", method: "GET", path: "/v1/accounts/acct%20x/entitlement", token: "app", want: 400, badRequest: true},
		{name: "entitlement no token", method: "GET", path: "/v1/accounts/acct_oa1/entitlement", token: "none", want: 401},
		{name: "entitlement wrong token", method: "GET", path: "/v1/accounts/acct_oa1/entitlement", token: "bd_app_notarealtoken", want: 401},
		{name: "entitlement finance token", method: "GET", path: "/v1/accounts/acct_oa1/entitlement", token: "finance", want: 403},
		{name: "billing", method: "GET", path: "/v1/accounts/acct_oa1/billing", token: "app", want: 200},
		{name: "billing unknown", method: "GET", path: "/v1/accounts/acct_nobody/billing", token: "app", want: 404},
		{name: "link", method: "PUT", path: "/v1/accounts/acct_oa2/billing", token: "app", body: `{"stripe_customer_id":"cus_oa2"}`, want: 201},
		{name: "link again", method: "PUT", path: "/v1/accounts/acct_oa2/billing", token: "app", body: `{"stripe_customer_id":"cus_oa2"}`, want: 200},
		{name: "link elsewhere", method: "PUT", path: "/v1/accounts/acct_oa3/billing", token: "app", body: `{"stripe_customer_id":"cus_oa2"}`, want: 409},
		{name: "link malformed", method: "PUT", path: "/v1/accounts/acct_oa2/billing", token: "app", body: `{"stripe_customer_id":`, want: 400, badRequest: true},
		{name: "link unknown field", method: "PUT", path: "/v1/accounts/acct_oa2/billing", token: "app", body: `{"stripe_customer_id":"cus_oa2","email":"jane@example.com"}`, want: 400, badRequest: true},
		{name: "link bad customer", method: "PUT", path: "/v1/accounts/acct_oa2/billing", token: "app", body: `{"stripe_customer_id":"acct_1"}`, want: 400, badRequest: true},
		{name: "link too large", method: "PUT", path: "/v1/accounts/acct_oa2/billing", token: "app", body: `{"stripe_customer_id":"cus_oa2","reuse_erased_account":false` + strings.Repeat(" ", 70<<10) + `}`, want: 413},
		{name: "link reference", method: "POST", path: "/v1/accounts/acct_oa4/link-reference", token: "app", want: 200},
		{name: "link reference ttl", method: "POST", path: "/v1/accounts/acct_oa4/link-reference", token: "app", body: `{"ttl_seconds":3600}`, want: 200},
		{name: "link reference bad ttl", method: "POST", path: "/v1/accounts/acct_oa4/link-reference", token: "app", body: `{"ttl_seconds":5}`, want: 400, badRequest: true},
		{name: "export", method: "GET", path: "/v1/accounts/acct_oa1/export", token: "app", want: 200},
		{name: "erase", method: "DELETE", path: "/v1/accounts/acct_oa2", token: "app", want: 204},
		{name: "erase flags", method: "DELETE", path: "/v1/accounts/acct_oa9?erase_profitwell=false", token: "app", want: 204},
		{name: "erase unknown flag", method: "DELETE", path: "/v1/accounts/acct_oa9?forget=true", token: "app", want: 400},
		{name: "erase bad flag", method: "DELETE", path: "/v1/accounts/acct_oa9?delete_customer=yes", token: "app", want: 400, badRequest: true},
		{name: "relink erased", method: "PUT", path: "/v1/accounts/acct_oa2/billing", token: "app", body: `{"stripe_customer_id":"cus_oa5"}`, want: 409},
		{name: "revenue", method: "GET", path: "/v1/metrics/revenue?interval=month&to=" + today, token: "finance", want: 200},
		{name: "revenue csv", method: "GET", path: "/v1/metrics/revenue?format=csv", token: "finance", want: 200},
		{name: "revenue bad interval", method: "GET", path: "/v1/metrics/revenue?interval=year", token: "finance", want: 400, badRequest: true},
		{name: "revenue bad range", method: "GET", path: "/v1/metrics/revenue?from=2026-05-01&to=2026-01-01", token: "finance", want: 400},
		{name: "revenue app token", method: "GET", path: "/v1/metrics/revenue", token: "app", want: 403},
		{name: "summary", method: "GET", path: "/v1/metrics/summary", token: "finance", want: 200},
		{name: "link portal customer", method: "PUT", path: "/v1/accounts/acct_oaportal/billing", token: "app", body: `{"stripe_customer_id":"cus_oaportal"}`, want: 201},
		{name: "checkout", method: "POST", path: "/v1/accounts/acct_oa6/checkout-sessions", token: "app",
			body: `{"price":"price_oa","quantity":2,"success_url":"https://app.example.com/billing/done","cancel_url":"https://app.example.com/billing","trial_period_days":14,"allow_promotion_codes":true,"customer_email":"jane.openapi@example.com"}`,
			hdr:  []string{"Idempotency-Key", "oa-checkout-1"}, want: 200},
		{name: "checkout open redirect", method: "POST", path: "/v1/accounts/acct_oa6/checkout-sessions", token: "app",
			body: `{"price":"price_oa","success_url":"https://app.example.com.evil.test/","cancel_url":"https://app.example.com/billing"}`, want: 400},
		{name: "checkout unknown price", method: "POST", path: "/v1/accounts/acct_oa6/checkout-sessions", token: "app",
			body: `{"price":"price_nope","success_url":"https://app.example.com/billing","cancel_url":"https://app.example.com/billing"}`, want: 400},
		{name: "checkout missing field", method: "POST", path: "/v1/accounts/acct_oa6/checkout-sessions", token: "app",
			body: `{"price":"price_oa"}`, want: 400, badRequest: true},
		{name: "checkout other mode", method: "POST", path: "/v1/accounts/acct_oa6/checkout-sessions?livemode=true", token: "app",
			body: `{"price":"price_oa","success_url":"https://app.example.com/billing","cancel_url":"https://app.example.com/billing"}`, want: 409},
		{name: "portal", method: "POST", path: "/v1/accounts/acct_oaportal/portal-sessions", token: "app",
			body: `{"return_url":"https://app.example.com/billing"}`, want: 200},
		{name: "portal no customer", method: "POST", path: "/v1/accounts/acct_oa7/portal-sessions", token: "app",
			body: `{"return_url":"https://app.example.com/billing"}`, want: 404},
		{name: "portal bad flow", method: "POST", path: "/v1/accounts/acct_oaportal/portal-sessions", token: "app",
			body: `{"return_url":"https://app.example.com/billing","flow":"refund"}`, want: 400, badRequest: true},
		{name: "summary test mode", method: "GET", path: "/v1/metrics/summary?livemode=false", token: "finance", want: 200},
		{name: "catalog put", method: "PUT", path: "/v1/catalog", token: "app",
			body: `{"features": {"sso": {"name": "SSO"}, "seats": {}}, "products": {"prod_oa": {"sso": true, "seats": {"per_unit": 1}}, "prod_ryw": {"sso": true}}}`, want: 200},
		{name: "catalog get", method: "GET", path: "/v1/catalog", token: "app", want: 200},
		{name: "catalog invalid", method: "PUT", path: "/v1/catalog", token: "app", body: `{"features": {}, "products": {"prod_oa": {"x": 1}}}`, want: 400},
		{name: "plan names", method: "GET", path: "/v1/catalog/plans?livemode=false", token: "finance", want: 200},
		{name: "plan names app token", method: "GET", path: "/v1/catalog/plans", token: "app", want: 403},
		{name: "override put", method: "PUT", path: "/v1/accounts/acct_oa1/overrides", token: "app", body: `{"features": {"seats": 50}, "expires_at": null}`, want: 200},
		{name: "override get", method: "GET", path: "/v1/accounts/acct_oa1/overrides", token: "app", want: 200},
		{name: "feature", method: "GET", path: "/v1/accounts/acct_oa1/entitlement/features/seats", token: "app", want: 200},
		{name: "entitlement with features", method: "GET", path: "/v1/accounts/acct_oa1/entitlement", token: "app", want: 200},
		{name: "override delete", method: "DELETE", path: "/v1/accounts/acct_oa1/overrides", token: "app", want: 204},
		{name: "override gone", method: "GET", path: "/v1/accounts/acct_oa1/overrides", token: "app", want: 404},
		{name: "changes", method: "GET", path: "/v1/changes?limit=10", token: "app", want: 200},
		{name: "changes after", method: "GET", path: "/v1/changes?after=1", token: "app", want: 200},
		{name: "changes bad limit", method: "GET", path: "/v1/changes?limit=0", token: "app", want: 400, badRequest: true},
		{name: "changes bad cursor", method: "GET", path: "/v1/changes?after=abc", token: "app", want: 400, badRequest: true},
		{name: "changes finance token", method: "GET", path: "/v1/changes", token: "finance", want: 403},
	}

	reached := map[string]bool{} // operationId → a 2xx was validated
	for _, call := range calls {
		t.Run(call.name, func(t *testing.T) {
			var body io.Reader
			if call.body != "" {
				body = strings.NewReader(call.body)
			}
			req, err := http.NewRequest(call.method, base+call.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if call.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			tok := tokens[call.token]
			if _, named := tokens[call.token]; !named {
				tok = call.token
			}
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			for i := 0; i+1 < len(call.hdr); i += 2 {
				req.Header.Set(call.hdr[i], call.hdr[i+1])
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("%s %s is not in the document: %v", call.method, call.path, err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
			if call.body != "" {
				// The validator reads the body; the request must still carry it.
				req.Body = io.NopCloser(strings.NewReader(call.body))
				req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(call.body)), nil }
			}
			reqErr := openapi3filter.ValidateRequest(ctx, in)
			switch {
			case call.badRequest && reqErr == nil:
				t.Errorf("the document accepts a request the server refuses (%s %s)", call.method, call.path)
			case !call.badRequest && reqErr != nil && call.want != http.StatusRequestEntityTooLarge:
				t.Errorf("request breaks the document: %v", reqErr)
			}
			if call.body != "" {
				req.Body = io.NopCloser(strings.NewReader(call.body))
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != call.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, call.want, got)
			}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
				Header: resp.Header, Body: io.NopCloser(bytes.NewReader(got)),
				Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
			if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
				t.Errorf("response breaks the document: %v\n%s", err, got)
			}
			if resp.StatusCode < 300 {
				reached[route.Operation.OperationID] = true
			}
		})
	}
	// The outbound webhook: real deliveries (the active subscription, then
	// the catalog's features; the override's may have come and gone within
	// one producer pass) against the document's webhooks section.
	hooks.wait(t, "acct_oa1", `"sso":{"limit":null}`)
	wh := doc.Webhooks["entitlement.changed"]
	if wh == nil || wh.Post == nil || wh.Post.RequestBody == nil {
		t.Fatal("the document has no entitlement.changed webhook")
	}
	bodySchema := wh.Post.RequestBody.Value.Content.Get("application/json").Schema.Value
	sigParam := wh.Post.Parameters.GetByInAndName(openapi3.ParameterInHeader, "Billingd-Signature")
	if bodySchema == nil || sigParam == nil {
		t.Fatal("the webhook documents no body schema or no Billingd-Signature header")
	}
	bodies, sigs := hooks.all()
	for i, body := range bodies {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("webhook %d: %v: %s", i, err, body)
		}
		if err := bodySchema.VisitJSON(v); err != nil {
			t.Errorf("webhook %d breaks the document: %v\n%s", i, err, body)
		}
		if err := sigParam.Schema.Value.VisitJSON(sigs[i]); err != nil {
			t.Errorf("webhook %d: Billingd-Signature %q breaks the document: %v", i, sigs[i], err)
		}
	}

	var missing []string
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if !reached[op.OperationID] {
				missing = append(missing, op.OperationID)
			}
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("operations no call reached with a 2xx: %v (add calls above)", missing)
	}
}

// hookRecorder is an app's webhook endpoint: it keeps every delivery.
type hookRecorder struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.bodies = append(h.bodies, body)
	h.sigs = append(h.sigs, r.Header.Get("Billingd-Signature"))
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (h *hookRecorder) all() ([][]byte, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.bodies...), append([]string(nil), h.sigs...)
}

// wait returns once a delivery about account holds want.
func (h *hookRecorder) wait(t *testing.T, account, want string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		bodies, _ := h.all()
		for _, b := range bodies {
			if strings.Contains(string(b), `"account_id":"`+account+`"`) && strings.Contains(string(b), want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no webhook about %s holding %s in %d deliveries", account, want, len(bodies))
		}
	}
}
