package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/client"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// TestChangeFeedServe: a real serve with APP_WEBHOOK_URL set turns signed
// Stripe events into signed entitlement.changed webhooks to the app and
// GET /v1/changes entries, one per account whose answer changed.
func TestChangeFeedServe(t *testing.T) {
	t.Parallel()
	const secret = "serve-test-app-webhook-secret-0123456789"
	var mu sync.Mutex
	got := map[string]client.WebhookEvent{}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := client.VerifyWebhook(body, r.Header.Get("Billingd-Signature"), secret, 0)
		if err != nil {
			t.Errorf("webhook does not verify: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got[ev.AccountID] = *ev
		mu.Unlock()
	}))
	defer app.Close()
	url := pgtest.URL(t)
	addr := freeAddr(t)
	p := startBillingd(t, []string{"DATABASE_URL=" + url, "LISTEN_ADDR=" + addr, "STRIPE_WEBHOOK_SECRETS=" + webhookstest.Secret,
		"APP_WEBHOOK_URL=" + app.URL + "/billingd/", "APP_WEBHOOK_SECRET=" + secret, "LOG_LEVEL=warn"})
	waitReady(t, p, addr, 60*time.Second)

	created := time.Now().Add(-time.Hour).Unix()
	for i := range 3 {
		ev := fmt.Sprintf(`{"id":"evt_serve%d","object":"event","api_version":"2023-10-16","created":%d,"livemode":true,
"type":"customer.subscription.created","data":{"object":{"id":"sub_serve%d","object":"subscription","customer":"cus_serve%d",
"status":"active","livemode":true,"currency":"usd","created":%d,"current_period_start":%d,"current_period_end":%d,
"cancel_at_period_end":false,"metadata":{"account_id":"acct_serve%d","note":"Jane Q. Piiperson"},
"items":{"object":"list","data":[{"id":"si_serve%d","object":"subscription_item","quantity":1,
"price":{"id":"price_serve","object":"price","product":"prod_serve","currency":"usd","unit_amount":900,"type":"recurring",
"recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"}}}]}}}}`, i, created, i, i, created, created, created+30*86400, i, i)
		r := webhookstest.Post(t, "http://"+addr, webhookstest.Secret, []byte(ev))
		if r.Status != http.StatusOK {
			t.Fatalf("event %d: %d %s", i, r.Status, r.Body)
		}
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 webhooks arrived\nstderr:\n%s", n, p.stderr.String())
		}
	}
	st, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tok, hash, err := billing.NewToken(billing.ScopeApp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TokenCreate(context.Background(), "backend", billing.ScopeApp, hash); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/changes", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var feed struct {
		Changes []struct {
			Cursor    string `json:"cursor"`
			AccountID string `json:"account_id"`
		} `json:"changes"`
	}
	if err := json.Unmarshal(raw, &feed); err != nil || resp.StatusCode != http.StatusOK || len(feed.Changes) != 3 {
		t.Fatalf("GET /v1/changes: %d %s", resp.StatusCode, raw)
	}
	mu.Lock()
	defer mu.Unlock()
	for acct, ev := range got {
		e := ev.Entitlement
		if ev.Type != "entitlement.changed" || !strings.HasPrefix(ev.ID, "chg_") || !e.Entitled || e.Status != "active" ||
			e.Plan == nil || *e.Plan != "price_serve" || e.ValidUntil == nil || !e.ValidUntil.Equal(time.Unix(created+30*86400, 0)) || !e.Livemode {
			t.Errorf("%s: %+v", acct, ev)
		}
		if strings.Contains(string(raw), "Piiperson") {
			t.Errorf("personal data in the feed: %s", raw)
		}
	}
}

// TestAppWebhooksCommands: `app-webhooks status` shows the queue, failing
// and dead webhooks (never a payload), `app-webhooks retry` re-queues dead
// ones.
func TestAppWebhooksCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	st, err := postgres.Open(ctx, dbURL, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	start := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	for i := range 2 {
		ev := billing.Event{ID: fmt.Sprintf("evt_cmd%d", i), Type: "customer.subscription.created", Livemode: true,
			Created: time.Now().Add(-time.Hour).Truncate(time.Second),
			Subscription: &billing.Subscription{ID: fmt.Sprintf("sub_cmd%d", i), CustomerID: fmt.Sprintf("cus_cmd%d", i), Livemode: true,
				Status: billing.StatusActive, Currency: "usd", AccountHint: fmt.Sprintf("acct_cmd%d", i), CurrentPeriodStart: &start,
				Items: []billing.Item{{PriceID: "price_cmd", Quantity: 1, UnitAmount: 900, Interval: billing.IntervalMonth, IntervalCount: 1}}}}
		if _, err := st.ApplyEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.ProduceChanges(ctx, postgres.ChangeProducer{Render: renderAnswer, Grace: time.Hour, Outbound: true}); err != nil {
		t.Fatal(err)
	}
	jobs, err := st.AppWebhookClaim(ctx, 10, time.Minute)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("claim: %d, %v", len(jobs), err)
	}
	if _, err := st.AppWebhookAck(ctx, []billing.OutboxAck{
		{ID: jobs[0].ID, Attempt: jobs[0].Attempts, Outcome: billing.AckDead, Status: 500, Error: "app answered 500"},
		{ID: jobs[1].ID, Attempt: jobs[1].Attempts, Outcome: billing.AckRetry, Delay: time.Hour, Error: "connection failed"},
	}); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string { return map[string]string{"DATABASE_URL": dbURL, "LOG_LEVEL": "error"}[k] }
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, getenv, &out, &bytes.Buffer{})
		return out.String(), err
	}
	out, err := cli("app-webhooks", "status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"change feed: last cursor 2", "pending: 1 (oldest", "dead: 1", "connection failed", "app answered 500",
		fmt.Sprintf("\n%d ", jobs[0].ID), "billingd app-webhooks retry --all"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "acct_cmd") {
		t.Errorf("status shows an account ID:\n%s", out)
	}
	if _, err := cli("app-webhooks", "retry", "999999"); err == nil || !strings.Contains(err.Error(), "no dead app webhook with ID 999999") {
		t.Errorf("retry of an unknown ID: %v", err)
	}
	out, err = cli("app-webhooks", "retry", "--all")
	if err != nil || !strings.Contains(out, "re-queued 1 dead app webhook(s)") || !strings.Contains(out, "APP_WEBHOOK_URL is not set") {
		t.Fatalf("retry: %v\n%s", err, out)
	}
	out, err = cli("app-webhooks", "status")
	if err != nil || !strings.Contains(out, "dead: 0") || !strings.Contains(out, "pending: 2") {
		t.Errorf("status after retry: %v\n%s", err, out)
	}
}
