package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/entcache"
	"github.com/billingd/billingd/internal/postgres"
)

// benchHandler measures GET /v1/accounts/{id}/entitlement through the
// API's handler stack inside this process (token, router, cache, ETag:
// api.Server over entcache and the store) against a bare net/http handler
// answering the same bodies from a map and bare SQL reads of the same rows,
// in interleaved rounds so that load from elsewhere on a shared machine hits
// each alike. The entitlement stage measures the built binary over
// loopback; this one leaves process and seeding effects out and isolates
// what the handler costs.
func benchHandler(ctx context.Context, c *config) error {
	dbURL, err := c.freshDB("bench_handler")
	if err != nil {
		return err
	}
	st, err := postgres.Open(ctx, dbURL, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 4})
	if err != nil {
		return err
	}
	err = st.MigrateUp()
	st.Close()
	if err != nil {
		return err
	}
	cfg := handlerConfig{DatabaseURL: dbURL}
	if c.short {
		cfg.Requests = 40_000
	}
	res, err := measureHandler(ctx, cfg)
	if err != nil {
		return err
	}
	bd, sq, bare := res[0], res[1], res[2]
	c.print("handler_entitlement_rps_c32", "%.0f", bd.rate())
	c.print("handler_entitlement_p50_ms_c32", "%s", ms(bd.p50))
	c.print("handler_entitlement_p99_ms_c32", "%s", ms(bd.p99))
	c.print("handler_bare_rps_c32", "%.0f", bare.rate())
	c.print("handler_bare_p99_ms_c32", "%s", ms(bare.p99))
	c.print("handler_sql_rps_c32", "%.0f", sq.rate())
	c.print("handler_sql_p99_ms_c32", "%s", ms(sq.p99))
	c.print("handler_ratio_c32", "%.2f", bd.rate()/bare.rate())
	c.print("handler_p99_ratio_c32", "%.2f", float64(bd.p99)/float64(bare.p99))
	c.print("handler_sql_ratio_c32", "%.2f", bd.rate()/sq.rate())
	return nil
}

// handlerConfig sizes a measureHandler run. Zero values take the figures
// of the entitlement goal.
type handlerConfig struct {
	// DatabaseURL is a migrated, empty database; measureHandler seeds it.
	DatabaseURL string
	Accounts    int // default 10,000
	Concurrency int // default 32
	Requests    int // per measured HTTP stage; default 120,000 (SQL: a quarter)
}

