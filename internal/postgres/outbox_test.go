package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

const (
	custRef = "11111111-1111-4111-8111-111111111111"
	subRef  = "22222222-2222-4222-8222-222222222222"
)

func TestOutboxEnqueueSubscriptionSync(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	live := billing.Subscription{ID: "sub_X", CustomerID: "cus_X", Livemode: true, Status: billing.StatusActive, Currency: "usd",
		Items: []billing.Item{{PriceID: "price_1", Quantity: 1, UnitAmount: 1500, Interval: billing.IntervalMonth, IntervalCount: 1}}}
	canceled := live
	canceled.Status = billing.StatusCanceled
	test := live
	test.Livemode = false
	tests := []struct {
		name        string
		ch          postgres.SubscriptionChange
		wantActions []string
		wantErr     error
	}{
		{"OKCreate", postgres.SubscriptionChange{Next: live, CustomerRef: custRef, SubscriptionRef: subRef, At: at}, []string{"create"}, nil},
		{"OKChurn", postgres.SubscriptionChange{Prev: &live, Next: canceled, CustomerRef: custRef, SubscriptionRef: subRef, At: at}, []string{"churn"}, nil},
		{"TestModeNothing", postgres.SubscriptionChange{Next: test, CustomerRef: custRef, SubscriptionRef: subRef, At: at}, nil, nil},
		{"ErrStripeIDAsRef", postgres.SubscriptionChange{Next: live, CustomerRef: "cus_X", SubscriptionRef: "sub_X", At: at}, nil, billing.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := pgtest.Open(t)
			ctx := context.Background()
			err := st.EnqueueSubscriptionSyncForTest(ctx, tt.ch)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("enqueue: err = %v, want %v", err, tt.wantErr)
			}
			rows, err := st.OutboxRows(ctx, billing.OutboxProfitWell, "")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rows {
				got = append(got, r.Action)
				if r.OrderingKey != "profitwell:"+custRef {
					t.Errorf("ordering key = %q", r.OrderingKey)
				}
				var p billing.SyncPayload
				if err := json.Unmarshal(r.Payload, &p); err != nil {
					t.Fatal(err)
				}
				if p.CustomerRef != custRef || p.SubscriptionRef != subRef {
					t.Errorf("payload refs = %+v", p)
				}
				for _, bad := range []string{"cus_", "sub_"} {
					if strings.Contains(string(r.Payload), bad) {
						t.Errorf("payload %s holds a Stripe ID", r.Payload)
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantActions) {
				t.Errorf("actions = %v, want %v", got, tt.wantActions)
			}
		})
	}
}

