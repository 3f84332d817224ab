package webhooks_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
	"github.com/jmoiron/sqlx"
)

// A row locked by another transaction delays only the event that needs it:
// the other events of its batch are committed and answered 200 while the
// lock is still held, and the locked one is answered 503 at its deadline,
// stores nothing, and is applied on retry.
func TestLockedRowDelaysOnlyItsEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// One leader slot, so that the batches are as the test arranges them.
	st, err := postgres.Open(ctx, pgtest.URL(t), slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 8, EventBatchers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var queued atomic.Int64
	st.ObserveEventQueue(func(n int) { queued.Store(int64(n)) })
	type batchSeen struct {
		events int
		failed bool
	}
	var mu sync.Mutex
	var batches []batchSeen
	st.ObserveEventBatches(func(events int, _ time.Duration, err error) {
		mu.Lock()
		batches = append(batches, batchSeen{events, err != nil})
		mu.Unlock()
	})
	b := setupWith(t, st, webhooks.Config{ApplyTimeout: 6 * time.Second})
	created := webhookstest.FixtureNamed(t, "v2023_01_customer.created").Payload
	sub := webhookstest.FixtureNamed(t, "v2023_03_customer.subscription.created").Payload
	// Customers "hold" and "hot" exist; each will be locked by a transaction.
	for _, k := range []string{"hold", "hot"} {
		if r := b.post(t, renamedBy(created, k)); r.Outcome() != "applied" {
			t.Fatalf("customer %s: %d %s", k, r.Status, r.Body)
		}
	}
	lock := func(k string) *sqlx.Tx {
		tx, err := st.DB().Beginx()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback() })
		if _, err := tx.Exec(`SELECT 1 FROM customers WHERE stripe_customer_id = $1 FOR UPDATE`, "cus_PiiLife1"+k); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	holdTx, hotTx := lock("hold"), lock("hot")

	// "hold"'s event takes the only slot and waits for its row...
	holdDone := make(chan webhookstest.Response, 1)
	go func() { holdDone <- b.post(t, renamedBy(sub, "hold")) }()
	waitFor(t, "an event waiting for a row lock", func() bool {
		var n int
		_ = st.DB().Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
		return n > 0
	})
	// ...while "hot"'s event and ten others queue behind it, to form the
	// next batch together.
	others := make([]string, 10)
	for i := range others {
		others[i] = fmt.Sprintf("other%d", i)
	}
	answers := make(chan struct {
		k string
		r webhookstest.Response
	}, len(others)+1)
	for _, k := range append([]string{"hot"}, others...) {
		go func() {
			answers <- struct {
				k string
				r webhookstest.Response
			}{k, b.post(t, renamedBy(sub, k))}
		}()
	}
	waitFor(t, "eleven queued events", func() bool { return queued.Load() == int64(len(others)+1) })
	if err := holdTx.Rollback(); err != nil { // "hold" goes through; the next batch starts
		t.Fatal(err)
	}
	if r := <-holdDone; r.Outcome() != "applied" {
		t.Fatalf("hold: %d %s", r.Status, r.Body)
	}

	// Every other event is answered while "hot" is still locked.
	for range others {
		a := <-answers
		if a.k == "hot" {
			t.Fatalf("the locked event was answered (%d %s) before the others of its batch", a.r.Status, a.r.Body)
		}
		if a.r.Outcome() != "applied" {
			t.Errorf("%s: %d %s, want 200 applied while another event's row is locked", a.k, a.r.Status, a.r.Body)
		}
	}
	a := <-answers
	hot := &a.r
	if a.k != "hot" || hot.Status != http.StatusServiceUnavailable {
		t.Fatalf("%s: %d %s, want hot answered 503", a.k, hot.Status, hot.Body)
	}
	mu.Lock()
	sharedBatch := slices.Contains(batches, batchSeen{len(others) + 1, true})
	mu.Unlock()
	if !sharedBatch {
		t.Fatalf("batches %v: the locked event was not in a failed batch with the others; the test did not arrange what it claims", batches)
	}
	if err := hotTx.Rollback(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := st.DB().Get(&n, `SELECT count(*) FROM subscriptions WHERE stripe_subscription_id = 'sub_PiiLife1hot'`); err != nil || n != 0 {
		t.Fatalf("the event answered 503 stored %d subscriptions (%v)", n, err)
	}
	if r := b.post(t, renamedBy(sub, "hot")); r.Outcome() != "applied" {
		t.Fatalf("retry of hot: %d %s", r.Status, r.Body)
	}
}

// renamedBy gives a fixture the IDs of customer, subscription, account and
// events suffixed by k.
func renamedBy(p []byte, k string) []byte {
	return webhookstest.Rewrite(p, "sub_PiiLife1", "sub_PiiLife1"+k, "cus_PiiLife1", "cus_PiiLife1"+k,
		`"acct_life_1"`, `"acct_life_1`+k+`"`, `"evt_1Pii`, `"evt_1Pii`+k)
}

// waitFor polls cond until it holds; a minute without is a failure (a
// hang guard, not a timing goal).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after a minute", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
