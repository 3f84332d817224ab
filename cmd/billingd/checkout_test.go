package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/internal/stripefake"
)

func TestAppURLAllowlistConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string // "" : valid
		list string // the parsed allowlist
	}{
		{"Off", map[string]string{}, "", ""},
		{"OK", map[string]string{"APP_URL_ALLOWLIST": "https://app.example.com/billing/, http://localhost:3000", "STRIPE_API_KEY": "sk_test_x"}, "",
			"https://app.example.com/billing,http://localhost:3000"},
		{"NeedsKey", map[string]string{"APP_URL_ALLOWLIST": "https://app.example.com"}, "need STRIPE_API_KEY", ""},
		{"HTTPPublicHost", map[string]string{"APP_URL_ALLOWLIST": "http://app.example.com", "STRIPE_API_KEY": "sk_test_x"}, "APP_URL_ALLOWLIST: comma-separated", ""},
		{"Query", map[string]string{"APP_URL_ALLOWLIST": "https://app.example.com/?next=", "STRIPE_API_KEY": "sk_test_x"}, "APP_URL_ALLOWLIST", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(func(k string) string { return tt.env[k] })
			if err == nil {
				err = c.validateServe()
			}
			if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("config: %v, want %q", err, tt.want)
			}
			if err == nil && c.AppURLAllowlist.String() != tt.list {
				t.Errorf("allowlist %q, want %q", c.AppURLAllowlist.String(), tt.list)
			}
		})
	}
}

// TestServeCheckoutSessions: serve with APP_URL_ALLOWLIST and a Stripe key
// answers checkout and portal sessions through the configured Stripe API
// (the recording fake), in the key's mode.
func TestServeCheckoutSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tok, hash, err := billing.NewToken(billing.ScopeApp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TokenCreate(ctx, "app-backend", billing.ScopeApp, hash); err != nil {
		t.Fatal(err)
	}
	fake := stripefake.New()
	defer fake.Close()
	fake.PutPrice(stripefake.Price{ID: "price_pro", ProductID: "prod_x", Recurring: true})

	addr := freeAddr(t)
	p := startBillingd(t, []string{"DATABASE_URL=" + url, "LISTEN_ADDR=" + addr, "STRIPE_API_BASE=" + fake.URL,
		"STRIPE_API_KEY=" + stripefake.Key, "APP_URL_ALLOWLIST=https://app.example.com"}, "serve")
	waitReady(t, p, addr, 60*time.Second)
	post := func(path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	status, v := post("/v1/accounts/acct_srv/checkout-sessions", `{"price":"price_pro","success_url":"https://app.example.com/ok","cancel_url":"https://app.example.com/"}`)
	if status != 200 || !strings.HasPrefix(v["id"].(string), "cs_test_") || v["livemode"] != false {
		t.Fatalf("checkout: %d %v\n%s", status, v, p.stderr.String())
	}
	if status, v := post("/v1/accounts/acct_srv/portal-sessions", `{"return_url":"https://app.example.com/"}`); status != 404 {
		t.Fatalf("portal without customer: %d %v", status, v)
	}
	if c, _ := fake.SessionsCreated(); c != 1 {
		t.Fatalf("Stripe created %d checkout sessions", c)
	}
	if !strings.Contains(p.stderr.String(), "checkout and portal sessions on") {
		t.Errorf("serve did not say checkout sessions are on:\n%s", p.stderr.String())
	}
}
