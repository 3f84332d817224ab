package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/client"
	"github.com/billingd/billingd/internal/postgres"
)

// appEndpoint is the app's webhook receiver: it keeps every delivery.
type appEndpoint struct {
	mu         sync.Mutex
	bodies     [][]byte
	signatures []string
}

func (a *appEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.bodies = append(a.bodies, body)
	a.signatures = append(a.signatures, r.Header.Get("Billingd-Signature"))
	a.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (a *appEndpoint) deliveries() ([][]byte, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([][]byte(nil), a.bodies...), append([]string(nil), a.signatures...)
}

// TestClientChangesAndWebhooks: the change feed read with Changes, page by
// page, one entry per change of the answer (an event that changes nothing
// makes none); the same changes POSTed to APP_WEBHOOK_URL, each verified
// and decoded by VerifyWebhook with the secret (and refused with another),
// carrying the feed's cursor and answer and no personal data from the
// Stripe event; a purged cursor is ErrCursorExpired.
func TestClientChangesAndWebhooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const secret = "app_webhook_secret_client_0123456789abcdef"
	app := &appEndpoint{}
	srv := httptest.NewServer(app)
	defer srv.Close()
	b := startBillingd(t, "APP_WEBHOOK_URL="+srv.URL+"/billingd", "APP_WEBHOOK_SECRET="+secret)
	c, err := client.New(b.base, b.appToken)
	if err != nil {
		t.Fatal(err)
	}
	var changes []client.Change
	after := ""
	follow := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); len(changes) < want; {
			p, err := c.Changes(ctx, after, 1)
			if err != nil {
				t.Fatalf("changes after %q: %v", after, err)
			}
			if len(p.Changes) > 1 {
				t.Fatalf("limit 1: %d entries", len(p.Changes))
			}
			changes = append(changes, p.Changes...)
			if len(p.Changes) == 0 {
				if p.NextCursor != after {
					t.Fatalf("empty page: next_cursor %q, want %q", p.NextCursor, after)
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d entries in the feed, want %d", len(changes), want)
				}
				time.Sleep(50 * time.Millisecond)
			}
			after = p.NextCursor
		}
	}
	created := time.Now().Add(-time.Hour).Unix()
	b.subscribe(t, "evt_clc1", "clc1", "active", "acct_clc1", created)
	follow(1)
	b.subscribe(t, "evt_clc1_again", "clc1", "active", "acct_clc1", created) // the same state: no entry
	b.subscribe(t, "evt_clc1_cancel", "clc1", "canceled", "acct_clc1", created+60)
	follow(2)
	if p, err := c.Changes(ctx, "", 0); err != nil || len(p.Changes) != 2 || p.NextCursor != changes[1].Cursor {
		t.Fatalf("the whole feed: %+v %v, want the two changes", p, err)
	}
	for i, want := range []struct {
		entitled bool
		status   string
	}{{true, "active"}, {false, "canceled"}} {
		ch := changes[i]
		if ch.AccountID != "acct_clc1" || !ch.Livemode || ch.Entitlement.Entitled != want.entitled || ch.Entitlement.Status != want.status ||
			ch.Entitlement.Plan == nil || *ch.Entitlement.Plan != "price_client" || ch.At.IsZero() {
			t.Errorf("entry %d: %+v, want %s", i, ch, want.status)
		}
	}

	// The webhooks: at least once, so deliveries of one change share an ID.
	var events []*client.WebhookEvent
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		bodies, sigs := app.deliveries()
		events = events[:0]
		seen := map[string]bool{}
		for i, body := range bodies {
			ev, err := client.VerifyWebhook(body, sigs[i], secret, 0)
			if err != nil {
				t.Fatalf("delivery %d: %v: %s", i, err, body)
			}
			if _, err := client.VerifyWebhook(body, sigs[i], "another_secret_0123456789abcdef0123456789", 0); !errors.Is(err, client.ErrSignatureMismatch) {
				t.Errorf("delivery %d with another secret: %v, want ErrSignatureMismatch", i, err)
			}
			for _, pii := range []string{"jane", "example.com", "invoice"} {
				if strings.Contains(strings.ToLower(string(body)), pii) {
					t.Errorf("delivery %d holds %q: %s", i, pii, body)
				}
			}
			if !seen[ev.ID] {
				seen[ev.ID] = true
				events = append(events, ev)
			}
		}
		if len(events) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d distinct webhooks received, want 2", len(events))
		}
	}
	if len(events) != 2 {
		t.Fatalf("%d distinct webhooks, want 2 (one per change)", len(events))
	}
	for i, ev := range events {
		ch := changes[i]
		if !strings.HasPrefix(ev.ID, "chg_") || ev.Type != "entitlement.changed" || ev.AccountID != ch.AccountID ||
			ev.Livemode != ch.Livemode || ev.Cursor != ch.Cursor || ev.Entitlement.Status != ch.Entitlement.Status ||
			ev.Entitlement.Entitled != ch.Entitlement.Entitled {
			t.Errorf("webhook %d: %+v, want the feed's entry %+v (in order)", i, ev, ch)
		}
	}

	// A purge moved the feed's horizon past the first cursor.
	st, err := postgres.Open(ctx, b.dbURL, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.DB().ExecContext(ctx, `UPDATE entitlement_feed SET purged_through = $1`, changes[1].Cursor); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Changes(ctx, changes[0].Cursor, 10); !errors.Is(err, client.ErrCursorExpired) {
		t.Fatalf("cursor before the purge horizon: %v, want ErrCursorExpired", err)
	}
	if p, err := c.Changes(ctx, changes[1].Cursor, 10); err != nil || len(p.Changes) != 0 {
		t.Fatalf("cursor at the horizon: %+v %v", p, err)
	}
}
