package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/stripe/stripe-go/v76/webhook"
)

// replicaEvent is one Stripe event of the generated stream.
type replicaEvent struct {
	id      string
	payload []byte
}

// lifecycleEvents generates n events: subscriptions that go trialing →
// active → more seats → new price → past_due → active → cancel scheduled →
// deleted, each with its own customer and account, one event per 10 s of a
// subscription's life so the in-order run has one right answer.
func lifecycleEvents(n int, seed int64) []replicaEvent {
	type step struct {
		typ       string
		status    string
		qty       int
		price     string
		amount    int
		cancelEnd bool
	}
	steps := []step{
		{"customer.subscription.created", "trialing", 1, "price_basic", 2000, false},
		{"customer.subscription.updated", "active", 1, "price_basic", 2000, false},
		{"customer.subscription.updated", "active", 3, "price_basic", 2000, false},
		{"customer.subscription.updated", "active", 3, "price_pro", 5000, false},
		{"customer.subscription.updated", "past_due", 3, "price_pro", 5000, false},
		{"customer.subscription.updated", "active", 3, "price_pro", 5000, false},
		{"customer.subscription.updated", "active", 3, "price_pro", 5000, true},
		{"customer.subscription.deleted", "canceled", 3, "price_pro", 5000, true},
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	var out []replicaEvent
	for s := 0; len(out) < n; s++ {
		sub, cus := fmt.Sprintf("sub_rep%06d", s), fmt.Sprintf("cus_rep%06d", s)
		t0 := base + int64(s)*3600
		for k, st := range steps {
			if len(out) >= n {
				break
			}
			created := t0 + int64(k)*10
			obj := map[string]any{
				"id": sub, "object": "subscription", "customer": cus, "status": st.status,
				"currency": "usd", "livemode": true, "created": t0, "start_date": t0,
				"current_period_start": created, "current_period_end": created + 30*86400,
				"cancel_at_period_end": st.cancelEnd, "cancel_at": nil, "canceled_at": nil, "ended_at": nil,
				"trial_start": nil, "trial_end": nil, "discount": nil, "pause_collection": nil,
				"metadata": map[string]any{"account_id": fmt.Sprintf("acct_rep%06d", s), "note": "Call Jane Replica on +1 555 0100"},
				"items": map[string]any{"object": "list", "has_more": false, "data": []any{map[string]any{
					"id": "si_" + sub[4:], "object": "subscription_item", "quantity": st.qty,
					"price": map[string]any{"id": st.price, "object": "price", "product": "prod_" + st.price[6:],
						"currency": "usd", "unit_amount": st.amount, "unit_amount_decimal": strconv.Itoa(st.amount),
						"billing_scheme": "per_unit", "type": "recurring",
						"recurring": map[string]any{"interval": "month", "interval_count": 1, "usage_type": "licensed"}},
				}}},
			}
			if st.status == "trialing" {
				obj["trial_start"], obj["trial_end"] = t0, t0+14*86400
			}
			if st.status == "canceled" {
				obj["canceled_at"], obj["ended_at"] = created, created
			}
			id := fmt.Sprintf("evt_rep%06d_%d", s, k)
			ev := map[string]any{
				"id": id, "object": "event", "api_version": "2023-10-16", "created": created,
				"livemode": true, "type": st.typ, "pending_webhooks": 1,
				"data":    map[string]any{"object": obj, "previous_attributes": map[string]any{}},
				"request": map[string]any{"id": nil, "idempotency_key": nil},
			}
			b, _ := json.Marshal(ev)
			out = append(out, replicaEvent{id: id, payload: b})
		}
	}
	_ = seed
	return out
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// sender delivers events to replicas round-robin until every event got a
// 2xx, redelivering (like Stripe) whatever got a 5xx or no answer.
type sender struct {
	secret string
	addrs  func() []string
	client *http.Client
	next   atomic.Uint64
	acked  atomic.Int64
	retry  atomic.Int64
}

func (s *sender) deliver(ctx context.Context, ev replicaEvent) error {
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return fmt.Errorf("event %s not acknowledged: %w", ev.id, ctx.Err())
		}
		addrs := s.addrs()
		addr := addrs[int(s.next.Add(1))%len(addrs)]
		signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: ev.payload, Secret: s.secret, Timestamp: time.Now()})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/webhooks/stripe", strings.NewReader(string(ev.payload)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", signed.Header)
		resp, err := s.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				s.acked.Add(1)
				return nil
			}
			if resp.StatusCode/100 == 4 {
				return fmt.Errorf("event %s: %d", ev.id, resp.StatusCode)
			}
		}
		s.retry.Add(1)
		time.Sleep(time.Duration(20+attempt*10) * time.Millisecond)
	}
}

// stateDump is the comparable final state: everything keyed by Stripe IDs
// (surrogate refs are random per database, so they are mapped back).
func stateDump(t *testing.T, url string) map[string][]string {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	queries := map[string]string{
		// Outcomes (applied/stale) and outbox rows legitimately depend on
		// arrival order; the state they lead to must not.
		"events":        `SELECT event_id || ' ' || event_type FROM stripe_events`,
		"customers":     `SELECT stripe_customer_id || ' ' || coalesce(account_id, '-') || ' ' || deleted FROM customers`,
		"subscriptions": `SELECT concat_ws(' ', stripe_subscription_id, status, items::text, mrr_minor, cancel_at_period_end, version_at, version_rank, version_event) FROM subscriptions`,
		"versions": `SELECT concat_ws(' ', s.stripe_subscription_id, v.status, v.mrr_minor, v.version_at, v.version_event)
		               FROM subscription_versions v JOIN subscriptions s USING (subscription_ref)`,
		"movements": `SELECT concat_ws(' ', c.stripe_customer_id, m.kind, m.delta_minor, m.effective_at, m.customer_mrr_before, m.customer_mrr_after)
		               FROM mrr_movements m JOIN customers c USING (customer_ref)`,
	}
	out := map[string][]string{}
	for name, q := range queries {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out[name] = append(out[name], s)
		}
		rows.Close()
		sort.Strings(out[name])
	}
	return out
}

