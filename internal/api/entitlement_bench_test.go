package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/entcache"
	"github.com/billingd/billingd/internal/pgtest"
)

// BenchmarkEntitlementHit is the hot path in process, without sockets: a
// GET /v1/accounts/{id}/entitlement answered from the cache through the
// whole handler stack (middleware, router, token check, cache, ETag). Its
// allocations per request are exact, so a change to the path shows here
// whatever the machine's load: `go test -run '^$' -bench EntitlementHit
// -benchmem ./internal/api`.
func BenchmarkEntitlementHit(b *testing.B) {
	st := pgtest.Open(b)
	ctx := context.Background()
	tok, hash, err := billing.NewToken(billing.ScopeApp)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.TokenCreate(ctx, "bench", billing.ScopeApp, hash); err != nil {
		b.Fatal(err)
	}
	cache := entcache.New(st, api.RenderEntitlement, entcache.Options{Grace: 72 * time.Hour, Log: slog.New(slog.DiscardHandler)})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { cache.Run(rctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(30 * time.Second); !cache.Fresh(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("cache listener did not come up")
		}
	}
	h := (&api.Server{Log: slog.New(slog.DiscardHandler), Tokens: cache, Entitlements: cache}).Handler()
	req := httptest.NewRequest(http.MethodGet, "/v1/accounts/acct_bench/entitlement", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	serve := func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	serve() // loads the token and the answer into the cache
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		serve()
	}
}
