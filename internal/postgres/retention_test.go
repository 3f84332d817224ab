package postgres_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

const day = 24 * time.Hour

func TestPurgeEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	for _, age := range []int{40, 31, 29, 10, 1} {
		if _, err := st.DB().ExecContext(ctx, `INSERT INTO stripe_events (event_id, event_type, created, livemode, outcome, received_at)
			VALUES ('evt_age' || $1::int::text, 'customer.updated', now(), true, 'applied', now() - make_interval(days => $1::int))`, age); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		retention time.Duration
		batch     int
		deleted   int64
		left      int
		wantErr   error
	}{
		{"ErrBelowStripeRetryWindow", 2 * day, 0, 0, 5, billing.ErrInvalid},
		{"ThirtyDaysInBatchesOfOne", 30 * day, 1, 2, 3, nil},
		{"AgainDeletesNothing", 30 * day, 0, 0, 3, nil},
		{"ThreeDays", 3 * day, 0, 2, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := st.Purge(ctx, postgres.RetentionPolicy{EventRetention: tt.retention, BatchSize: tt.batch})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if res.Events != tt.deleted {
				t.Errorf("deleted %d events, want %d", res.Events, tt.deleted)
			}
			if n := countRows(t, st, `SELECT count(*) FROM stripe_events`); n != tt.left {
				t.Errorf("%d events left, want %d", n, tt.left)
			}
		})
	}
}

// TestPurgeOneReplicaAtATime: while another session holds the purge lock,
// a purge skips and deletes nothing.
func TestPurgeOneReplicaAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO stripe_events (event_id, event_type, created, livemode, outcome, received_at)
		VALUES ('evt_old', 'customer.updated', now(), true, 'applied', now() - interval '90 days')`); err != nil {
		t.Fatal(err)
	}
	conn, err := st.DB().Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, postgres.PurgeLockKey); err != nil {
		t.Fatal(err)
	}
	res, err := st.Purge(ctx, postgres.RetentionPolicy{EventRetention: 30 * day})
	if err != nil || !res.Skipped || res.Events != 0 {
		t.Fatalf("purge while locked = %+v, %v; want skipped", res, err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, postgres.PurgeLockKey); err != nil {
		t.Fatal(err)
	}
	res, err = st.Purge(ctx, postgres.RetentionPolicy{EventRetention: 30 * day})
	if err != nil || res.Skipped || res.Events != 1 {
		t.Fatalf("purge after unlock = %+v, %v; want one event deleted", res, err)
	}
}

// TestPurgeMetricsHistory: a customer whose history closed before the
// cutoff loses it; one still paying keeps all of it, however old; the
// figures after the cutoff do not change.
func TestPurgeMetricsHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	old := time.Date(2024, time.March, 1, 12, 0, 0, 0, time.UTC)
	ended := old.AddDate(0, 2, 0)
	closed := newFixture("PC", 1)
	open := newFixture("PO", 1)
	start := billing.Event{ID: "evt_PCstart", Type: "customer.subscription.created", Created: old, Livemode: true,
		Subscription: subscriptionOf(closed.cus[0], closed.subs[0], true, billing.StatusActive, 3000, old)}
	end := billing.Event{ID: "evt_PCend", Type: "customer.subscription.deleted", Created: ended, Livemode: true,
		Subscription: subscriptionOf(closed.cus[0], closed.subs[0], true, billing.StatusCanceled, 3000, old)}
	end.Subscription.EndedAt, end.Subscription.CanceledAt = &ended, &ended
	openStart := billing.Event{ID: "evt_POstart", Type: "customer.subscription.created", Created: old, Livemode: true,
		Subscription: subscriptionOf(open.cus[0], open.subs[0], true, billing.StatusActive, 7000, old)}
	applyAll(t, st, []billing.Event{start, end, openStart})
	openRef := ""
	if err := st.DB().Get(&openRef, `SELECT customer_ref FROM customers WHERE stripe_customer_id = $1`, open.cus[0]); err != nil {
		t.Fatal(err)
	}
	rq := billing.RevenueQuery{Livemode: true, Currency: "eur", Bucket: billing.BucketMonth,
		From: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	before, err := st.Revenue(ctx, rq)
	if err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, st, `SELECT count(*) FROM mrr_movements WHERE customer_ref <> $1`, openRef); n == 0 {
		t.Fatal("closed customer has no movements: the purge would prove nothing")
	}

	res, err := st.Purge(ctx, postgres.RetentionPolicy{EventRetention: 30 * day, MetricsRetention: 365 * day})
	if err != nil {
		t.Fatal(err)
	}
	if res.Customers != 1 || res.Movements == 0 || res.Versions != 2 {
		t.Errorf("purge = %+v, want the closed customer's history (2 versions, its movements)", res)
	}
	for _, table := range []string{"mrr_movements", "subscription_versions", "subscription_activity"} {
		if n := countRows(t, st, `SELECT count(*) FROM `+table+` WHERE customer_ref <> $1`, openRef); n != 0 {
			t.Errorf("%s: %d rows of the closed customer left", table, n)
		}
	}
	if n := countRows(t, st, `SELECT count(*) FROM subscription_versions WHERE customer_ref = $1`, openRef); n != 1 {
		t.Errorf("open customer has %d versions, want its 1 kept", n)
	}
	after, err := st.Revenue(ctx, rq)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, before) {
		t.Errorf("figures after the cutoff changed:\n got %+v\nwant %+v", after, before)
	}
}
