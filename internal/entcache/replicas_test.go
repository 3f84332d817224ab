package entcache_test

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
	"github.com/prometheus/client_golang/prometheus"
)

// bound is the staleness bound the replicas run with here: short, so the
// test is quick; the guarantee does not depend on its size.
const bound = time.Second

// replica is one billingd API process: its own pool, cache and listener.
type replica struct {
	st    *postgres.Store
	cache *entcache.Cache[*api.EntitlementResponse]
	reg   *prometheus.Registry
	srv   *httptest.Server
}

func startReplica(t *testing.T, url string) *replica {
	t.Helper()
	st, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{st: st, reg: prometheus.NewRegistry()}
	r.cache = entcache.New(st, api.RenderEntitlement, entcache.Options{Grace: 72 * time.Hour, Bound: bound, Log: slog.New(slog.DiscardHandler), Registerer: r.reg})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.cache.Run(ctx); close(done) }()
	r.srv = httptest.NewServer((&api.Server{Log: slog.New(slog.DiscardHandler), Tokens: r.cache,
		Entitlements: r.cache, Accounts: st}).Handler())
	t.Cleanup(func() { r.srv.Close(); cancel(); <-done; st.Close() })
	return r
}

// waitFresh waits until the replica's listener is up. Not a timing
// assertion: a slow machine only makes the test wait longer.
func (r *replica) waitFresh(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !r.cache.Fresh(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("cache listener never came up")
		}
	}
}

