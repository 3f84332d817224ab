package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/client"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/internal/stripefake"
	"github.com/stripe/stripe-go/v76/webhook"
)

// realBillingd is the binary built from this tree, serving on a fresh
// database: the client's tests run against billingd itself, not a fake.
type realBillingd struct {
	base, secret string
	dbURL        string
	appToken     string
	finToken     string
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

func startBillingd(t *testing.T, env ...string) realBillingd {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "billingd-client-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "billingd")
		if out, err := exec.Command("go", "build", "-o", binary, "../cmd/billingd").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	st, err := postgres.Open(ctx, dbURL, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := realBillingd{secret: "whsec_client_tests_0123456789", dbURL: dbURL}
	for _, s := range []struct {
		scope billing.Scope
		into  *string
	}{{billing.ScopeApp, &b.appToken}, {billing.ScopeFinance, &b.finToken}} {
		tok, hash, err := billing.NewToken(s.scope)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.TokenCreate(ctx, "client-"+string(s.scope), s.scope, hash); err != nil {
			t.Fatal(err)
		}
		*s.into = tok
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(binary, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "DATABASE_URL=" + dbURL,
		"LISTEN_ADDR=" + addr, "STRIPE_WEBHOOK_SECRETS=" + b.secret, "LOG_LEVEL=warn"}
	cmd.Env = append(cmd.Env, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	b.base = "http://" + addr
	for deadline := time.Now().Add(60 * time.Second); ; {
		if resp, err := http.Get(b.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("billingd not ready:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// subscribe sends billingd a signed Stripe event: sub_<key> of cus_<key>
// in status, linked to account by metadata when account is not "".
func (b realBillingd) subscribe(t *testing.T, evt, key, status, account string, created int64) {
	t.Helper()
	meta := map[string]any{"note": "invoice Jane Client at jane.client@example.com"}
	if account != "" {
		meta["account_id"] = account
	}
	typ := "customer.subscription.updated"
	if status == "canceled" {
		typ = "customer.subscription.deleted"
	}
	payload, _ := json.Marshal(map[string]any{"id": evt, "object": "event", "api_version": "2023-10-16",
		"created": created, "livemode": true, "type": typ, "data": map[string]any{"object": map[string]any{
			"id": "sub_" + key, "object": "subscription", "customer": "cus_" + key, "status": status, "currency": "usd",
			"livemode": true, "created": created, "start_date": created, "current_period_start": created,
			"current_period_end": created + 30*86400, "cancel_at_period_end": false, "metadata": meta,
			"items": map[string]any{"object": "list", "has_more": false, "data": []any{map[string]any{
				"id": "si_" + key, "object": "subscription_item", "quantity": 1,
				"price": map[string]any{"id": "price_client", "object": "price", "product": "prod_client", "currency": "usd",
					"unit_amount": 2500, "billing_scheme": "per_unit", "type": "recurring",
					"recurring": map[string]any{"interval": "month", "interval_count": 1, "usage_type": "licensed"}}}}}}}})
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: b.secret, Timestamp: time.Now()})
	req, _ := http.NewRequest(http.MethodPost, b.base+"/webhooks/stripe", strings.NewReader(string(payload)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", signed.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"applied"`) {
		t.Fatalf("event %s: %d %s", evt, resp.StatusCode, body)
	}
}

// statusLog records the status of every answer the client got.
type statusLog struct {
	mu       sync.Mutex
	statuses []int
	next     http.RoundTripper
}

func (l *statusLog) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err == nil {
		l.mu.Lock()
		l.statuses = append(l.statuses, resp.StatusCode)
		l.mu.Unlock()
	}
	return resp, err
}

func (l *statusLog) last() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statuses[len(l.statuses)-1]
}

func TestClientAgainstBillingd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := startBillingd(t)
	log := &statusLog{next: http.DefaultTransport}
	c, err := client.New(b.base, b.appToken, client.WithHTTPClient(&http.Client{Transport: log, Timeout: 30 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now().Add(-time.Hour).Unix()

	e, err := c.Entitlement(ctx, "acct_cl1")
	if err != nil || e.Entitled || e.Status != "none" || !e.Livemode {
		t.Fatalf("unknown account: %+v %v", e, err)
	}
	// The customer arrives unlinked; the app links it.
	b.subscribe(t, "evt_cl1", "cl1", "active", "", created)
	r, err := c.Link(ctx, "acct_cl1", "cus_cl1")
	if err != nil || !r.Created || r.StripeCustomerID != "cus_cl1" {
		t.Fatalf("link: %+v %v", r, err)
	}
	if r, err := c.Link(ctx, "acct_cl1", "cus_cl1"); err != nil || r.Created {
		t.Fatalf("link again: %+v %v, want an idempotent 200", r, err)
	}
	e, err = c.Entitlement(ctx, "acct_cl1")
	if err != nil || !e.Entitled || e.Status != "active" || e.Plan == nil || *e.Plan != "price_client" || e.ValidUntil == nil {
		t.Fatalf("after link: %+v %v", e, err)
	}
	// Unchanged: the ETag is sent and the kept answer reused on 304.
	again, err := c.Entitlement(ctx, "acct_cl1")
	if err != nil || log.last() != http.StatusNotModified || *again.Plan != *e.Plan || !again.Entitled {
		t.Fatalf("second read: %+v %v (last status %d), want the kept answer after a 304", again, err, log.last())
	}
	if f, err := c.Entitlement(ctx, "acct_cl1", client.Fresh()); err != nil || !f.Entitled || log.last() != http.StatusOK {
		t.Fatalf("fresh read: %+v %v (status %d)", f, err, log.last())
	}
	if tm, err := c.Entitlement(ctx, "acct_cl1", client.TestMode()); err != nil || tm.Entitled || tm.Livemode {
		t.Fatalf("test mode: %+v %v", tm, err)
	}
	// One feature: not granted without a catalog; unchanged answers are
	// kept with their ETag like the entitlement; a bad key is a typed error.
	if f, err := c.Feature(ctx, "acct_cl1", "projects"); err != nil || f.Enabled || f.Limit != nil {
		t.Fatalf("feature without a catalog: %+v %v", f, err)
	}
	if f, err := c.Feature(ctx, "acct_cl1", "projects"); err != nil || f.Enabled || log.last() != http.StatusNotModified {
		t.Fatalf("feature again: %+v %v (status %d), want the kept answer after a 304", f, err, log.last())
	}
	var fe *client.Error
	if _, err := c.Feature(ctx, "acct_cl1", "-bad key-"); !errors.As(err, &fe) || fe.Code != "invalid_feature_key" {
		t.Fatalf("bad feature key: %v", err)
	}
	// A changed answer replaces the kept one (200 with a new ETag).
	b.subscribe(t, "evt_cl1_cancel", "cl1", "canceled", "", created+60)
	if e, err := c.Entitlement(ctx, "acct_cl1"); err != nil || e.Entitled || log.last() != http.StatusOK {
		t.Fatalf("after cancellation: %+v %v (status %d)", e, err, log.last())
	}

	ref, err := c.LinkReference(ctx, "acct_cl2", time.Hour)
	if err != nil || !strings.HasPrefix(ref.ClientReferenceID, "bdl1_") || time.Until(ref.ExpiresAt) > time.Hour+time.Minute {
		t.Fatalf("link reference: %+v %v", ref, err)
	}

	// Typed errors from billingd's codes.
	if _, err := c.Link(ctx, "acct_cl3", "cus_cl1"); !errors.Is(err, client.ErrCustomerLinkedElsewhere) {
		t.Fatalf("linking another account's customer: %v", err)
	}
	if _, err := c.Entitlement(ctx, "acct with spaces"); !errors.Is(err, client.ErrInvalidAccountID) {
		t.Fatalf("bad account ID: %v", err)
	}
	if err := c.DeleteAccount(ctx, "acct_cl1", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAccount(ctx, "acct_cl1", client.DeleteOptions{EraseProfitWell: true}); err != nil {
		t.Fatalf("erasure is idempotent: %v", err)
	}
	_, err = c.Link(ctx, "acct_cl1", "cus_cl9")
	var be *client.Error
	if !errors.Is(err, client.ErrAccountErased) || !errors.As(err, &be) || be.Status != http.StatusConflict {
		t.Fatalf("linking an erased account: %v", err)
	}
	bad, _ := client.New(b.base, "bd_app_not-a-token", client.WithRetries(0))
	if _, err := bad.Entitlement(ctx, "acct_cl1"); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("wrong token: %v", err)
	}
	fin, _ := client.New(b.base, b.finToken)
	if _, err := fin.Entitlement(ctx, "acct_cl1"); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("finance token: %v", err)
	}
}

// TestClientRetries503 puts a proxy in front of billingd that answers the
// first requests 503 with Retry-After, as an overloaded billingd does: the
// client waits as told and gets billingd's answer; with retries off it
// returns the 503 as an *Error carrying Retry-After.
func TestClientRetries503(t *testing.T) {
	t.Parallel()
	b := startBillingd(t)
	target, _ := url.Parse(b.base)
	var calls atomic.Int32
	var first, third time.Time
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch n {
		case 1:
			first = time.Now()
		case 3:
			third = time.Now()
		}
		if n <= 2 {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":{"code":"overloaded","message":"try again"}}`)
			return
		}
		r.URL.Scheme, r.URL.Host, r.Host, r.RequestURI = target.Scheme, target.Host, target.Host, ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer proxy.Close()

	c, _ := client.New(proxy.URL, b.appToken)
	e, err := c.Entitlement(context.Background(), "acct_retry")
	if err != nil || e.Status != "none" {
		t.Fatalf("after two 503s: %+v %v", e, err)
	}
	if calls.Load() != 3 {
		t.Fatalf("%d requests, want 3 (two 503s, then billingd's answer)", calls.Load())
	}
	if waited := third.Sub(first); waited < 2*time.Second {
		t.Fatalf("retried after %v; Retry-After asked for 1 s twice", waited)
	}

	calls.Store(0)
	once, _ := client.New(proxy.URL, b.appToken, client.WithRetries(0))
	_, err = once.Entitlement(context.Background(), "acct_retry")
	var be *client.Error
	if !errors.As(err, &be) || be.Status != http.StatusServiceUnavailable || be.Code != "overloaded" || be.RetryAfter != time.Second {
		t.Fatalf("without retries: %#v", err)
	}

	// A context that ends while waiting stops the retries.
	calls.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Entitlement(ctx, "acct_retry"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("context ended during Retry-After: %v", err)
	}
}

// TestClientSessions: Checkout and Portal sessions through billingd, with
// the in-repo fake as Stripe: the client's generated Idempotency-Key
// reaches Stripe, a retried call with the same key makes one session, and
// billingd's refusals arrive as typed errors.
func TestClientSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := stripefake.New()
	defer fake.Close()
	fake.PutPrice(stripefake.Price{ID: "price_cl", ProductID: "prod_cl", Recurring: true})
	fake.PutCustomer(stripefake.Customer{ID: "cus_clportal", Created: time.Now().Add(-time.Hour)})
	b := startBillingd(t, "STRIPE_API_BASE="+fake.URL, "STRIPE_API_KEY="+stripefake.Key,
		"APP_URL_ALLOWLIST=https://app.example.com/billing")
	c, _ := client.New(b.base, b.appToken)

	p := client.CheckoutParams{Price: "price_cl", SuccessURL: "https://app.example.com/billing/done",
		CancelURL: "https://app.example.com/billing", CustomerEmail: "jane.client@example.com", IdempotencyKey: "cl-upgrade-1"}
	cs, err := c.CheckoutSession(ctx, "acct_cls", p)
	if err != nil || !strings.HasPrefix(cs.ID, "cs_test_") || cs.URL == "" || cs.Livemode || cs.ExpiresAt.Before(time.Now()) {
		t.Fatalf("checkout: %+v %v", cs, err)
	}
	again, err := c.CheckoutSession(ctx, "acct_cls", p)
	if err != nil || again.ID != cs.ID {
		t.Fatalf("same Idempotency-Key: %+v %v, want the same session %s", again, err, cs.ID)
	}
	if n, _ := fake.SessionsCreated(); n != 1 {
		t.Fatalf("Stripe created %d checkout sessions, want 1", n)
	}
	p.IdempotencyKey = "" // generated per call: a second session
	if _, err := c.CheckoutSession(ctx, "acct_cls", p); err != nil {
		t.Fatal(err)
	}
	if n, _ := fake.SessionsCreated(); n != 2 {
		t.Fatalf("Stripe created %d checkout sessions, want 2", n)
	}
	p.SuccessURL = "https://app.example.com.evil.test/"
	var be *client.Error
	if _, err := c.CheckoutSession(ctx, "acct_cls", p); !errors.As(err, &be) || be.Code != "url_not_allowed" {
		t.Fatalf("open redirect: %v", err)
	}

	if _, err := c.PortalSession(ctx, "acct_nocustomer", client.PortalParams{ReturnURL: "https://app.example.com/billing"}); !errors.Is(err, client.ErrNoCustomer) {
		t.Fatalf("portal without customer: %v", err)
	}
	if _, err := c.Link(ctx, "acct_clportal", "cus_clportal"); err != nil {
		t.Fatal(err)
	}
	ps, err := c.PortalSession(ctx, "acct_clportal", client.PortalParams{ReturnURL: "https://app.example.com/billing"})
	if err != nil || ps.URL == "" || ps.Livemode {
		t.Fatalf("portal: %+v %v", ps, err)
	}
}
