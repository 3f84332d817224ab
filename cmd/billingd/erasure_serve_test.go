package main

import (
	"context"
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
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// TestServeErasure runs the real binary: DELETE /v1/accounts/{id} erases
// the account, and serve's Stripe job worker (on because STRIPE_API_KEY is
// set, pointed at a fake through STRIPE_API_BASE) deletes the customer in
// Stripe after commit; without STRIPE_API_KEY the job waits and serve says
// so.
func TestServeErasure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		stripeKey bool
	}{
		{"WorkerDeletesCustomer", true},
		{"NoStripeKeyJobsWait", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := pgtest.URL(t)
			st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			tok, hash, err := billing.NewToken(billing.ScopeApp)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.TokenCreate(ctx, "app-backend", billing.ScopeApp, hash); err != nil {
				t.Fatal(err)
			}
			if _, err := st.ApplyEvent(ctx, billing.Event{ID: "evt_srv1", Type: "customer.created", Created: time.Now(), Livemode: true,
				Customer: &billing.Customer{ID: "cus_Serve1", Livemode: true, AccountHint: "acct_serve"}}); err != nil {
				t.Fatal(err)
			}

			var mu sync.Mutex
			var calls []string
			fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				calls = append(calls, r.Method+" "+r.URL.Path)
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"id":"cus_Serve1","object":"customer","deleted":true}`)
			}))
			defer fake.Close()

			addr := freeAddr(t)
			env := []string{"DATABASE_URL=" + url, "LISTEN_ADDR=" + addr, "STRIPE_API_BASE=" + fake.URL}
			if tt.stripeKey {
				env = append(env, "STRIPE_API_KEY=sk_test_serve")
			}
			p := startBillingd(t, env, "serve")
			waitReady(t, p, addr, 60*time.Second)

			req, _ := http.NewRequest(http.MethodDelete, "http://"+addr+"/v1/accounts/acct_serve?delete_customer=true", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("DELETE answered %d, want 204", resp.StatusCode)
			}
			var linked int
			if err := st.DB().Get(&linked, `SELECT count(*) FROM customers WHERE account_id = 'acct_serve'`); err != nil || linked != 0 {
				t.Fatalf("%d customers still linked (err %v)", linked, err)
			}

			if !tt.stripeKey {
				waitMetric(t, addr, "billingd_stripe_jobs{state=\"pending\"} 1")
				if !strings.Contains(p.stderr.String(), "stripe jobs wait") {
					t.Errorf("serve did not say Stripe jobs wait without STRIPE_API_KEY:\n%s", p.stderr.String())
				}
				rows, err := st.OutboxRows(ctx, billing.OutboxStripe, "pending")
				if err != nil || len(rows) != 1 {
					t.Fatalf("pending stripe jobs = %d (err %v), want the one waiting", len(rows), err)
				}
				return
			}
			// The worker polls every few seconds: wait for the job to finish.
			deadline := time.Now().Add(60 * time.Second)
			for {
				rows, err := st.OutboxRows(ctx, billing.OutboxStripe, "sent")
				if err != nil {
					t.Fatal(err)
				}
				if len(rows) == 1 {
					if strings.Contains(string(rows[0].Payload), "cus_") {
						t.Errorf("completed job still holds the customer ID: %s", rows[0].Payload)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("stripe job not done within 60s\nstderr:\n%s", p.stderr.String())
				}
				time.Sleep(100 * time.Millisecond)
			}
			waitMetric(t, addr, `billingd_stripe_jobs{state="pending"} 0`)
			mu.Lock()
			defer mu.Unlock()
			if len(calls) != 1 || calls[0] != "DELETE /v1/customers/cus_Serve1" {
				t.Errorf("Stripe calls = %v, want one DELETE /v1/customers/cus_Serve1", calls)
			}
		})
	}
}

// waitMetric polls /metrics until it shows line.
func waitMetric(t *testing.T, addr, line string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), line) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %s", line)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