func (r *replica) counter(t *testing.T, name, kind string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if kind == "" {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func (r *replica) get(t *testing.T, path, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, body
}

func (r *replica) entitled(t *testing.T, acct, token string) bool {
	t.Helper()
	code, body := r.get(t, "/v1/accounts/"+acct+"/entitlement", token)
	if code != http.StatusOK {
		t.Fatalf("entitlement: %d %v", code, body)
	}
	return body["entitled"] == true
}

// TestReplicasSeeChangesWithinBound runs two API replicas on one database.
// Each change is made through one replica or straight in the database, and
// the other replica, whose cache held the old answer, must give the new one
// to any read that starts Bound after the change committed. The test waits
// exactly Bound and then reads once: no polling that could hide a stale
// answer.
func TestReplicasSeeChangesWithinBound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	a, b := startReplica(t, url), startReplica(t, url)
	tok, hash, _ := billing.NewToken(billing.ScopeApp)
	if _, err := a.st.TokenCreate(ctx, "backend", billing.ScopeApp, hash); err != nil {
		t.Fatal(err)
	}
	// An unlinked customer with an active subscription, as webhooks leave it
	// when they arrive before the app links the customer.
	db := a.st.DB()
	if _, err := db.Exec(`INSERT INTO customers (stripe_customer_id, livemode) VALUES ('cus_R1', true)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`
INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, customer_ref, livemode, status, currency, items,
    current_period_start, current_period_end, version_at, version_rank, version_event)
SELECT 'sub_R1', 'cus_R1', customer_ref, true, 'active', 'eur', '[{"price_id":"price_pro","quantity":1}]',
       now(), now() + interval '30 days', now(), 0, 'evt_seed'
FROM customers WHERE stripe_customer_id = 'cus_R1'`); err != nil {
		t.Fatal(err)
	}
	a.waitFresh(t)
	b.waitFresh(t)

	// B caches "not entitled" for acct_r (and the token).
	if b.entitled(t, "acct_r", tok) {
		t.Fatal("acct_r entitled before any link")
	}
	misses := b.counter(t, "billingd_cache_misses_total", "entitlement")
	b.entitled(t, "acct_r", tok)
	if b.cache.Fresh() && b.counter(t, "billingd_cache_misses_total", "entitlement") != misses {
		t.Fatal("a fresh cache went to the database for a cached answer")
	}

	steps := []struct {
		name   string
		change func(t *testing.T)
		check  func(t *testing.T) bool // true when B shows the change
	}{
		{"LinkThroughReplicaA", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPut, a.srv.URL+"/v1/accounts/acct_r/billing", strings.NewReader(`{"stripe_customer_id":"cus_R1"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := a.srv.Client().Do(req)
			if err != nil || resp.StatusCode != http.StatusCreated {
				t.Fatalf("link through A: %v %v", resp.StatusCode, err)
			}
			resp.Body.Close()
		}, func(t *testing.T) bool { return b.entitled(t, "acct_r", tok) }},
		{"EventPathChangeWithFeedRow", func(t *testing.T) {
			// What the event transaction does: change state, write the
			// feed row, commit.
			tx := db.MustBegin()
			tx.MustExec(`UPDATE subscriptions SET status = 'canceled' WHERE stripe_subscription_id = 'sub_R1'`)
			tx.MustExec(`INSERT INTO cache_invalidations (kind, bucket) VALUES (1, $1)`, int(billing.CacheBucket("acct_r")))
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T) bool { return !b.entitled(t, "acct_r", tok) }},
		{"SlowTransactionCommitsAfterLaterOnes", func(t *testing.T) {
			// A transaction takes its ID, writes its feed row, and commits
			// only after many polls and later transactions have passed: the
			// pollers' xid window must still catch it.
			slow := db.MustBegin()
			slow.MustExec(`UPDATE subscriptions SET status = 'active' WHERE stripe_subscription_id = 'sub_R1'`)
			slow.MustExec(`INSERT INTO cache_invalidations (kind, bucket) VALUES (1, $1)`, int(billing.CacheBucket("acct_r")))
			for i := 0; i < 5; i++ {
				db.MustExec(`INSERT INTO cache_invalidations (kind, bucket) VALUES (1, 0)`)
				time.Sleep(bound / 4)
			}
			if err := slow.Commit(); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T) bool { return b.entitled(t, "acct_r", tok) }},
		{"WebhookEventThroughStore", func(t *testing.T) {
			// The real event transaction (as webhooks/ and backfill run it)
			// must notify through notifyAccountChange.
			ev := billing.Event{ID: "evt_R1canceled", Type: "customer.subscription.deleted", Livemode: true,
				Created: time.Now().Add(time.Minute).Truncate(time.Second),
				Subscription: &billing.Subscription{ID: "sub_R1", CustomerID: "cus_R1", Livemode: true,
					Status: billing.StatusCanceled, Currency: "eur", Items: []billing.Item{{PriceID: "price_pro", Quantity: 1}}}}
			if out, err := a.st.ApplyEvent(ctx, ev); err != nil || out != billing.OutcomeApplied {
				t.Fatalf("apply event: %v %v", out, err)
			}
		}, func(t *testing.T) bool { return !b.entitled(t, "acct_r", tok) }},
		{"TokenRevokedElsewhere", func(t *testing.T) {
			got, err := a.st.TokenByHash(ctx, hash)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.st.TokenRevoke(ctx, got.ID); err != nil { // as `billingd token revoke` does
				t.Fatal(err)
			}
		}, func(t *testing.T) bool {
			code, _ := b.get(t, "/v1/accounts/acct_r/entitlement", tok)
			return code == http.StatusUnauthorized
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			b.waitFresh(t)
			if s.check(t) {
				t.Fatal("B shows the change before it was made")
			}
			s.change(t)
			committed := time.Now()
			// How fast it really propagates, for the log only.
			for !s.check(t) && time.Since(committed) < bound {
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("seen by B after %v", time.Since(committed).Round(time.Millisecond))
			time.Sleep(time.Until(committed.Add(bound)))
			if !s.check(t) {
				t.Fatalf("B still serves the old state %v after the change committed", bound)
			}
		})
	}
}

