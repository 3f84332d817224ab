package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
)

// TestCatalogEndpoint: PUT /v1/catalog takes the document and GET
// gives it back; every kind of mistake is a 400 naming the JSON path of
// the first error and changes nothing; finance tokens may not change it.
func TestCatalogEndpoint(t *testing.T) {
	t.Parallel()
	b := setupApp(t)
	const doc = `{"features": {"sso": {"name": "Single sign-on"}, "projects": {"name": "Projects"}, "seats": {"name": "Seats"}},
	 "products": {"prod_Pro": {"sso": true, "projects": 50, "seats": {"per_unit": 1}}},
	 "prices":   {"price_ProYearly": {"projects": 100}}}`
	if r := do(t, b.srv, http.MethodGet, "/v1/catalog", b.appTok, ""); r.status != http.StatusOK ||
		string(r.body) != `{"features":{},"products":{},"prices":{}}`+"\n" {
		t.Fatalf("empty catalog: %d %s", r.status, r.body)
	}
	put := do(t, b.srv, http.MethodPut, "/v1/catalog", b.appTok, doc)
	if put.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", put.status, put.body)
	}
	get := do(t, b.srv, http.MethodGet, "/v1/catalog", b.appTok, "")
	if get.status != http.StatusOK || string(get.body) != string(put.body) || get.header.Get("Etag") == "" {
		t.Fatalf("GET after PUT: %d %s, want %s", get.status, get.body, put.body)
	}
	for _, tt := range []struct{ name, body, path string }{
		{"UnknownFeature", `{"features": {"sso": {}}, "products": {"prod_Pro": {"sso": true, "sos": 1}}}`, "$.products.prod_Pro.sos"},
		{"NegativeLimit", `{"features": {"projects": {}}, "prices": {"price_A": {"projects": -5}}}`, "$.prices.price_A.projects"},
		{"UnknownField", `{"features": {}, "plans": {}}`, "$.plans"},
		{"NotJSON", `{"features": `, "$"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, b.srv, http.MethodPut, "/v1/catalog", b.appTok, tt.body)
			if r.status != http.StatusBadRequest || r.code != "invalid_catalog" {
				t.Fatalf("%d %s", r.status, r.body)
			}
			var e struct {
				Error struct{ Message string } `json:"error"`
			}
			_ = json.Unmarshal(r.body, &e)
			if !strings.HasPrefix(e.Error.Message, tt.path+": ") {
				t.Errorf("message %q does not start with the path %s", e.Error.Message, tt.path)
			}
			if again := do(t, b.srv, http.MethodGet, "/v1/catalog", b.appTok, ""); string(again.body) != string(put.body) {
				t.Errorf("a refused catalog changed the stored one: %s", again.body)
			}
		})
	}
	if r := do(t, b.srv, http.MethodPut, "/v1/catalog", b.finTok, doc); r.status != http.StatusForbidden {
		t.Errorf("finance token: %d", r.status)
	}
}

