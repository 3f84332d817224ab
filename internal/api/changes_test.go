package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/entcache"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

type changesBody struct {
	Changes []struct {
		Cursor      string          `json:"cursor"`
		AccountID   string          `json:"account_id"`
		Livemode    bool            `json:"livemode"`
		At          string          `json:"at"`
		Entitlement json.RawMessage `json:"entitlement"`
	} `json:"changes"`
	NextCursor string `json:"next_cursor"`
	Error      struct {
		Code string `json:"code"`
	} `json:"error"`
}

// GET /v1/changes: pages in feed order with next_cursor, entries carry the
// entitlement endpoint's own answer, bad parameters get precise 400s, a
// purged cursor 410 cursor_expired, and only app tokens may read.
func TestChangesEndpoint(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	cache := entcache.New(st, api.RenderEntitlement, entcache.Options{Grace: 72 * time.Hour, Log: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer((&api.Server{Log: slog.New(slog.DiscardHandler), Tokens: cache, Entitlements: cache,
		Changes: st}).Handler())
	t.Cleanup(srv.Close)
	appTok := mintToken(t, st, "backend", billing.ScopeApp)
	finTok := mintToken(t, st, "finance", billing.ScopeFinance)

	start := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 1, 0)
	for i, status := range []billing.Status{billing.StatusTrialing, billing.StatusActive, billing.StatusCanceled} {
		ev := billing.Event{ID: "evt_chg" + string(rune('a'+i)), Type: "customer.subscription.updated", Livemode: true,
			Created: time.Now().Add(-time.Hour).Truncate(time.Second).Add(time.Duration(i) * time.Minute),
			Subscription: &billing.Subscription{ID: "sub_chg", CustomerID: "cus_chg", Livemode: true, Status: status,
				Currency: "usd", AccountHint: "acct_chg", CurrentPeriodStart: &start, CurrentPeriodEnd: &end,
				Items: []billing.Item{{PriceID: "price_pro", Quantity: 1, UnitAmount: 900, Interval: billing.IntervalMonth, IntervalCount: 1}}}}
		if _, err := st.ApplyEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ProduceChanges(ctx, postgres.ChangeProducer{Render: func(e billing.Entitlement) []byte {
			return api.RenderEntitlement(e).Body
		}, Grace: 72 * time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(t *testing.T, path, tok string) (int, changesBody, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var b changesBody
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatalf("%s: %v: %s", path, err, raw)
		}
		return resp.StatusCode, b, string(raw)
	}

	t.Run("OKPages", func(t *testing.T) {
		var statuses []string
		cursor, pages := "", 0
		for {
			code, b, raw := get(t, "/v1/changes?limit=2&after="+cursor, appTok)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, raw)
			}
			pages++
			for _, c := range b.Changes {
				var e struct{ Status string }
				_ = json.Unmarshal(c.Entitlement, &e)
				statuses = append(statuses, e.Status)
				if c.AccountID != "acct_chg" || !c.Livemode || c.At == "" || c.Cursor == "" {
					t.Errorf("entry %+v", c)
				}
			}
			if len(b.Changes) == 0 {
				if b.NextCursor != cursor {
					t.Errorf("empty page: next_cursor %q, want the cursor sent (%q)", b.NextCursor, cursor)
				}
				break
			}
			cursor = b.NextCursor
		}
		if strings.Join(statuses, ",") != "trialing,active,canceled" || pages != 3 {
			t.Errorf("statuses %v in %d pages", statuses, pages)
		}
	})
	t.Run("OKSameAnswerAsEntitlement", func(t *testing.T) {
		_, b, _ := get(t, "/v1/changes", appTok)
		last := b.Changes[len(b.Changes)-1].Entitlement
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/accounts/acct_chg/entitlement", nil)
		req.Header.Set("Authorization", "Bearer "+appTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		ent, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(ent)) != string(last) {
			t.Errorf("feed entry %s\nentitlement endpoint %s", last, ent)
		}
	})
	for _, tt := range []struct {
		name, path, tok string
		code            int
		errCode         string
	}{
		{"ErrCursor", "/v1/changes?after=abc", appTok, 400, "invalid_cursor"},
		{"ErrCursorNegative", "/v1/changes?after=-1", appTok, 400, "invalid_cursor"},
		{"ErrLimitZero", "/v1/changes?limit=0", appTok, 400, "invalid_limit"},
		{"ErrLimitHigh", "/v1/changes?limit=1001", appTok, 400, "invalid_limit"},
		{"ErrUnknownParameter", "/v1/changes?since=1", appTok, 400, "invalid_parameter"},
		{"ErrTwice", "/v1/changes?after=1&after=2", appTok, 400, "invalid_parameter"},
		{"ErrFinanceScope", "/v1/changes", finTok, 403, "forbidden"},
		{"ErrNoToken", "/v1/changes", "", 401, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, b, raw := get(t, tt.path, tt.tok)
			if code != tt.code || (tt.errCode != "" && b.Error.Code != tt.errCode) {
				t.Errorf("%d %s, want %d %s", code, raw, tt.code, tt.errCode)
			}
		})
	}
	t.Run("ErrCursorExpired", func(t *testing.T) {
		_, b, _ := get(t, "/v1/changes", appTok)
		if _, err := st.DB().ExecContext(ctx, `UPDATE entitlement_changes SET at = now() - interval '30 days' WHERE seq::text <> $1`, b.NextCursor); err != nil {
			t.Fatal(err)
		}
		if _, err := st.PurgeChanges(ctx, 7*24*time.Hour); err != nil {
			t.Fatal(err)
		}
		code, eb, raw := get(t, "/v1/changes?after="+b.Changes[0].Cursor, appTok)
		if code != http.StatusGone || eb.Error.Code != "cursor_expired" {
			t.Errorf("%d %s, want 410 cursor_expired", code, raw)
		}
		code, ok, raw := get(t, "/v1/changes?after="+b.Changes[1].Cursor, appTok)
		if code != http.StatusOK || len(ok.Changes) != 1 {
			t.Errorf("%d %s, want the last entry", code, raw)
		}
	})
}
