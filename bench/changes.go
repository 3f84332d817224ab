package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/billingd/billingd/client"
)

// benchChanges measures the change feed and outbound app webhooks at c32
// ingest: billingd runs with APP_WEBHOOK_URL pointing at a receiver in this
// process, and every event (each entitles a new account) must come back
// as a signed entitlement.changed POST. changes_lag_*: from the webhook's
// 2xx (its commit) to the POST's arrival (goal: p99 ≤ 1000 ms);
// changes_ingest_bare2_ratio_c32: the ingest rate with the feed and the
// outbound webhooks running, over a bare two-statement transaction's on
// the same server (goal ≥ 0.40, as ingest_bare2_ratio_c32).
func benchChanges(ctx context.Context, c *config) error {
	const conc = 32
	const secret = appWebhookSecret
	n := c.ingestSize(conc)
	events := benchEvents("chg", n)
	dbURL, err := c.freshDB("bench_changes")
	if err != nil {
		return err
	}
	// The receiver: first arrival per account, every POST verified.
	var mu sync.Mutex
	got := make(map[string]time.Time, n)
	var bad int
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	recv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		body, _ := io.ReadAll(r.Body)
		ev, err := client.VerifyWebhook(body, r.Header.Get("Billingd-Signature"), secret, 0)
		mu.Lock()
		if err != nil {
			bad++
		} else if _, seen := got[ev.AccountID]; !seen {
			got[ev.AccountID] = at
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = recv.Serve(ln) }()
	defer recv.Close()

	addr := freeAddr()
	p, err := startProcess(ctx, []string{"DATABASE_URL=" + dbURL, "LISTEN_ADDR=" + addr,
		"STRIPE_WEBHOOK_SECRETS=" + benchSecret, "LOG_LEVEL=warn", "DB_MAX_CONNS=" + dbConns,
		"APP_WEBHOOK_URL=http://" + ln.Addr().String() + "/billingd", "APP_WEBHOOK_SECRET=" + secret}, c.bin, "serve")
	if err != nil {
		return err
	}
	defer p.stop()
	if err := waitHTTP("http://"+addr+"/readyz", p, 60*time.Second); err != nil {
		return err
	}
	if _, err := postEvents(ctx, conc, "http://"+addr+"/webhooks/stripe", sign(benchEvents("wchg", 200))); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	signed := sign(events)
	acked := make([]time.Time, n)
	hc := httpClient()
	url := "http://" + addr + "/webhooks/stripe"
	res, err := runLoad(ctx, conc, n, func(ctx context.Context, i int) error {
		if err := postOne(ctx, hc, url, signed[i]); err != nil {
			return err
		}
		acked[i] = time.Now()
		return nil
	})
	if err != nil {
		return err
	}
	// Wait for the tail of the webhooks (a bound, not a figure).
	accountOf := func(i int) string { return fmt.Sprintf("acct_chg%07d", i) }
	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		missing := 0
		for i := range n {
			if _, ok := got[accountOf(i)]; !ok {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d changes never reached the app", missing, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	lags := make([]time.Duration, n)
	for i := range n {
		lags[i] = max(got[accountOf(i)].Sub(acked[i]), 0)
	}
	badSigs := bad
	mu.Unlock()
	if badSigs > 0 {
		return fmt.Errorf("%d webhooks failed verification", badSigs)
	}
	slices.Sort(lags)
	p.stop()
	bare, err := c.bareTwoStatement(ctx, conc, n)
	if err != nil {
		return fmt.Errorf("bare two-statement baseline: %w", err)
	}
	c.print("changes_ingest_events_per_s_c32", "%.0f", res.rate())
	c.print("changes_ingest_bare2_ratio_c32", "%.2f (ingest with the change feed and app webhooks on; goal ≥ 0.40)", res.rate()/bare.rate())
	c.print("changes_lag_p50_ms", "%s", ms(lags[n/2]))
	c.print("changes_lag_p99_ms", "%s (webhook commit → app webhook received, at c32 ingest; goal ≤ 1000)", ms(lags[n*99/100]))
	c.print("changes_lag_max_ms", "%s", ms(lags[n-1]))
	return nil
}

// postOne sends one signed event and wants a 2xx.
func postOne(ctx context.Context, hc *http.Client, url string, ev signedEvent) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(ev.body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", ev.header)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e struct{ Error struct{ Code string } }
		_ = json.Unmarshal(body, &e)
		return fmt.Errorf("status %d %s", resp.StatusCode, e.Error.Code)
	}
	return nil
}

// appWebhookSecret signs the bench's outbound app webhooks.
const appWebhookSecret = "bench-app-webhook-secret-0123456789abcdef"

// ingestAppWebhooks (-app-webhooks) has the ingest stage run billingd with
// outbound app webhooks to startAppReceiver's endpoint.
var ingestAppWebhooks bool

// startAppReceiver serves an app webhook endpoint that answers 204 to
// everything (the ingest stage measures billingd, not verification).
func startAppReceiver() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/billingd", func() { srv.Close() }, nil
}