// enqueue appends n rows for ordering key key and returns their IDs.
func enqueue(t *testing.T, st *postgres.Store, key string, n int) []int64 {
	t.Helper()
	var ids []int64
	for i := 0; i < n; i++ {
		id, err := st.OutboxEnqueue(context.Background(), postgres.OutboxEntry{Kind: billing.OutboxProfitWell, OrderingKey: key, Action: "update", Payload: map[string]int{"seq": i}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func claimIDs(t *testing.T, st *postgres.Store, lease time.Duration) ([]int64, []billing.OutboxJob) {
	t.Helper()
	jobs, err := st.OutboxClaim(context.Background(), billing.OutboxProfitWell, 100, lease)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	return ids, jobs
}

func TestOutboxClaimOrdering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("OneRowPerKeyInFlight", func(t *testing.T) {
		t.Parallel()
		st := pgtest.Open(t)
		a := enqueue(t, st, "k:a", 3)
		b := enqueue(t, st, "k:b", 1)
		got, jobs := claimIDs(t, st, time.Minute)
		if fmt.Sprint(got) != fmt.Sprint([]int64{a[0], b[0]}) {
			t.Fatalf("first claim = %v, want %v", got, []int64{a[0], b[0]})
		}
		if again, _ := claimIDs(t, st, time.Minute); len(again) != 0 {
			t.Fatalf("claimed %v while predecessors in flight", again)
		}
		if err := st.OutboxMarkSent(ctx, jobs[0].ID, jobs[0].Attempts, 201); err != nil {
			t.Fatal(err)
		}
		if got, _ := claimIDs(t, st, time.Minute); fmt.Sprint(got) != fmt.Sprint([]int64{a[1]}) {
			t.Fatalf("after sent: claim = %v, want %v", got, a[1:2])
		}
	})
	t.Run("RetryingRowBlocksSuccessor", func(t *testing.T) {
		t.Parallel()
		st := pgtest.Open(t)
		a := enqueue(t, st, "k:a", 2)
		_, jobs := claimIDs(t, st, time.Minute)
		if err := st.OutboxRetryLater(ctx, jobs[0].ID, jobs[0].Attempts, 0, 500, "http 500", true); err != nil {
			t.Fatal(err)
		}
		got, jobs := claimIDs(t, st, time.Minute)
		if fmt.Sprint(got) != fmt.Sprint(a[:1]) || jobs[0].Attempts != 2 {
			t.Fatalf("claim after retry = %v (%+v), want %v on attempt 2", got, jobs, a[:1])
		}
	})
	t.Run("ThrottledAttemptGivenBack", func(t *testing.T) {
		t.Parallel()
		st := pgtest.Open(t)
		enqueue(t, st, "k:a", 1)
		_, jobs := claimIDs(t, st, time.Minute)
		if err := st.OutboxRetryLater(ctx, jobs[0].ID, jobs[0].Attempts, 0, 429, "throttled", false); err != nil {
			t.Fatal(err)
		}
		if _, jobs := claimIDs(t, st, time.Minute); len(jobs) != 1 || jobs[0].Attempts != 1 {
			t.Fatalf("claim after 429 = %+v, want attempt 1 again", jobs)
		}
	})
	t.Run("DeadRowDoesNotBlock", func(t *testing.T) {
		t.Parallel()
		st := pgtest.Open(t)
		a := enqueue(t, st, "k:a", 2)
		_, jobs := claimIDs(t, st, time.Minute)
		if err := st.OutboxMarkDead(ctx, jobs[0].ID, jobs[0].Attempts, 400, "http 400: bad"); err != nil {
			t.Fatal(err)
		}
		if got, _ := claimIDs(t, st, time.Minute); fmt.Sprint(got) != fmt.Sprint(a[1:]) {
			t.Fatalf("claim after dead = %v, want %v", got, a[1:])
		}
	})
	t.Run("ExpiredLeaseReclaimedAndStaleOutcomeRefused", func(t *testing.T) {
		t.Parallel()
		st := pgtest.Open(t)
		enqueue(t, st, "k:a", 1)
		_, first := claimIDs(t, st, 0) // lease already over: as if the worker died
		_, second := claimIDs(t, st, time.Minute)
		if len(second) != 1 || second[0].Attempts != 2 {
			t.Fatalf("reclaim = %+v, want the row on attempt 2", second)
		}
		if err := st.OutboxMarkSent(ctx, first[0].ID, first[0].Attempts, 200); !errors.Is(err, billing.ErrConflict) {
			t.Fatalf("stale mark sent: err = %v, want ErrConflict", err)
		}
		if err := st.OutboxMarkSent(ctx, second[0].ID, second[0].Attempts, 200); err != nil {
			t.Fatal(err)
		}
	})
}

func TestOutboxConcurrentClaimersExactlyOnceInOrder(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	const keys, perKey = 8, 12
	want := map[string][]int64{}
	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("k:%d", k)
		want[key] = enqueue(t, st, key, perKey)
	}
	var mu sync.Mutex
	got := map[string][]int64{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idle := 0; idle < 20; {
				jobs, err := st.OutboxClaim(ctx, billing.OutboxProfitWell, 3, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(jobs) == 0 {
					idle++
					time.Sleep(5 * time.Millisecond)
					continue
				}
				idle = 0
				for _, j := range jobs {
					mu.Lock()
					got[j.OrderingKey] = append(got[j.OrderingKey], j.ID)
					mu.Unlock()
					if err := st.OutboxMarkSent(ctx, j.ID, j.Attempts, 200); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	for key, ids := range want {
		if fmt.Sprint(got[key]) != fmt.Sprint(ids) {
			t.Errorf("key %s delivered %v, want %v", key, got[key], ids)
		}
	}
}

func TestOutboxRetryDeadAndStats(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	enqueue(t, st, "k:a", 1)
	enqueue(t, st, "k:b", 1)
	enqueue(t, st, "k:c", 1)
	_, jobs := claimIDs(t, st, time.Minute)
	for _, j := range jobs[:2] {
		if err := st.OutboxMarkDead(ctx, j.ID, j.Attempts, 400, "http 400"); err != nil {
			t.Fatal(err)
		}
	}
	stats, err := st.OutboxStats(ctx, billing.OutboxProfitWell)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Pending != 1 || stats.Dead != 2 || stats.OldestPending < 0 {
		t.Fatalf("stats = %+v, want 1 pending, 2 dead", stats)
	}
	t.Run("ErrNotFoundForUnknownID", func(t *testing.T) {
		if _, err := st.OutboxRetryDead(ctx, billing.OutboxProfitWell, 999999); !errors.Is(err, billing.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("OneByID", func(t *testing.T) {
		n, err := st.OutboxRetryDead(ctx, billing.OutboxProfitWell, jobs[0].ID)
		if err != nil || n != 1 {
			t.Fatalf("retry one: n=%d err=%v", n, err)
		}
	})
	t.Run("All", func(t *testing.T) {
		n, err := st.OutboxRetryDead(ctx, billing.OutboxProfitWell, 0)
		if err != nil || n != 1 {
			t.Fatalf("retry all: n=%d err=%v", n, err)
		}
		stats, _ := st.OutboxStats(ctx, billing.OutboxProfitWell)
		if stats.Pending != 3 || stats.Dead != 0 {
			t.Fatalf("stats after retry = %+v", stats)
		}
	})
}

// The /metrics gauges agree with the exact stats while the queue is under
// their limit, count pending rows only up to it beyond, and read no more
// than that (the plan is bounded: a LIMIT over outbox_pending_idx, and
// outbox_dead_idx for the dead).
func TestOutboxGauges(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	for i := range 5 {
		enqueue(t, st, fmt.Sprintf("k:g%d", i), 1)
	}
	_, jobs := claimIDs(t, st, time.Minute)
	if err := st.OutboxMarkDead(ctx, jobs[0].ID, jobs[0].Attempts, 400, "http 400"); err != nil {
		t.Fatal(err)
	}
	exact, err := st.OutboxStats(ctx, billing.OutboxProfitWell)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name       string
		limit      int
		pending    int64
		sameOldest bool
	}{
		{"UnderLimit", 100, 4, true},
		{"AtLimit", 3, 3, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g, err := st.OutboxGauges(ctx, billing.OutboxProfitWell, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if g.Pending != tt.pending || g.Dead != exact.Dead || g.OldestPending <= 0 {
				t.Fatalf("gauges %+v with limit %d, want %d pending, %d dead (exact %+v)", g, tt.limit, tt.pending, exact.Dead, exact)
			}
			if tt.sameOldest && (g.OldestPending-exact.OldestPending).Abs() > time.Second {
				t.Fatalf("oldest pending %v, exact %v", g.OldestPending, exact.OldestPending)
			}
		})
	}
	t.Run("BoundedPlan", func(t *testing.T) {
		// On a table this small the planner may prefer a scan: forbid it,
		// so the plan shows whether the index serves the count at all.
		tx, err := st.DB().Beginx()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck // read only
		var plan []string
		if _, err := tx.Exec(`SET LOCAL enable_seqscan = off`); err != nil {
			t.Fatal(err)
		}
		if err := tx.Select(&plan, `EXPLAIN SELECT count(*) FROM outbox WHERE kind = 'profitwell' AND state = 'dead'`); err != nil {
			t.Fatal(err)
		}
		if p := strings.Join(plan, "\n"); !strings.Contains(p, "outbox_dead_idx") {
			t.Fatalf("dead rows not counted on outbox_dead_idx:\n%s", p)
		}
	})
}

func TestOutboxEnqueueValidation(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	tests := []struct {
		name string
		e    postgres.OutboxEntry
	}{
		{"ErrNoKind", postgres.OutboxEntry{OrderingKey: "k", Action: "a", Payload: 1}},
		{"ErrLongKey", postgres.OutboxEntry{Kind: "stripe", OrderingKey: string(make([]byte, 81)), Action: "a", Payload: 1}},
		{"ErrUnknownKind", postgres.OutboxEntry{Kind: "mailchimp", OrderingKey: "k", Action: "a", Payload: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := st.OutboxEnqueue(context.Background(), tt.e); !errors.Is(err, billing.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestOutboxPurgeSent(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	ids := enqueue(t, st, "k:a", 2)
	_, jobs := claimIDs(t, st, time.Minute)
	if err := st.OutboxMarkSent(ctx, jobs[0].ID, jobs[0].Attempts, 201); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, `UPDATE outbox SET sent_at = now() - interval '2 days' WHERE id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		kind string
		want int64
	}{
		{"OtherKindUntouched", billing.OutboxStripe, 0},
		{"OldSentRowDeleted", billing.OutboxProfitWell, 1},
		{"PendingRowsKept", billing.OutboxProfitWell, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := st.OutboxPurgeSent(ctx, tt.kind, 24*time.Hour)
			if err != nil || n != tt.want {
				t.Fatalf("purged %d (err %v), want %d", n, err, tt.want)
			}
		})
	}
	if rows, _ := st.OutboxRows(ctx, billing.OutboxProfitWell, ""); len(rows) != 1 || rows[0].ID != ids[1] {
		t.Fatalf("rows left = %+v, want only the pending one", rows)
	}
}