// Three replicas on one PostgreSQL, a shuffled stream with 20% duplicates,
// one replica killed with SIGKILL and restarted and PostgreSQL restarted
// during the load: every event is applied exactly once and the final state
// equals a single replica's in-order run. It runs twice: with the replicas
// connected directly, and through PgBouncer in transaction mode (the
// pooling of managed PostgreSQL; DATABASE_SESSION_URL direct for the
// session locks), where statements must not outlive their transaction.
// REPLICA_TEST_EVENTS sets the size (default 2000 for CI; 10000+ by hand).
func TestReplicasUnderFaults(t *testing.T) {
	n := envInt("REPLICA_TEST_EVENTS", 2000)
	secret := "whsec_replicatest_0123456789abcdef"
	events := lifecycleEvents(n, 1)
	srv := pgtest.NewServer(t)

	// Reference: one replica, in order, one at a time.
	refURL := pgtest.CreateDB(t, srv.AdminURL())
	refAddr := freeAddr(t)
	ref := startBillingd(t, []string{"DATABASE_URL=" + refURL, "LISTEN_ADDR=" + refAddr, "STRIPE_WEBHOOK_SECRETS=" + secret, "LOG_LEVEL=warn"})
	waitReady(t, ref, refAddr, 60*time.Second)
	refSender := &sender{secret: secret, addrs: func() []string { return []string{refAddr} }, client: &http.Client{Timeout: 10 * time.Second}}
	// Generous: a bound on a stuck run, not a performance goal (the
	// machine may be busy with other tests).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	for _, ev := range events {
		if err := refSender.deliver(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	stopWithSignal(t, ref, syscall.SIGTERM)
	want := stateDump(t, refURL)
	if len(want["events"]) != n {
		t.Fatalf("reference run recorded %d events, want %d", len(want["events"]), n)
	}

	for _, mode := range []string{"direct", "pgbouncer"} {
		t.Run(mode, func(t *testing.T) {
			url := pgtest.CreateDB(t, srv.AdminURL())
			dbEnv := []string{"DATABASE_URL=" + url}
			if mode == "pgbouncer" {
				b := pgtest.StartPgBouncer(t, srv.AdminURL())
				dbEnv = []string{"DATABASE_URL=" + b.URL(url), "DATABASE_SESSION_URL=" + url}
			}
			replicasUnderFaults(t, srv, events, secret, dbEnv)
			got := stateDump(t, url)
			for name := range want {
				if strings.Join(got[name], "\n") != strings.Join(want[name], "\n") {
					t.Errorf("%s differ from the in-order single-replica run: got %d rows, want %d\nfirst got:  %v\nfirst want: %v",
						name, len(got[name]), len(want[name]), head(got[name]), head(want[name]))
				}
			}
		})
	}
}

// replicasUnderFaults delivers events to three replicas with dbEnv, with
// duplicates, a replica killed and restarted and srv restarted mid-load,
// until every delivery is acknowledged.
func replicasUnderFaults(t *testing.T, srv *pgtest.Server, events []replicaEvent, secret string, dbEnv []string) {
	n := len(events)
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	env := func(addr string) []string {
		return append([]string{"LISTEN_ADDR=" + addr, "STRIPE_WEBHOOK_SECRETS=" + secret, "LOG_LEVEL=warn", "DB_MAX_CONNS=8"}, dbEnv...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var mu sync.Mutex
	procs := make([]*proc, 3)
	for i, a := range addrs {
		procs[i] = startBillingd(t, env(a))
	}
	for i, a := range addrs {
		waitReady(t, procs[i], a, 60*time.Second)
	}

	rng := rand.New(rand.NewSource(42))
	stream := append([]replicaEvent(nil), events...)
	for i := 0; i < n/5; i++ {
		stream = append(stream, events[rng.Intn(len(events))])
	}
	rng.Shuffle(len(stream), func(i, j int) { stream[i], stream[j] = stream[j], stream[i] })

	s := &sender{secret: secret, addrs: func() []string { mu.Lock(); defer mu.Unlock(); return addrs }, client: &http.Client{Timeout: 10 * time.Second}}
	work := make(chan replicaEvent)
	errs := make(chan error, len(stream))
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range work {
				if err := s.deliver(ctx, ev); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i, ev := range stream {
		switch i {
		case len(stream) / 3:
			// kill -9 one replica mid-load, restart it on the same address.
			victim := procs[1]
			if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-victim.done
			procs[1] = startBillingd(t, env(addrs[1]))
			waitReady(t, procs[1], addrs[1], 60*time.Second)
		case 2 * len(stream) / 3:
			// Restart PostgreSQL under load: replicas answer 503, the
			// sender redelivers, nothing is lost.
			if err := srv.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			if err := srv.Start(ctx); err != nil {
				t.Fatal(err)
			}
		}
		work <- ev
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("events %d (with duplicates %d), acknowledged deliveries %d, redeliveries %d", n, len(stream), s.acked.Load(), s.retry.Load())

	for _, p := range procs {
		stopWithSignal(t, p, syscall.SIGTERM)
	}
}

func head(s []string) []string {
	if len(s) > 3 {
		return s[:3]
	}
	return s
}
