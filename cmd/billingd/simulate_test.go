package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/billingd/billingd/internal/stripefake"
	"github.com/billingd/billingd/webhooks"
	"github.com/prometheus/client_golang/prometheus"
)

// TestSimulate runs `billingd simulate` against the real API handler over
// httptest and checks what a new user would see: stored states,
// entitlements and MRR.
func TestSimulate(t *testing.T) {
	t.Parallel()
	const secret = "whsec_simulate_test_secret"
	const n = 12
	st := pgtest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	wh, err := webhooks.NewHandler(webhooks.Config{Secrets: []string{secret}, Store: st, Log: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	cache := entcache.New(st, api.RenderEntitlement, entcache.Options{Grace: 72 * time.Hour, Log: log, Registerer: reg})
	go cache.Run(ctx)
	st.OnCatalogChanged(cache.FlushEntitlements)
	srv := &api.Server{Log: log, Webhooks: wh, Tokens: cache, Entitlements: cache, Accounts: st, Revenue: st, Catalogs: st}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	appToken := newToken(t, st, billing.ScopeApp)
	financeToken := newToken(t, st, billing.ScopeFinance)

	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		return map[string]string{"STRIPE_WEBHOOK_SECRET": secret, "LOG_LEVEL": "error"}[k]
	}
	if err := run(ctx, []string{"simulate", "--url", ts.URL, "--customers", fmt.Sprint(n), "--token", appToken}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("simulate: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), fmt.Sprintf("for %d customers", n)) {
		t.Errorf("simulate printed %q", stdout.String())
	}

	_, outcomes, err := stripefake.Lifecycle(n, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var wantMRR int64
	for _, o := range outcomes {
		t.Run(o.SubscriptionID, func(t *testing.T) {
			var got struct {
				Status string `db:"status"`
				Price  string `db:"price"`
				Qty    int64  `db:"qty"`
			}
			if err := st.DB().Get(&got, `SELECT status, items->0->>'price_id' AS price, (items->0->>'quantity')::bigint AS qty
FROM subscriptions WHERE stripe_subscription_id = $1`, o.SubscriptionID); err != nil {
				t.Fatal(err)
			}
			if got.Status != o.Status || got.Price != o.PriceID || got.Qty != o.Quantity {
				t.Errorf("stored %+v, want %s %s ×%d", got, o.Status, o.PriceID, o.Quantity)
			}
			var ent struct {
				Entitled        bool                      `json:"entitled"`
				Status          string                    `json:"status"`
				Plan            *string                   `json:"plan"`
				Features        map[string]map[string]any `json:"features"`
				ScheduledChange *struct {
					Plan string `json:"plan"`
				} `json:"scheduled_change"`
			}
			getJSON(t, ts.URL+"/v1/accounts/"+o.AccountID+"/entitlement?livemode=false", appToken, &ent)
			if ent.Status != o.Status {
				t.Errorf("entitlement status %q, want %q", ent.Status, o.Status)
			}
			switch o.Status {
			case "active":
				if !ent.Entitled || ent.Plan == nil || *ent.Plan != o.PriceID {
					t.Errorf("active: entitlement %+v, want entitled to %s", ent, o.PriceID)
				}
			case "canceled":
				if ent.Entitled {
					t.Error("canceled: still entitled")
				}
			}
			// Features: Stripe Entitlements' and, while entitled, the demo
			// catalog's (seats = quantity); the scheduled downgrade.
			for _, k := range o.Features {
				if _, ok := ent.Features[k]; !ok {
					t.Errorf("feature %s missing from %v", k, ent.Features)
				}
			}
			if ent.Entitled && ent.Features["seats"]["limit"] != float64(o.Quantity) {
				t.Errorf("seats %v, want the quantity %d", ent.Features["seats"], o.Quantity)
			}
			if o.ScheduledPlan != "" && (ent.ScheduledChange == nil || ent.ScheduledChange.Plan != o.ScheduledPlan) {
				t.Errorf("scheduled change %+v, want a move to %s", ent.ScheduledChange, o.ScheduledPlan)
			}
		})
		if o.Status == "active" || o.Status == "past_due" {
			wantMRR += o.UnitAmount * o.Quantity
		}
	}
	var sum billing.Summary
	getJSON(t, ts.URL+"/v1/metrics/summary?livemode=false", financeToken, &sum)
	if len(sum.Currencies) != 1 || sum.Currencies[0].Currency != "eur" || sum.Currencies[0].MRR != wantMRR {
		t.Errorf("summary %+v, want EUR MRR %d", sum, wantMRR)
	}
}

func newToken(t *testing.T, st *postgres.Store, scope billing.Scope) string {
	t.Helper()
	tok, hash, err := billing.NewToken(scope)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TokenCreate(context.Background(), "sim-"+string(scope), scope, hash); err != nil {
		t.Fatal(err)
	}
	return tok
}

func getJSON(t *testing.T, url, token string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
