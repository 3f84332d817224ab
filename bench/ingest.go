package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgserver"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/webhooks"
	"github.com/stripe/stripe-go/v76/webhook"
)

// dbConns is billingd's pool size in the ingest runs (DB_MAX_CONNS): on
// two cores a small pool beats one backend per client (less contention).
var dbConns = "16"

const benchSecret = "whsec_bench_0123456789abcdef0123456789"

func httpClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}
}

type signedEvent struct {
	body   []byte
	header string
}

func sign(events [][]byte) []signedEvent {
	out := make([]signedEvent, len(events))
	now := time.Now()
	for i, b := range events {
		sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: b, Secret: benchSecret, Timestamp: now})
		out[i] = signedEvent{body: b, header: sp.Header}
	}
	return out
}

func postEvents(ctx context.Context, c int, url string, evs []signedEvent) (loadResult, error) {
	client := httpClient()
	return runLoad(ctx, c, len(evs), func(ctx context.Context, i int) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(evs[i].body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", evs[i].header)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
		}
		return nil
	})
}

func (c *config) ingestSize(conc int) int {
	sizes := map[int]int{1: 1000, 8: 8000, 32: 20000}
	if c.short {
		sizes = map[int]int{1: 300, 8: 2000, 32: 4000}
	}
	if n, ok := sizes[conc]; ok {
		return n
	}
	return min(20000, conc*625)
}

