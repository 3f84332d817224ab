// Package apibench measures the app API's hot path, GET
// /v1/accounts/{id}/entitlement, over loopback against two baselines in
// the same run: the same reads as bare SQL on the same PostgreSQL, and a
// bare net/http handler answering from an in-memory map (the ceiling for
// any HTTP answer on the machine). `go test -bench Entitlement
// ./internal/apibench` runs it; bench/ can call Entitlement directly.
package apibench

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

// Config sizes a run. Zero values take the figures.
type Config struct {
	// DatabaseURL is a migrated, empty database; Entitlement seeds it.
	DatabaseURL string
	Accounts    int // default 10,000
	Concurrency int // default 32
	Requests    int // per measured HTTP stage; default 120,000 (SQL: a quarter)
	Out         io.Writer
}

// Result is one stage's figures.
type Result struct {
	Name     string
	Requests int
	Elapsed  time.Duration
	P50, P99 time.Duration
}

// Rate is requests per second.
func (r Result) Rate() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

func (r Result) String() string {
	return fmt.Sprintf("%s: %.0f req/s, p50 %.3f ms, p99 %.3f ms (%d requests)", r.Name, r.Rate(),
		float64(r.P50.Microseconds())/1000, float64(r.P99.Microseconds())/1000, r.Requests)
}

// Entitlement seeds cfg.Accounts accounts, then measures billingd's
// entitlement endpoint (auth, routing, cache, ETag), bare SQL and a bare
// handler, prints each stage and the two ratios to cfg.Out, and returns the
// three results (billingd, sql, bare).
func Entitlement(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Accounts == 0 {
		cfg.Accounts = 10_000
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 32
	}
	if cfg.Requests == 0 {
		cfg.Requests = 120_000
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	log := slog.New(slog.DiscardHandler)
	st, err := postgres.Open(ctx, cfg.DatabaseURL, log, postgres.Options{MaxOpenConns: cfg.Concurrency})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := seed(ctx, st, cfg.Accounts); err != nil {
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
	cache := entcache.New(st, entcache.Options{Grace: 72 * time.Hour, Log: log})
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go cache.Run(lctx)
	for deadline := time.Now().Add(30 * time.Second); !cache.Fresh(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("entitlement cache listener did not come up")
		}
	}
	srv := &api.Server{Log: log, Tokens: cache, Entitlements: cache, Accounts: st}
	billingdURL, closeB, err := serve(srv.Handler())
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
	bareURL, closeBare, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		if _, _, err := load(ctx, cfg.Concurrency, min(s.n, 5_000), s.fn); err != nil {
			return nil, fmt.Errorf("%s warm-up: %w", s.name, err)
		}
	}
	for range rounds {
		for i, s := range stages {
			lat, d, err := load(ctx, cfg.Concurrency, s.n/rounds, s.fn)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			lats[i] = append(lats[i], lat...)
			elapsed[i] += d
		}
	}
	results := make([]Result, len(stages))
	for i, s := range stages {
		l := lats[i]
		sort.Slice(l, func(a, b int) bool { return l[a] < l[b] })
		results[i] = Result{Name: s.name, Requests: len(l), Elapsed: elapsed[i], P50: l[len(l)/2], P99: l[len(l)*99/100]}
		fmt.Fprintln(cfg.Out, results[i])
	}
	bare, bd, sq := results[0], results[1], results[2]
	fmt.Fprintf(cfg.Out, "billingd/bare_handler: rate %.2f, p99 %.2fx\n", bd.Rate()/bare.Rate(), float64(bd.P99)/float64(bare.P99))
	fmt.Fprintf(cfg.Out, "billingd/bare_sql: rate %.2f, p99 %.2fx\n", bd.Rate()/sq.Rate(), float64(bd.P99)/float64(sq.P99))
	return []Result{bd, sq, bare}, nil
}

// seed creates n accounts, each with one customer and one subscription:
// mostly active, some trialing, past_due and canceled.
func seed(ctx context.Context, st *postgres.Store, n int) error {
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

// serve runs h on a loopback listener.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = hs.Close() }, nil
}

// load calls fn(i) for i in [0,n) from c workers and returns each call's
// latency and the wall time.
func load(ctx context.Context, c, n int, fn func(context.Context, int) error) ([]time.Duration, time.Duration, error) {
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
