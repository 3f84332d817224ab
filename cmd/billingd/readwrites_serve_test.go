package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/stripe/stripe-go/v76/webhook"
)

// rywRounds is how many times each change is made and read back: a
// replica that learned of its own commits only through the feed poll (up
// to a second later) answers stale for most of them.
const rywRounds = 25

// rywClient talks to one running billingd.
type rywClient struct {
	t      *testing.T
	base   string
	token  string
	secret string
	http   *http.Client
}

func (c *rywClient) do(method, path string, body string, hdr ...string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// entitled asks GET /entitlement (with extra headers, if any).
func (c *rywClient) entitled(acct string, hdr ...string) bool {
	c.t.Helper()
	code, body := c.do(http.MethodGet, "/v1/accounts/"+acct+"/entitlement", "", hdr...)
	if code != http.StatusOK {
		c.t.Fatalf("entitlement %s: %d %s", acct, code, body)
	}
	var e struct {
		Entitled bool `json:"entitled"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		c.t.Fatalf("entitlement %s: %s", acct, body)
	}
	return e.Entitled
}

// cached reads acct's entitlement twice and fails with why unless both
// answers are want. Twice on purpose: the first read may load the cache,
// the second is then answered from it, so the change that follows has a
// cached answer to replace.
func (c *rywClient) cached(acct string, want bool, why string) {
	c.t.Helper()
	for read := 1; read <= 2; read++ {
		if c.entitled(acct) != want {
			c.t.Fatalf("%s (read %d)", why, read)
		}
	}
}

// event posts a signed subscription event: status for sub_<key> of
// cus_<key>, linked by metadata to account when it is not "".
func (c *rywClient) event(id string, created int64, key, status, account string) {
	c.t.Helper()
	meta := map[string]any{"note": "call Jane Readback on +1 555 0101"}
	if account != "" {
		meta["account_id"] = account
	}
	typ := "customer.subscription.updated"
	if status == "canceled" {
		typ = "customer.subscription.deleted"
	}
	obj := map[string]any{
		"id": "sub_" + key, "object": "subscription", "customer": "cus_" + key, "status": status, "currency": "usd",
		"livemode": true, "created": created, "start_date": created, "current_period_start": created,
		"current_period_end": created + 30*86400, "cancel_at_period_end": false, "metadata": meta,
		"items": map[string]any{"object": "list", "has_more": false, "data": []any{map[string]any{
			"id": "si_" + key, "object": "subscription_item", "quantity": 1,
			"price": map[string]any{"id": "price_ryw", "object": "price", "product": "prod_ryw", "currency": "usd",
				"unit_amount": 1500, "billing_scheme": "per_unit", "type": "recurring",
				"recurring": map[string]any{"interval": "month", "interval_count": 1, "usage_type": "licensed"}},
		}}},
	}
	payload, _ := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": "2023-10-16",
		"created": created, "livemode": true, "type": typ, "data": map[string]any{"object": obj}})
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: c.secret, Timestamp: time.Now()})
	req, _ := http.NewRequest(http.MethodPost, c.base+"/webhooks/stripe", strings.NewReader(string(payload)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", signed.Header)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"applied"`) {
		c.t.Fatalf("event %s: %d %s", id, resp.StatusCode, b)
	}
}

// TestServeReadsItsOwnWrites runs the real binary on one database: right
// after a change it acknowledged (DELETE 204, PUT 201, a webhook's 200),
// the same replica's GET /entitlement gives the new answer, every time,
// though its cache held the old one a moment before. A change this replica
// did not make (another process's erasure) is read at once by a request
// with Cache-Control: no-cache, and GET /billing is never cached.
func TestServeReadsItsOwnWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tok, hash, err := billing.NewToken(billing.ScopeApp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TokenCreate(ctx, "readback", billing.ScopeApp, hash); err != nil {
		t.Fatal(err)
	}
	const secret = "whsec_readyourwrites_0123456789"
	addr := freeAddr(t)
	p := startBillingd(t, []string{"DATABASE_URL=" + url, "LISTEN_ADDR=" + addr, "STRIPE_WEBHOOK_SECRETS=" + secret, "LOG_LEVEL=warn"}, "serve")
	waitReady(t, p, addr, 60*time.Second)
	c := &rywClient{t: t, base: "http://" + addr, token: tok, secret: secret, http: &http.Client{Timeout: 30 * time.Second}}

	// Every account starts with an active subscription (linked, or for
	// the PUT rounds not yet), made through the webhook.
	t0 := time.Now().Add(-time.Hour).Unix()
	for i := 0; i < rywRounds; i++ {
		c.event(fmt.Sprintf("evt_rywW%03d", i), t0, fmt.Sprintf("rywW%03d", i), "active", fmt.Sprintf("acct_rywW%03d", i))
		c.event(fmt.Sprintf("evt_rywD%03d", i), t0, fmt.Sprintf("rywD%03d", i), "active", fmt.Sprintf("acct_rywD%03d", i))
		c.event(fmt.Sprintf("evt_rywP%03d", i), t0, fmt.Sprintf("rywP%03d", i), "active", "")
		c.event(fmt.Sprintf("evt_rywN%03d", i), t0, fmt.Sprintf("rywN%03d", i), "active", fmt.Sprintf("acct_rywN%03d", i))
	}
	// Let the feed carry the set-up away, so each round's first read is
	// cached (this only makes stale answers likelier: nothing is timed).
	time.Sleep(2 * time.Second)

	t.Run("Webhook", func(t *testing.T) {
		c.t = t
		for i := 0; i < rywRounds; i++ {
			acct := fmt.Sprintf("acct_rywW%03d", i)
			c.cached(acct, true, fmt.Sprintf("round %d: not entitled before the change", i))
			c.event(fmt.Sprintf("evt_rywW%03d_del", i), t0+10, fmt.Sprintf("rywW%03d", i), "canceled", acct)
			if c.entitled(acct) {
				t.Fatalf("round %d: entitled right after the cancellation was acknowledged", i)
			}
		}
	})
	t.Run("Delete", func(t *testing.T) {
		c.t = t
		for i := 0; i < rywRounds; i++ {
			acct := fmt.Sprintf("acct_rywD%03d", i)
			c.cached(acct, true, fmt.Sprintf("round %d: not entitled before the erasure", i))
			if code, body := c.do(http.MethodDelete, "/v1/accounts/"+acct, ""); code != http.StatusNoContent {
				t.Fatalf("round %d: DELETE %d %s", i, code, body)
			}
			if c.entitled(acct) {
				t.Fatalf("round %d: entitled right after DELETE answered 204", i)
			}
		}
	})
	t.Run("Put", func(t *testing.T) {
		c.t = t
		for i := 0; i < rywRounds; i++ {
			acct := fmt.Sprintf("acct_rywP%03d", i)
			c.cached(acct, false, fmt.Sprintf("round %d: entitled before the link", i))
			body := fmt.Sprintf(`{"stripe_customer_id":"cus_rywP%03d"}`, i)
			if code, resp := c.do(http.MethodPut, "/v1/accounts/"+acct+"/billing", body); code != http.StatusCreated {
				t.Fatalf("round %d: PUT %d %s", i, code, resp)
			}
			if !c.entitled(acct) {
				t.Fatalf("round %d: not entitled right after PUT answered 201", i)
			}
		}
	})
	t.Run("NoCacheSeesOtherWriters", func(t *testing.T) {
		c.t = t
		for i := 0; i < rywRounds; i++ {
			acct := fmt.Sprintf("acct_rywN%03d", i)
			c.cached(acct, true, fmt.Sprintf("round %d: not entitled before the erasure", i))
			if code, _ := c.do(http.MethodGet, "/v1/accounts/"+acct+"/billing", ""); code != http.StatusOK {
				t.Fatalf("round %d: GET /billing %d before the erasure", i, code)
			}
			// Another process erases the account: this replica hears of it
			// only through the feed.
			if _, err := st.EraseAccount(ctx, billing.ErasureRequest{AccountID: acct, Actor: "other-process"}); err != nil {
				t.Fatal(err)
			}
			if c.entitled(acct, "Cache-Control", "no-cache") {
				t.Fatalf("round %d: Cache-Control: no-cache answered from the cache", i)
			}
			if code, _ := c.do(http.MethodGet, "/v1/accounts/"+acct+"/billing", ""); code != http.StatusNotFound {
				t.Fatalf("round %d: GET /billing %d after the erasure, want 404", i, code)
			}
		}
	})
}
