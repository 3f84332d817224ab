package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

func scrape(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /metrics exposes the families the README's alerts use, after real
// traffic, with bounded labels and no personal data or IDs.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	const secret = "whsec_metrics_test_0123456789"
	url := pgtest.URL(t)

	t.Run("OnListenAddr", func(t *testing.T) {
		addr := freeAddr(t)
		p := startBillingd(t, []string{"DATABASE_URL=" + url, "LISTEN_ADDR=" + addr, "STRIPE_WEBHOOK_SECRETS=" + secret, "LOG_LEVEL=warn"})
		waitReady(t, p, addr, 60*time.Second)
		webhookstest.ReplayFixtures(t, "http://"+addr, secret)
		webhookstest.Post(t, "http://"+addr, "whsec_wrong_secret_000000", []byte(`{"id":"evt_x"}`))
		code, body := scrape(t, "http://"+addr+"/metrics", "")
		if code != http.StatusOK {
			t.Fatalf("GET /metrics: %d", code)
		}
		for _, family := range []string{
			"billingd_http_requests_total", "billingd_http_request_duration_seconds_bucket",
			"billingd_webhook_events_total", "billingd_webhook_signature_failures_total",
			"go_sql_open_connections", "go_sql_wait_count_total",
			"billingd_outbox_depth", "billingd_outbox_oldest_pending_age_seconds",
			"billingd_cache_hits_total", "billingd_cache_listener_up",
			"process_resident_memory_bytes",
			"billingd_event_batch_size_bucket", "billingd_event_batch_duration_seconds_bucket",
			"billingd_event_batch_failures_total", "billingd_build_info", "billingd_event_queue_length",
			"billingd_webhook_bodies_reading", "billingd_http_connections",
		} {
			if !strings.Contains(body, "\n"+family) {
				t.Errorf("family %s missing", family)
			}
		}
		if !regexp.MustCompile(`\nbillingd_event_batch_size_count [1-9]`).MatchString(body) {
			t.Errorf("no event batch observed")
		}
		if !regexp.MustCompile(`billingd_webhook_events_total\{[^}]*outcome="applied"`).MatchString(body) {
			t.Errorf("no applied webhook events counted")
		}
		if ids := regexp.MustCompile(`(cus_|sub_|acct_|evt_)[A-Za-z0-9]+`).FindAllString(body, 5); len(ids) > 0 {
			t.Errorf("IDs in metric labels: %v", ids)
		}
		if leaked := webhookstest.FindPII(t, body); len(leaked) > 0 {
			t.Errorf("personal data in metrics: %v", leaked)
		}
	})

	t.Run("OwnListenerWithToken", func(t *testing.T) {
		addr, maddr := freeAddr(t), freeAddr(t)
		p := startBillingd(t, []string{"DATABASE_URL=" + url, "LISTEN_ADDR=" + addr, "METRICS_ADDR=" + maddr,
			"METRICS_TOKEN=metrics-secret-token", "LOG_LEVEL=warn"})
		waitReady(t, p, addr, 60*time.Second)
		if code, _ := scrape(t, "http://"+addr+"/metrics", "metrics-secret-token"); code != http.StatusNotFound {
			t.Errorf("/metrics on LISTEN_ADDR with METRICS_ADDR set: %d, want 404", code)
		}
		if code, _ := scrape(t, "http://"+maddr+"/metrics", ""); code != http.StatusUnauthorized {
			t.Errorf("no token: %d, want 401", code)
		}
		if code, _ := scrape(t, "http://"+maddr+"/metrics", "wrong"); code != http.StatusUnauthorized {
			t.Errorf("wrong token: %d, want 401", code)
		}
		if code, _ := scrape(t, "http://"+maddr+"/readyz", ""); code != http.StatusNotFound {
			t.Errorf("/readyz on the metrics listener: %d, want 404 (it serves /metrics only)", code)
		}
		if code, body := scrape(t, "http://"+maddr+"/metrics", "metrics-secret-token"); code != http.StatusOK || !strings.Contains(body, "billingd_http_requests_total") {
			t.Errorf("right token: %d", code)
		}
	})
}