// TestAnswerExpiresWhenGraceEnds: a cached past_due answer must not
// outlive its grace period, though no notification says so.
func TestAnswerExpiresWhenGraceEnds(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	r := startReplica(t, url)
	tok, hash, _ := billing.NewToken(billing.ScopeApp)
	if _, err := r.st.TokenCreate(context.Background(), "backend", billing.ScopeApp, hash); err != nil {
		t.Fatal(err)
	}
	// Grace is 72h (startReplica): a period that started 72h minus 1.5s ago
	// leaves 1.5s of entitlement.
	graceEnd := time.Now().Add(1500 * time.Millisecond)
	start := graceEnd.Add(-72 * time.Hour)
	db := r.st.DB()
	if _, err := db.Exec(`INSERT INTO customers (stripe_customer_id, account_id, livemode) VALUES ('cus_G1', 'acct_g', true)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`
INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, customer_ref, livemode, status, currency, items,
    current_period_start, current_period_end, version_at, version_rank, version_event)
SELECT 'sub_G1', 'cus_G1', customer_ref, true, 'past_due', 'eur', '[{"price_id":"price_pro","quantity":1}]',
       $1, $1::timestamptz + interval '30 days', now(), 0, 'evt_seed'
FROM customers WHERE stripe_customer_id = 'cus_G1'`, start); err != nil {
		t.Fatal(err)
	}
	r.waitFresh(t)
	if !r.entitled(t, "acct_g", tok) {
		if time.Now().Before(graceEnd) {
			t.Fatal("past_due within grace is not entitled")
		}
		t.Skip("machine too slow: the grace period ended before the first read")
	}
	time.Sleep(time.Until(graceEnd))
	if r.entitled(t, "acct_g", tok) {
		t.Fatal("cached past_due answer served after its grace period ended")
	}
}

// TestUnknownTokenAnsweredFromMemory: a client retrying with a wrong token
// costs one query, not one per retry, and a token created afterwards
// works at once.
func TestUnknownTokenAnsweredFromMemory(t *testing.T) {
	t.Parallel()
	r := startReplica(t, pgtest.URL(t))
	r.waitFresh(t)
	wrong, _, _ := billing.NewToken(billing.ScopeApp)
	for range 3 {
		if code, _ := r.get(t, "/v1/accounts/acct_u/entitlement", wrong); code != http.StatusUnauthorized {
			t.Fatalf("wrong token: %d, want 401", code)
		}
	}
	if r.cache.Fresh() {
		if n := r.counter(t, "billingd_cache_misses_total", "token"); n != 1 {
			t.Errorf("three tries with one wrong token cost %v token queries, want 1", n)
		}
	}
	tok, hash, _ := billing.NewToken(billing.ScopeApp)
	if _, err := r.st.TokenCreate(context.Background(), "new", billing.ScopeApp, hash); err != nil {
		t.Fatal(err)
	}
	if code, body := r.get(t, "/v1/accounts/acct_u/entitlement", tok); code != http.StatusOK {
		t.Fatalf("new token: %d %v, want 200", code, body)
	}
}

// TestDatabaseDownMeansNoStaleAnswers: with the database unreachable, a
// replica answers 503 (retry later) rather than serve cached state it can
// no longer prove fresh, and serves from memory again once it is back.
func TestDatabaseDownMeansNoStaleAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := pgtest.NewServer(t)
	r := startReplica(t, pgtest.CreateDB(t, pg.AdminURL()))
	tok, hash, _ := billing.NewToken(billing.ScopeApp)
	if _, err := r.st.TokenCreate(ctx, "backend", billing.ScopeApp, hash); err != nil {
		t.Fatal(err)
	}
	r.waitFresh(t)
	if r.entitled(t, "acct_d", tok) { // cached, with the token
		t.Fatal("unknown account entitled")
	}
	if err := pg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(bound) // after this no proof of freshness can be recent
	if code, body := r.get(t, "/v1/accounts/acct_d/entitlement", tok); code != http.StatusServiceUnavailable {
		t.Fatalf("database down: %d %v, want 503", code, body)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.waitFresh(t)
	if code, body := r.get(t, "/v1/accounts/acct_d/entitlement", tok); code != http.StatusOK {
		t.Fatalf("database back: %d %v, want 200", code, body)
	}
}