// benchIngest measures signed events through billingd's HTTP endpoint, the
// same writes applied directly through the store (the baseline: no HTTP,
// no signature, no JSON), and the peer on the same events, per concurrency.
func benchIngest(ctx context.Context, c *config) error {
	for _, conc := range c.conc {
		n := c.ingestSize(conc)
		tag := fmt.Sprintf("c%d", conc)
		events := benchEvents(tag, n)

		dbURL, err := c.freshDB("bench_ingest_" + tag)
		if err != nil {
			return err
		}
		addr, pprofAddr := freeAddr(), freeAddr()
		env := []string{"DATABASE_URL=" + dbURL, "LISTEN_ADDR=" + addr, "PPROF_ADDR=" + pprofAddr,
			"STRIPE_WEBHOOK_SECRETS=" + benchSecret, "LOG_LEVEL=warn", "DB_MAX_CONNS=" + dbConns}
		if ingestAppWebhooks {
			url, stop, err := startAppReceiver()
			if err != nil {
				return err
			}
			defer stop()
			env = append(env, "APP_WEBHOOK_URL="+url, "APP_WEBHOOK_SECRET="+appWebhookSecret)
		}
		p, err := startProcess(ctx, env, c.bin, "serve")
		if err != nil {
			return err
		}
		if err := waitHTTP("http://"+addr+"/readyz", p, 60*time.Second); err != nil {
			p.stop()
			return err
		}
		warm := sign(benchEvents("w"+tag, 200))
		if _, err := postEvents(ctx, conc, "http://"+addr+"/webhooks/stripe", warm); err != nil {
			p.stop()
			return fmt.Errorf("warm-up: %w", err)
		}
		if conc == 32 {
			c.statementStats(ctx, dbURL, "c32", true)
		}
		var maxRSS float64
		stopSampling := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if r := rssMiB(p.cmd.Process.Pid); r > maxRSS {
					maxRSS = r
				}
				select {
				case <-stopSampling:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		var profile chan string
		if conc == 32 {
			profile = make(chan string, 1)
			go func() { profile <- c.cpuProfile(pprofAddr, 4) }()
		}
		res, err := postEvents(ctx, conc, "http://"+addr+"/webhooks/stripe", sign(events))
		if profile != nil {
			top := <-profile
			defer c.print("pprof_c32_top", "\n%s", top)
		}
		close(stopSampling)
		wg.Wait()
		if conc == 32 && err == nil {
			c.factsSettle(ctx, dbURL, len(events))
		}
		p.stop()
		if err != nil {
			return err
		}
		if conc == 32 {
			defer c.statementStats(ctx, dbURL, "c32", false)
		}
		if conc == 32 {
			c.capacity = res.rate()
		}
		c.print(fmt.Sprintf("ingest_events_per_s_c%d", conc), "%.0f", res.rate())
		c.print(fmt.Sprintf("ingest_p50_ms_c%d", conc), "%s", ms(res.p50))
		c.print(fmt.Sprintf("ingest_p99_ms_c%d", conc), "%s", ms(res.p99))

		base, err := c.baseline(ctx, conc, tag, events)
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		c.print(fmt.Sprintf("ingest_baseline_per_s_c%d", conc), "%.0f", base.rate())
		c.print(fmt.Sprintf("ingest_ratio_c%d", conc), "%.2f", res.rate()/base.rate())

		if conc == 32 {
			// The yardstick, same server, same run: the ingest goal of
			// 5,000 events/s is about 0.34 of a bare two-statement
			// transaction's rate (14,600/s on the reference machines).
			bare, err := c.bareTwoStatement(ctx, conc, n)
			if err != nil {
				return fmt.Errorf("bare two-statement baseline: %w", err)
			}
			c.print("bare2_tx_per_s_c32", "%.0f", bare.rate())
			c.print("ingest_bare2_ratio_c32", "%.2f", res.rate()/bare.rate())
			c.print("ingest_per_s_c32_at_reference_speed", "%.0f (events/s × 14,600 / bare2_tx_per_s_c32)", res.rate()*14600/bare.rate())
			c.print("rss_mib", "%.1f", maxRSS)
			// The same events through PgBouncer in transaction mode, the
			// pooling of managed PostgreSQL: what the pooler costs.
			pgb, err := c.ingestPgBouncer(ctx, conc, tag, events)
			if err != nil {
				return fmt.Errorf("pgbouncer: %w", err)
			}
			c.print("ingest_pgbouncer_events_per_s_c32", "%.0f", pgb.rate())
			c.print("ingest_pgbouncer_p99_ms_c32", "%s", ms(pgb.p99))
			c.print("ingest_pgbouncer_ratio_c32", "%.2f (through PgBouncer ÷ direct)", pgb.rate()/res.rate())
			if c.skip["peer"] {
				c.print("peer_ratio_c32", "skipped (-skip peer)")
				continue
			}
			peer, reason, err := c.peer(ctx, events)
			switch {
			case err != nil:
				// The peer falling over (connection resets under a loaded
				// machine) is a result about the peer, not a reason to
				// lose the stages after this one.
				c.print("peer_ratio_c32", "failed (%v)", err)
			case reason != "":
				c.print("peer_ratio_c32", "skipped (%s)", reason)
			default:
				c.print("peer_events_per_s_c32", "%.0f", peer.rate())
				c.print("peer_p99_ms_c32", "%s", ms(peer.p99))
				c.print("peer_ratio_c32", "%.2f", res.rate()/peer.rate())
			}
		}
	}
	return nil
}

// baseline applies the same events through the store directly: the SQL
// billingd issues per event, at the same concurrency, without HTTP,
// signature verification or JSON decoding (decoded before the clock starts).
func (c *config) baseline(ctx context.Context, conc int, tag string, events [][]byte) (loadResult, error) {
	dbURL, err := c.freshDB("bench_base_" + tag)
	if err != nil {
		return loadResult{}, err
	}
	st, err := postgres.Open(ctx, dbURL, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: atoi(dbConns)})
	if err != nil {
		return loadResult{}, err
	}
	defer st.Close()
	if err := st.MigrateUp(); err != nil {
		return loadResult{}, err
	}
	decoded := make([]billing.Event, len(events))
	for i, b := range events {
		if decoded[i], err = webhooks.DecodeEvent(b, webhooks.DecodeOptions{}); err != nil {
			return loadResult{}, err
		}
	}
	warm := benchEvents("bw"+tag, 200)
	for _, b := range warm {
		ev, _ := webhooks.DecodeEvent(b, webhooks.DecodeOptions{})
		if _, err := st.ApplyEvent(ctx, ev); err != nil {
			return loadResult{}, err
		}
	}
	return runLoad(ctx, conc, len(decoded), func(ctx context.Context, i int) error {
		_, err := st.ApplyEvent(ctx, decoded[i])
		return err
	})
}

