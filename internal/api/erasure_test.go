package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

func newToken(t *testing.T, st *postgres.Store, name string, scope billing.Scope) string {
	t.Helper()
	tok, hash, err := billing.NewToken(scope)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TokenCreate(context.Background(), name, scope, hash); err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAccountErase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	appTok := newToken(t, st, "app-backend", billing.ScopeApp)
	finTok := newToken(t, st, "finance", billing.ScopeFinance)
	var logs syncLog
	srv := httptest.NewServer((&api.Server{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Tokens: st, Eraser: st}).Handler())
	t.Cleanup(srv.Close)

	at := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	for _, ev := range []billing.Event{
		{ID: "evt_c1", Type: "customer.created", Created: at, Livemode: true,
			Customer: &billing.Customer{ID: "cus_API1", Livemode: true, AccountHint: "acct_api"}},
		{ID: "evt_c2", Type: "customer.created", Created: at, Livemode: true,
			Customer: &billing.Customer{ID: "cus_API2", Livemode: true, AccountHint: "acct_flags"}},
	} {
		if _, err := st.ApplyEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name     string
		path     string
		token    string
		status   int
		code     string
		unlinked string // account that must have no customers afterwards
	}{
		{"OK", "/v1/accounts/acct_api", appTok, http.StatusNoContent, "", "acct_api"},
		{"OKSecondCall", "/v1/accounts/acct_api", appTok, http.StatusNoContent, "", "acct_api"},
		{"OKUnknownAccount", "/v1/accounts/acct_never_seen", appTok, http.StatusNoContent, "", ""},
		{"OKFlags", "/v1/accounts/acct_flags?delete_customer=true&cancel_subscriptions=false&erase_profitwell=true", appTok, http.StatusNoContent, "", "acct_flags"},
		{"ErrMalformedAccountID", "/v1/accounts/acct%20x", appTok, http.StatusBadRequest, "invalid_account_id", ""},
		{"ErrAccountIDTooLong", "/v1/accounts/" + strings.Repeat("a", 129), appTok, http.StatusBadRequest, "invalid_account_id", ""},
		{"ErrFlagNotBoolean", "/v1/accounts/acct_x?delete_customer=yes", appTok, http.StatusBadRequest, "invalid_flag", ""},
		{"ErrFlagNumeric", "/v1/accounts/acct_x?delete_customer=1", appTok, http.StatusBadRequest, "invalid_flag", ""},
		{"ErrFlagUppercase", "/v1/accounts/acct_x?cancel_subscriptions=TRUE", appTok, http.StatusBadRequest, "invalid_flag", ""},
		{"ErrFlagEmpty", "/v1/accounts/acct_x?erase_profitwell=", appTok, http.StatusBadRequest, "invalid_flag", ""},
		{"ErrFlagTwice", "/v1/accounts/acct_x?delete_customer=true&delete_customer=false", appTok, http.StatusBadRequest, "invalid_flag", ""},
		{"ErrUnknownParameter", "/v1/accounts/acct_x?delete_customers=true", appTok, http.StatusBadRequest, "unknown_parameter", ""},
		{"ErrNoToken", "/v1/accounts/acct_x", "", http.StatusUnauthorized, "unauthorized", ""},
		{"ErrFinanceScope", "/v1/accounts/acct_x", finTok, http.StatusForbidden, "forbidden", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodDelete, srv.URL+tt.path, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.code != "" {
				var body struct {
					Error struct{ Code, Message string }
				}
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
					t.Fatal(err)
				}
				if body.Error.Code != tt.code || body.Error.Message == "" {
					t.Errorf("error = %+v, want code %s with a message", body.Error, tt.code)
				}
			}
			if tt.unlinked != "" {
				var n int
				if err := st.DB().Get(&n, `SELECT count(*) FROM customers WHERE account_id = $1`, tt.unlinked); err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Errorf("%s still has %d customers", tt.unlinked, n)
				}
			}
		})
	}

	t.Run("LogsCountsNotIDs", func(t *testing.T) {
		out := logs.String()
		if !strings.Contains(out, `"msg":"account erased"`) {
			t.Fatalf("no erasure log line:\n%s", out)
		}
		for _, id := range []string{"acct_api", "acct_flags", "cus_API1", "cus_API2"} {
			if strings.Contains(out, id) {
				t.Errorf("logs name %s:\n%s", id, out)
			}
		}
	})
	t.Run("FlagsReachTheStore", func(t *testing.T) {
		jobs, err := st.OutboxRows(ctx, billing.OutboxStripe, "pending")
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 1 || jobs[0].Action != billing.StripeDeleteCustomer {
			t.Fatalf("stripe jobs = %+v, want one delete_customer (from OKFlags)", jobs)
		}
		var actors []string
		if err := st.DB().Select(&actors, `SELECT DISTINCT actor FROM audit_log WHERE action = $1`, postgres.AuditActionErase); err != nil {
			t.Fatal(err)
		}
		if len(actors) != 1 || actors[0] != "app-backend" {
			t.Errorf("audit actors = %v, want the token name app-backend", actors)
		}
	})
}

// syncLog is a log sink safe for concurrent handlers.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
