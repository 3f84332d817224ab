package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/profitwell/profitwelltest"
)

// lockedBuffer collects serve's logs while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeProfitWellWorker runs serve in-process: with a token its worker
// delivers a queued row and /metrics shows the outbox and send counters;
// without one the worker is off with one log line and rows wait.
func TestServeProfitWellWorker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		token     bool
		wantSent  bool
		wantInLog string
	}{
		{"OKWorkerDelivers", true, true, "profitwell worker started"},
		{"OffWithoutToken", false, false, "profitwell sync off: PROFITWELL_API_TOKEN is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := pgtest.URL(t)
			fake := profitwelltest.New(t)
			addr := freeAddr(t)
			env := map[string]string{"DATABASE_URL": url, "LISTEN_ADDR": addr, "PROFITWELL_API_BASE": fake.URL}
			if tt.token {
				env["PROFITWELL_API_TOKEN"] = profitwelltest.Token
				env["PROFITWELL_ALIAS_KEY"] = "serve-test-alias-key-01"
			}
			logs := &lockedBuffer{}
			sctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- run(sctx, []string{"serve"}, func(k string) string { return env[k] }, io.Discard, logs)
			}()
			defer func() {
				stop()
				if err := <-done; err != nil {
					t.Errorf("serve: %v", err)
				}
			}()
			get := func(path string) (int, string) {
				resp, err := http.Get("http://" + addr + path)
				if err != nil {
					return 0, ""
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			until := func(what string, ok func() bool) {
				t.Helper()
				for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(20 * time.Millisecond) {
					if ok() {
						return
					}
				}
				t.Fatalf("gave up waiting: %s\nlogs:\n%s", what, logs.String())
			}
			until("ready", func() bool { s, _ := get("/readyz"); return s == 200 })

			st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			tx, err := st.DB().BeginTxx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			p := billing.SyncPayload{CustomerRef: "3c0ffee0-0000-4000-8000-000000000001", SubscriptionRef: "3c0ffee0-0000-4000-8000-000000000002",
				PlanID: "price_serve", PlanInterval: "month", PlanCurrency: "usd", Status: "active", Value: 990, EffectiveDate: 1767225600}
			if _, err := postgres.EnqueueProfitWell(ctx, tx, billing.SyncCreate, p); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if tt.wantSent {
				until("the row reaches ProfitWell", func() bool { return len(fake.Subscriptions()) == 1 })
				until("the send is counted", func() bool {
					_, body := get("/metrics")
					return strings.Contains(body, `billingd_profitwell_sent_total{action="create"} 1`)
				})
			}
			_, body := get("/metrics")
			wantDepth := `billingd_outbox_depth{kind="profitwell",state="pending"} 1`
			if tt.wantSent {
				wantDepth = `billingd_outbox_depth{kind="profitwell",state="pending"} 0`
			}
			if !strings.Contains(body, wantDepth) {
				t.Errorf("/metrics lacks %s", wantDepth)
			}
			if !tt.wantSent && len(fake.Requests()) != 0 {
				t.Errorf("worker off, yet %d requests reached ProfitWell", len(fake.Requests()))
			}
			if !strings.Contains(logs.String(), tt.wantInLog) {
				t.Errorf("logs lack %q", tt.wantInLog)
			}
		})
	}
}