// measureHandler seeds cfg.Accounts accounts, then measures billingd's
// entitlement handler stack, bare SQL and a bare handler, and returns the
// three results (billingd, sql, bare).
func measureHandler(ctx context.Context, cfg handlerConfig) ([]loadResult, error) {
	if cfg.Accounts == 0 {
		cfg.Accounts = 10_000
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 32
	}
	if cfg.Requests == 0 {
		cfg.Requests = 120_000
	}
	log := slog.New(slog.DiscardHandler)
	st, err := postgres.Open(ctx, cfg.DatabaseURL, log, postgres.Options{MaxOpenConns: cfg.Concurrency})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := seedEntitlements(ctx, st, cfg.Accounts); err != nil {
		return nil, err
	}
	tok, hash, err := billing.NewToken(billing.ScopeApp)
	if err != nil {
		return nil, err
	}
	if _, err := st.TokenCreate(ctx, "bench", billing.ScopeApp, hash); err != nil {
		return nil, err
	}
	accounts := make([]string, cfg.Accounts)
	for i := range accounts {
		accounts[i] = "acct_" + strconv.Itoa(i)
	}

	// billingd: the real handler stack with its cache and listener.
	cache := entcache.New(st, api.RenderEntitlement, entcache.Options{Grace: 72 * time.Hour, Log: log})
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go cache.Run(lctx)
	for deadline := time.Now().Add(30 * time.Second); !cache.Fresh(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("entitlement cache listener did not come up")
		}
	}
	srv := &api.Server{Log: log, Tokens: cache, Entitlements: cache, Accounts: st}
	billingdURL, closeB, err := serveLoopback(srv.Handler())
	if err != nil {
		return nil, err
	}
	defer closeB()

	// bare: the same bodies from a map, no auth, no router.
	bodies := make(map[string][]byte, len(accounts))
	for _, a := range accounts {
		ans, err := cache.Entitlement(ctx, a, true) // also warms billingd's cache
		if err != nil {
			return nil, err
		}
		bodies[a] = ans.Body
	}
	bareURL, closeBare, err := serveLoopback(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/accounts/"), "/entitlement")
		b, ok := bodies[id]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	if err != nil {
		return nil, err
	}
	defer closeBare()

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: cfg.Concurrency * 2, MaxIdleConnsPerHost: cfg.Concurrency * 2}}
	httpGet := func(base string, auth bool) func(ctx context.Context, i int) error {
		return func(ctx context.Context, i int) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/accounts/"+accounts[i%len(accounts)]+"/entitlement", nil)
			if auth {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	sqlRead := func(ctx context.Context, i int) error {
		_, err := st.AccountSubscriptions(ctx, accounts[i%len(accounts)], true)
		return err
	}

	stages := []struct {
		name string
		n    int
		fn   func(context.Context, int) error
	}{
		{"bare_handler", cfg.Requests, httpGet(bareURL, false)},
		{"billingd_entitlement", cfg.Requests, httpGet(billingdURL, true)},
		{"bare_sql", cfg.Requests / 4, sqlRead},
	}
	// Warm each stage's connections, then measure in interleaved rounds so
	// that load from elsewhere on a shared machine hits every stage alike.
	const rounds = 4
	lats := make([][]time.Duration, len(stages))
	elapsed := make([]time.Duration, len(stages))
	for _, s := range stages {
		if _, _, err := latencies(ctx, cfg.Concurrency, min(s.n, 5_000), s.fn); err != nil {
			return nil, fmt.Errorf("%s warm-up: %w", s.name, err)
		}
	}
	for range rounds {
		for i, s := range stages {
			lat, d, err := latencies(ctx, cfg.Concurrency, s.n/rounds, s.fn)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			lats[i] = append(lats[i], lat...)
			elapsed[i] += d
		}
	}
	results := make([]loadResult, len(stages))
	for i := range stages {
		l := lats[i]
		sort.Slice(l, func(a, b int) bool { return l[a] < l[b] })
		results[i] = loadResult{n: len(l), elapsed: elapsed[i], p50: l[len(l)/2], p99: l[len(l)*99/100]}
	}
	return []loadResult{results[1], results[2], results[0]}, nil
}

// seedEntitlements creates n accounts, each with one customer and one subscription:
// mostly active, some trialing, past_due and canceled.
func seedEntitlements(ctx context.Context, st *postgres.Store, n int) error {
	const qc = `
INSERT INTO customers (stripe_customer_id, account_id, livemode, linked_via, linked_at)
SELECT 'cus_bench' || i, 'acct_' || i, true, 'api', now() FROM generate_series(0, $1 - 1) AS i`
	const qs = `
INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, customer_ref, livemode, status, currency, items,
    current_period_start, current_period_end, version_at, version_rank, version_event)
SELECT 'sub_bench' || substr(c.stripe_customer_id, 10), c.stripe_customer_id, c.customer_ref, true,
       (ARRAY['active','active','active','active','active','active','trialing','past_due','canceled','active'])[1 + (substr(c.stripe_customer_id, 10)::int % 10)],
       'eur', '[{"price_id":"price_pro","product_id":"prod_pro","quantity":1,"unit_amount":1000,"interval":"month","interval_count":1}]',
       now() - interval '1 day', now() + interval '29 days', now(), 0, 'evt_bench'
FROM customers c WHERE c.stripe_customer_id LIKE 'cus_bench%'`
	db := st.DB()
	if _, err := db.ExecContext(ctx, qc, n); err != nil {
		return fmt.Errorf("seed customers: %w", err)
	}
	if _, err := db.ExecContext(ctx, qs); err != nil {
		return fmt.Errorf("seed subscriptions: %w", err)
	}
	_, err := db.ExecContext(ctx, `ANALYZE customers; ANALYZE subscriptions`)
	return err
}

// serveLoopback runs h on a loopback listener.
func serveLoopback(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = hs.Close() }, nil
}

// latencies calls fn(i) for i in [0,n) from c workers and returns each
// call's latency and the wall time: runLoad's measurement, kept per call so
// that rounds can be pooled.
func latencies(ctx context.Context, c, n int, fn func(context.Context, int) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if err := fn(ctx, i); err != nil {
					firstErr.CompareAndSwap(nil, &err)
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if p := firstErr.Load(); p != nil {
		return nil, d, *p
	}
	return lat, d, nil
}
