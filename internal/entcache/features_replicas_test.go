package entcache_test

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

// featureReplica is a replica wired as serve wires it for issue 18: the
// catalog and overrides on its API, and its Store telling its cache of
// its own writes (read your writes).
func startFeatureReplica(t *testing.T, url string) *replica {
	t.Helper()
	st, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{st: st}
	r.cache = entcache.New(st, api.RenderEntitlement, entcache.Options{Grace: 72 * time.Hour, Bound: bound, Log: slog.New(slog.DiscardHandler)})
	st.OnAccountsChanged(r.cache.InvalidateAccounts)
	st.OnCatalogChanged(r.cache.FlushEntitlements)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.cache.Run(ctx); close(done) }()
	r.srv = httptest.NewServer((&api.Server{Log: slog.New(slog.DiscardHandler), Tokens: r.cache, Entitlements: r.cache,
		Accounts: st, Catalogs: st, Overrides: st}).Handler())
	t.Cleanup(func() { r.srv.Close(); cancel(); <-done; st.Close() })
	return r
}

func (r *replica) send(t *testing.T, method, path, token, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, r.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// feature returns one feature's answer from the replica as "on", "off" or
// the limit.
func (r *replica) feature(t *testing.T, acct, key, token string) string {
	t.Helper()
	code, body := r.get(t, "/v1/accounts/"+acct+"/entitlement/features/"+key, token)
	if code != http.StatusOK {
		t.Fatalf("feature %s: %d %v", key, code, body)
	}
	switch {
	case body["enabled"] != true:
		return "off"
	case body["limit"] == nil:
		return "on"
	}
	b, _ := json.Marshal(body["limit"])
	return string(b)
}

// TestReplicasSeeCatalogAndOverrideChanges: two replicas on one database;
// a catalog replaced through A, by another process (the CLI) and an
// override set and deleted through A change A's answers at once (read your
// writes) and B's, whose cache held the old ones, within the bound: a
// catalog change reaches every account's answer, not one bucket's.
func TestReplicasSeeCatalogAndOverrideChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	a, b := startFeatureReplica(t, url), startFeatureReplica(t, url)
	tok, hash, _ := billing.NewToken(billing.ScopeApp)
	if _, err := a.st.TokenCreate(ctx, "backend", billing.ScopeApp, hash); err != nil {
		t.Fatal(err)
	}
	db := a.st.DB()
	for _, acct := range []string{"acct_f1", "acct_f2"} {
		cus, sub := "cus_"+acct[5:], "sub_"+acct[5:]
		if _, err := db.Exec(`INSERT INTO customers (stripe_customer_id, account_id, livemode) VALUES ($1, $2, true)`, cus, acct); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`
INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, customer_ref, livemode, status, currency, items,
    current_period_start, current_period_end, version_at, version_rank, version_event)
SELECT $1, $2, customer_ref, true, 'active', 'eur', '[{"price_id":"price_pro","product_id":"prod_pro","quantity":3}]',
       now(), now() + interval '30 days', now(), 0, 'evt_seed'
FROM customers WHERE stripe_customer_id = $2`, sub, cus); err != nil {
			t.Fatal(err)
		}
	}
	a.waitFresh(t)
	b.waitFresh(t)
	other, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	const catalog = `{"features": {"sso": {"name": "SSO"}, "seats": {"name": "Seats"}},
	  "products": {"prod_pro": {"sso": true, "seats": {"per_unit": 2}}}}`
	steps := []struct {
		name   string
		change func(t *testing.T)
		acct   string
		key    string
		want   string
		// local: A made the change and must show it at once.
		local bool
	}{
		{"CatalogPutThroughA", func(t *testing.T) {
			if code := a.send(t, http.MethodPut, "/v1/catalog", tok, catalog); code != http.StatusOK {
				t.Fatalf("PUT catalog: %d", code)
			}
		}, "acct_f2", "seats", "6", true},
		{"OverrideThroughA", func(t *testing.T) {
			if code := a.send(t, http.MethodPut, "/v1/accounts/acct_f1/overrides", tok, `{"features": {"seats": 50}}`); code != http.StatusOK {
				t.Fatalf("PUT override: %d", code)
			}
		}, "acct_f1", "seats", "50", true},
		{"OverrideDeletedThroughA", func(t *testing.T) {
			if code := a.send(t, http.MethodDelete, "/v1/accounts/acct_f1/overrides", tok, ""); code != http.StatusNoContent {
				t.Fatalf("DELETE override: %d", code)
			}
		}, "acct_f1", "seats", "6", true},
		{"CatalogAppliedElsewhere", func(t *testing.T) {
			c, err := billing.ParseCatalog([]byte(`{"features": {"sso": {}, "seats": {}}, "products": {"prod_pro": {"seats": 9}}}`))
			if err != nil {
				t.Fatal(err)
			}
			if err := other.CatalogPut(ctx, c, "cli"); err != nil { // as `billingd catalog apply` does
				t.Fatal(err)
			}
		}, "acct_f2", "sso", "off", false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			a.waitFresh(t)
			b.waitFresh(t)
			// Both replicas cache the old answers of both accounts.
			for _, r := range []*replica{a, b} {
				for _, acct := range []string{"acct_f1", "acct_f2"} {
					r.feature(t, acct, s.key, tok)
				}
			}
			if got := b.feature(t, s.acct, s.key, tok); got == s.want {
				t.Fatalf("B shows %s before the change", got)
			}
			s.change(t)
			committed := time.Now()
			if s.local {
				if got := a.feature(t, s.acct, s.key, tok); got != s.want {
					t.Fatalf("A, which made the change, answers %s, want %s at once", got, s.want)
				}
			}
			for b.feature(t, s.acct, s.key, tok) != s.want && time.Since(committed) < bound {
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("seen by B after %v", time.Since(committed).Round(time.Millisecond))
			time.Sleep(time.Until(committed.Add(bound)))
			for _, r := range []*replica{a, b} {
				if got := r.feature(t, s.acct, s.key, tok); got != s.want {
					t.Fatalf("%v after the change a replica answers %s, want %s", bound, got, s.want)
				}
			}
		})
	}
}