// peer runs @supabase/stripe-sync-engine 0.48.5 behind bench/peer/server.cjs
// on its own database of the same server and sends it the same events at
// concurrency 32. A non-empty reason means it could not be installed.
func (c *config) peer(ctx context.Context, events [][]byte) (loadResult, string, error) {
	dir := filepath.Join(repoRoot(), "bench", ".peer")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@supabase", "stripe-sync-engine")); err != nil {
		if _, err := exec.LookPath("npm"); err != nil {
			return loadResult{}, "npm not found", nil
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return loadResult{}, "", err
		}
		cmd := exec.CommandContext(ctx, "npm", "install", "--prefix", dir, "--no-audit", "--no-fund", "@supabase/stripe-sync-engine@0.48.5")
		if out, err := cmd.CombinedOutput(); err != nil {
			return loadResult{}, fmt.Sprintf("npm install failed: %.200s", out), nil
		}
	}
	dbURL, err := c.freshDB("bench_peer")
	if err != nil {
		return loadResult{}, "", err
	}
	st, err := postgres.Open(ctx, dbURL, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 1})
	if err != nil {
		return loadResult{}, "", err
	}
	_, err = st.DB().ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS stripe`)
	st.Close()
	if err != nil {
		return loadResult{}, "", err
	}
	addr := freeAddr()
	_, port, _ := net.SplitHostPort(addr)
	p, err := startProcess(ctx, []string{"NODE_PATH=" + filepath.Join(dir, "node_modules")}, "node",
		filepath.Join(repoRoot(), "bench", "peer", "server.cjs"), dbURL, benchSecret, port)
	if err != nil {
		return loadResult{}, "", err
	}
	defer p.stop()
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) || p.cmd.ProcessState != nil {
			return loadResult{}, "", fmt.Errorf("peer not listening: %s", p.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	url := "http://" + addr + "/"
	if _, err := postEvents(ctx, 32, url, sign(benchEvents("pw", 200))); err != nil {
		return loadResult{}, "", fmt.Errorf("peer warm-up: %w (%s)", err, p.stderr.String())
	}
	res, err := postEvents(ctx, 32, url, sign(events))
	return res, "", err
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

// ingestPgBouncer runs the ingest load at conc through PgBouncer 1.18 in
// transaction mode in front of the same server (a pool of 20 server
// connections), with the session pool direct, as a managed deploy would.
func (c *config) ingestPgBouncer(ctx context.Context, conc int, tag string, events [][]byte) (loadResult, error) {
	dbURL, err := c.freshDB("bench_ingest_pgb_" + tag)
	if err != nil {
		return loadResult{}, err
	}
	// Not under workDir (0700): pgbouncer runs as postgres when we are root.
	b, err := pgserver.StartPgBouncer(ctx, c.adminDB, os.TempDir(), 20)
	if err != nil {
		return loadResult{}, err
	}
	defer b.Stop()
	addr := freeAddr()
	p, err := startProcess(ctx, []string{"DATABASE_URL=" + b.URL(dbURL), "DATABASE_SESSION_URL=" + dbURL, "LISTEN_ADDR=" + addr,
		"STRIPE_WEBHOOK_SECRETS=" + benchSecret, "LOG_LEVEL=warn", "DB_MAX_CONNS=" + dbConns,
		// Named statements outlive their transaction behind the pooler,
		// whatever the direct run was told.
		"DB_PREPARED_STATEMENTS=false"}, c.bin, "serve")
	if err != nil {
		return loadResult{}, err
	}
	defer p.stop()
	if err := waitHTTP("http://"+addr+"/readyz", p, 60*time.Second); err != nil {
		return loadResult{}, err
	}
	if _, err := postEvents(ctx, conc, "http://"+addr+"/webhooks/stripe", sign(benchEvents("wp"+tag, 200))); err != nil {
		return loadResult{}, fmt.Errorf("warm-up: %w", err)
	}
	return postEvents(ctx, conc, "http://"+addr+"/webhooks/stripe", sign(events))
}

// factsSettle prints how long the revenue facts (segments, cohorts,
// trials) took to catch up after the burst: the deriver yields to the
// event path while webhooks arrive, so their cost shows here, not in the
// events/s above.
func (c *config) factsSettle(ctx context.Context, dbURL string, events int) {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return
	}
	defer db.Close()
	t0 := time.Now()
	var queued, atEnd int
	for first := true; ; first = false {
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM revenue_facts_pending`).Scan(&queued); err != nil {
			c.print("ingest_facts_settle_s_c32", "unknown (%v)", err)
			return
		}
		if first {
			atEnd = queued
		}
		if queued == 0 || time.Since(t0) > 5*time.Minute {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if queued > 0 {
		c.print("ingest_facts_settle_s_c32", "> 300 (%d customers still queued)", queued)
		return
	}
	d := time.Since(t0)
	c.print("ingest_facts_settle_s_c32", "%.2f (segment, cohort and trial facts derived after the burst of %d events: %d derivations queued at its end)",
		d.Seconds(), events, atEnd)
}