// TestFeaturesAnswer: the entitlement answer's features, quantity and
// flags through the API, the single-feature endpoint with its own ETag
// (304 on a match), overrides set and removed through the API with their
// validation errors, and /billing's scheduled change.
func TestFeaturesAnswer(t *testing.T) {
	t.Parallel()
	b := setupApp(t)
	now := time.Now().UTC()
	seedSub(t, b.st, "cus_F1", "acct_feat", "sub_F1", true, billing.StatusTrialing, "price_Team", now.Add(-time.Hour), now.Add(240*time.Hour))
	if _, err := b.st.DB().Exec(`UPDATE subscriptions SET items = '[{"price_id":"price_Team","product_id":"prod_Team","quantity":4}]',
		cancel_at_period_end = true WHERE stripe_subscription_id = 'sub_F1'`); err != nil {
		t.Fatal(err)
	}
	if r := do(t, b.srv, http.MethodPut, "/v1/catalog", b.appTok,
		`{"features": {"sso": {}, "seats": {}, "projects": {}}, "products": {"prod_Team": {"sso": true, "seats": {"per_unit": 2}, "projects": 10}}}`); r.status != http.StatusOK {
		t.Fatalf("catalog: %d %s", r.status, r.body)
	}
	get := func(path string, hdr ...string) result {
		return do(t, b.srv, http.MethodGet, path, b.appTok, "", append([]string{"Cache-Control", "no-cache"}, hdr...)...)
	}
	r := get("/v1/accounts/acct_feat/entitlement")
	var ans struct {
		Entitled          bool                      `json:"entitled"`
		Features          map[string]map[string]any `json:"features"`
		Quantity          int64                     `json:"quantity"`
		Trial             bool                      `json:"trial"`
		InGrace           bool                      `json:"in_grace"`
		CancelAtPeriodEnd bool                      `json:"cancel_at_period_end"`
		ScheduledChange   *struct {
			At     string `json:"at"`
			Cancel bool   `json:"cancel"`
		} `json:"scheduled_change"`
	}
	if err := json.Unmarshal(r.body, &ans); err != nil || r.status != http.StatusOK {
		t.Fatalf("%d %s %v", r.status, r.body, err)
	}
	if !ans.Entitled || ans.Quantity != 4 || !ans.Trial || ans.InGrace || !ans.CancelAtPeriodEnd || ans.ScheduledChange == nil ||
		!ans.ScheduledChange.Cancel || ans.Features["seats"]["limit"] != float64(8) || ans.Features["sso"]["limit"] != nil {
		t.Errorf("answer %s", r.body)
	}
	seats := get("/v1/accounts/acct_feat/entitlement/features/seats")
	if seats.status != http.StatusOK || string(seats.body) != `{"enabled":true,"limit":8}`+"\n" || seats.header.Get("Etag") == "" {
		t.Fatalf("seats: %d %s", seats.status, seats.body)
	}
	if r := do(t, b.srv, http.MethodGet, "/v1/accounts/acct_feat/entitlement/features/seats", b.appTok, "",
		"If-None-Match", seats.header.Get("Etag")); r.status != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", r.status)
	}
	if r := get("/v1/accounts/acct_feat/entitlement/features/nope"); string(r.body) != `{"enabled":false,"limit":null}`+"\n" {
		t.Errorf("not granted: %s", r.body)
	}
	if r := get("/v1/accounts/acct_feat/entitlement/features/bad%20key"); r.status != http.StatusBadRequest || r.code != "invalid_feature_key" {
		t.Errorf("bad key: %d %s", r.status, r.body)
	}

	for _, tt := range []struct{ name, body, path string }{
		{"NegativeLimit", `{"features": {"projects": -1}}`, "$.features.projects"},
		{"PerUnitNotAllowed", `{"features": {"seats": {"per_unit": 2}}}`, "$.features.seats"},
		{"UnknownField", `{"features": {}, "note": "Jane wants more"}`, "$"},
		{"MissingFeatures", `{"expires_at": null}`, "$.features"},
		{"ExpiryInThePast", `{"features": {"sso": true}, "expires_at": "2001-01-01T00:00:00Z"}`, "$.expires_at"},
	} {
		t.Run("Override"+tt.name, func(t *testing.T) {
			r := do(t, b.srv, http.MethodPut, "/v1/accounts/acct_feat/overrides", b.appTok, tt.body)
			if r.status != http.StatusBadRequest || r.code != "invalid_override" || !strings.Contains(string(r.body), tt.path+": ") {
				t.Errorf("%d %s, want 400 naming %s", r.status, r.body, tt.path)
			}
		})
	}
	if r := do(t, b.srv, http.MethodGet, "/v1/accounts/acct_feat/overrides", b.appTok, ""); r.status != http.StatusNotFound {
		t.Errorf("GET without override: %d", r.status)
	}
	exp := now.Add(time.Hour).Format(time.RFC3339)
	put := do(t, b.srv, http.MethodPut, "/v1/accounts/acct_feat/overrides", b.appTok,
		`{"features": {"projects": 200, "beta_reports": true, "sso": false}, "expires_at": "`+exp+`"}`)
	if put.status != http.StatusOK || !strings.Contains(string(put.body), `"updated_by":"backend"`) {
		t.Fatalf("PUT override: %d %s", put.status, put.body)
	}
	if r := do(t, b.srv, http.MethodGet, "/v1/accounts/acct_feat/overrides", b.appTok, ""); r.status != http.StatusOK ||
		!strings.Contains(string(r.body), `"projects":200`) {
		t.Errorf("GET override: %d %s", r.status, r.body)
	}
	for key, want := range map[string]string{"projects": `{"enabled":true,"limit":200}`, "beta_reports": `{"enabled":true,"limit":null}`,
		"sso": `{"enabled":false,"limit":null}`, "seats": `{"enabled":true,"limit":8}`} {
		if r := get("/v1/accounts/acct_feat/entitlement/features/" + key); string(r.body) != want+"\n" {
			t.Errorf("%s with override: %s, want %s", key, r.body, want)
		}
	}
	if r := do(t, b.srv, http.MethodDelete, "/v1/accounts/acct_feat/overrides", b.appTok, ""); r.status != http.StatusNoContent {
		t.Errorf("DELETE: %d %s", r.status, r.body)
	}
	if r := get("/v1/accounts/acct_feat/entitlement/features/projects"); string(r.body) != `{"enabled":true,"limit":10}`+"\n" {
		t.Errorf("after DELETE: %s", r.body)
	}
	if r := do(t, b.srv, http.MethodDelete, "/v1/accounts/acct_feat/overrides", b.appTok, ""); r.status != http.StatusNotFound {
		t.Errorf("second DELETE: %d", r.status)
	}
	bill := do(t, b.srv, http.MethodGet, "/v1/accounts/acct_feat/billing", b.appTok, "")
	if !strings.Contains(string(bill.body), `"scheduled_change":{"at":"`) || !strings.Contains(string(bill.body), `"cancel":true}`) {
		t.Errorf("billing: %s", bill.body)
	}
}
