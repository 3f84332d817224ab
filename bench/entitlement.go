package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/billingd/billingd/internal/postgres"
)

// benchEntitlement measures GET /v1/accounts/{id}/entitlement over loopback
// at concurrency 32 over 10k accounts, against (a) the same reads as bare
// SQL on the same PostgreSQL and (b) a bare net/http handler answering from
// an in-memory map: the ceiling for any HTTP answer on this machine; then
// the features case (benchFeatures).
func benchEntitlement(ctx context.Context, c *config) error {
	const accounts = 10_000
	requests := 100_000
	if c.short {
		requests = 30_000
	}
	dbURL, err := c.freshDB("bench_entitlement")
	if err != nil {
		return err
	}
	addr, pprofAddr := freeAddr(), freeAddr()
	env := []string{"DATABASE_URL=" + dbURL, "LISTEN_ADDR=" + addr, "PPROF_ADDR=" + pprofAddr, "STRIPE_WEBHOOK_SECRETS=" + benchSecret, "LOG_LEVEL=warn"}
	p, err := startProcess(ctx, env, c.bin, "serve")
	if err != nil {
		return err
	}
	defer p.stop()
	if err := waitHTTP("http://"+addr+"/readyz", p, 60*time.Second); err != nil {
		return err
	}
	// Seed through the real path: each event links acct_ent<i> by metadata.
	if _, err := postEvents(ctx, 32, "http://"+addr+"/webhooks/stripe", sign(benchEvents("ent", accounts))); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	// The seed's revenue facts are derived once its burst is over: measure
	// the entitlement path after that, not beside it.
	if _, left, err := waitFactsSettled(ctx, dbURL); err != nil || left > 0 {
		return fmt.Errorf("revenue facts of the seed not derived (%d left): %v", left, err)
	}
	// Fresh statistics before any query: the seed now takes about two
	// seconds, less than autovacuum's minute, and the bare-SQL comparison
	// planned against the empty tables' statistics scanned them whole.
	if err := analyze(ctx, dbURL); err != nil {
		return err
	}
	tokCmd := exec.CommandContext(ctx, c.bin, "token", "create", "--scope", "app", "--name", "bench")
	tokCmd.Env = append(os.Environ(), env...)
	tok, err := tokCmd.Output()
	if err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	token := strings.TrimSpace(strings.SplitN(string(tok), "\n", 2)[0])
	paths := make([]string, accounts)
	for i := range paths {
		paths[i] = fmt.Sprintf("/v1/accounts/acct_ent%07d/entitlement", i)
	}
	client := httpClient()
	get := func(base string) func(context.Context, int) error {
		return func(ctx context.Context, i int) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+paths[i%accounts], nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
			}
			if i < accounts && !strings.Contains(string(body), `"entitled":true`) {
				return fmt.Errorf("account %d not entitled: %s", i, body)
			}
			return nil
		}
	}
	// One pass to warm the cache (and check every account is entitled).
	if _, err := runLoad(ctx, 32, accounts, get("http://"+addr)); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	// The profile says where a request's time goes (kept in bench/out).
	profile := make(chan string, 1)
	go func() { profile <- c.cpuProfileNamed(pprofAddr, 2, "billingd_entitlement") }()
	svc, err := runLoad(ctx, 32, requests, get("http://"+addr))
	if err != nil {
		return err
	}
	defer c.print("pprof_entitlement_top", "\n%s", <-profile)

	st, err := postgres.Open(ctx, dbURL, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 32})
	if err != nil {
		return err
	}
	defer st.Close()
	sqlRes, err := runLoad(ctx, 32, requests, func(ctx context.Context, i int) error {
		subs, err := st.AccountSubscriptions(ctx, fmt.Sprintf("acct_ent%07d", i%accounts), true)
		if err == nil && len(subs) == 0 {
			err = fmt.Errorf("no subscriptions for account %d", i%accounts)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("bare sql: %w", err)
	}

	bare, err := bareHandler(paths)
	if err != nil {
		return err
	}
	defer bare.Close()
	bareRes, err := runLoad(ctx, 32, requests, get("http://"+bare.Addr))
	if err != nil {
		return fmt.Errorf("bare handler: %w", err)
	}

	c.print("entitlement_rps_c32", "%.0f", svc.rate())
	c.print("entitlement_p50_ms_c32", "%s", ms(svc.p50))
	c.print("entitlement_p99_ms_c32", "%s", ms(svc.p99))
	c.print("entitlement_sql_rps_c32", "%.0f", sqlRes.rate())
	c.print("entitlement_sql_p99_ms_c32", "%s", ms(sqlRes.p99))
	c.print("entitlement_bare_rps_c32", "%.0f", bareRes.rate())
	c.print("entitlement_bare_p99_ms_c32", "%s", ms(bareRes.p99))
	c.print("entitlement_ratio_c32", "%.2f", svc.rate()/bareRes.rate())
	c.print("entitlement_sql_ratio_c32", "%.2f", svc.rate()/sqlRes.rate())
	c.print("entitlement_p99_ratio_c32", "%.2f", float64(svc.p99)/float64(bareRes.p99))
	// Issue 18: the same server with a catalog, add-ons and overrides.
	return benchFeatures(ctx, c, "http://"+addr, dbURL, token, accounts, requests)
}

type bareServer struct {
	Addr string
	srv  *http.Server
}

func (b *bareServer) Close() { _ = b.srv.Close() }

// bareHandler answers entitlement-shaped JSON from a map with no auth,
// routing or database: what any Go HTTP answer costs here.
func bareHandler(paths []string) (*bareServer, error) {
	answers := make(map[string][]byte, len(paths))
	for _, p := range paths {
		answers[p], _ = json.Marshal(map[string]any{"entitled": true, "status": "active", "plan": "price_seat", "valid_until": "2026-12-01T00:00:00Z", "livemode": true})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := answers[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})}
	go func() { _ = srv.Serve(ln) }()
	return &bareServer{Addr: ln.Addr().String(), srv: srv}, nil
}

// analyze refreshes the planner statistics of the database at dbURL.
func analyze(ctx context.Context, dbURL string) error {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return nil
}
