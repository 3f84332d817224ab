package postgres_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// seedSub stores a customer (if new) and one subscription as the event path
// would, with a monthly item of unit minor units.
func seedSub(t *testing.T, st *postgres.Store, cus, sub, status string, livemode bool, unit int64) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO customers (stripe_customer_id, livemode) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`, cus, livemode); err != nil {
		t.Fatal(err)
	}
	items, _ := json.Marshal([]billing.Item{{PriceID: "price_b", Quantity: 1, UnitAmount: unit, Interval: billing.IntervalMonth, IntervalCount: 1}})
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, customer_ref, livemode,
		status, currency, items, start_date, version_at, version_rank, version_event)
		SELECT $1, $2, customer_ref, $3, $4, 'usd', $5, now() - interval '30 days', now(), 0, 'evt_seed'
		FROM customers WHERE stripe_customer_id = $2`, sub, cus, livemode, status, string(items)); err != nil {
		t.Fatal(err)
	}
}

func TestProfitWellBackfill(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	seedSub(t, st, "cus_B1", "sub_B1a", "active", true, 1000)
	seedSub(t, st, "cus_B1", "sub_B1b", "canceled", true, 2000)
	seedSub(t, st, "cus_B2", "sub_B2", "incomplete", true, 500)
	seedSub(t, st, "cus_T", "sub_T", "active", false, 900) // test mode: never sent

	t.Run("DryRunWritesNothing", func(t *testing.T) {
		sum, err := st.ProfitWellBackfill(ctx, time.Now(), true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Subscriptions != 3 || sum.Skipped != 1 || sum.Rows["create"] != 2 || sum.Rows["churn"] != 1 {
			t.Fatalf("summary = %+v", sum)
		}
		if rows, _ := st.OutboxRows(ctx, billing.OutboxProfitWell, ""); len(rows) != 0 {
			t.Fatalf("dry run wrote %d rows", len(rows))
		}
	})
	t.Run("OKQueuesCurrentStateWithoutStripeIDs", func(t *testing.T) {
		calls := 0
		sum, err := st.ProfitWellBackfill(ctx, time.Now(), false, func(done, total int) { calls++ })
		if err != nil {
			t.Fatal(err)
		}
		if calls != 2 || sum.Customers != 2 {
			t.Fatalf("progress calls = %d, summary = %+v", calls, sum)
		}
		rows, _ := st.OutboxRows(ctx, billing.OutboxProfitWell, "")
		var actions []string
		for _, r := range rows {
			actions = append(actions, r.Action)
			if strings.Contains(string(r.Payload), "cus_") || strings.Contains(string(r.Payload), "sub_") {
				t.Errorf("payload holds a Stripe ID: %s", r.Payload)
			}
		}
		// Per subscription in ref order; the canceled one is created then churned.
		if got := strings.Join(actions, ","); len(rows) != 3 || strings.Count(got, "create") != 2 || !strings.Contains(got, "create,churn") {
			t.Fatalf("actions = %s", got)
		}
	})
}
