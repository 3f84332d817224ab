package webhooks_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// BenchmarkIngest sends signed customer.subscription.created events, each
// for a distinct customer (so it measures throughput, not one customer's
// lock), through the real router and handler on a loopback HTTP server into
// PostgreSQL, at concurrency 1, 8 and 32, and prints events/s and p50/p99
// latency. Not run in CI; e.g.
//
//	go test ./webhooks -run '^$' -bench Ingest -benchtime 6000x
func BenchmarkIngest(b *testing.B) {
	tmpl := webhookstest.FixtureNamed(b, "v2023_03_customer.subscription.created").Payload
	for _, c := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) {
			st, err := postgres.Open(context.Background(), pgtest.URL(b), slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: benchConns()})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			h, err := webhooks.NewHandler(webhooks.Config{Secrets: []string{webhookstest.Secret}, Store: st,
				Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer((&api.Server{Log: slog.New(slog.DiscardHandler), Webhooks: h}).Handler())
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * c, MaxIdleConnsPerHost: 2 * c}}

			type req struct {
				body []byte
				sig  string
			}
			reqs := make([]req, b.N)
			for i := range reqs {
				k := fmt.Sprintf("B%dn%d", c, i)
				p := webhookstest.Rewrite(tmpl, "sub_PiiLife1", "sub_"+k, "cus_PiiLife1", "cus_"+k,
					"evt_1PiiSubCreated", "evt_"+k, `"acct_life_1"`, `"acct_`+k+`"`)
				reqs[i] = req{p, webhookstest.Sign(webhookstest.Secret, p)}
			}
			// One event first: it creates the instance's erasure key, which
			// serve prepares at start but a fresh test database lacks.
			if r := webhookstest.Post(b, srv.URL, webhookstest.Secret, webhookstest.FixtureNamed(b, "v2023_01_customer.created").Payload); r.Status != http.StatusOK {
				b.Fatalf("warm-up: %d %s", r.Status, r.Body)
			}
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			var failed atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range c {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= len(reqs) {
							return
						}
						r, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/stripe", bytes.NewReader(reqs[i].body))
						r.Header.Set("Content-Type", "application/json")
						r.Header.Set("Stripe-Signature", reqs[i].sig)
						t0 := time.Now()
						resp, err := client.Do(r)
						if err != nil {
							failed.Add(1)
							continue
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						lat[i] = time.Since(t0)
						if resp.StatusCode != http.StatusOK {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d requests failed", n, b.N)
			}
			slices.Sort(lat)
			p50, p99 := lat[len(lat)*50/100], lat[min(len(lat)*99/100, len(lat)-1)]
			rate := float64(b.N) / elapsed.Seconds()
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(float64(p50.Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
			fmt.Printf("ingest c=%d: %d events in %v: %.0f events/s, p50 %v, p99 %v\n", c, b.N, elapsed.Round(time.Millisecond), rate, p50, p99)
		})
	}
}

// benchConns is the pool size (BENCH_DB_CONNS, default 32 like
// DB_MAX_CONNS): on few cores a smaller pool can beat more concurrency.
func benchConns() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_DB_CONNS")); err == nil && n > 0 {
		return n
	}
	return 32
}
