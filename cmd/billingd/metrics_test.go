package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/metricstest"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

func TestMetricsRebuildCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := postgres.Open(ctx, url, nil, postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.MigrateUp(); err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	item := billing.Item{PriceID: "price_1", Quantity: 1, UnitAmount: 2000, Interval: billing.IntervalMonth, IntervalCount: 1}
	live := billing.Subscription{Status: billing.StatusActive, Livemode: true, Currency: "usd", Items: []billing.Item{item}}
	gone := live
	gone.Status = billing.StatusCanceled
	// An erased customer (no customers row) and a linked one.
	erased, linked := "00000000-0000-4000-8000-0000000000e1", "00000000-0000-4000-8000-0000000000e2"
	history := map[string][]billing.SubscriptionVersion{
		erased: {
			{SubscriptionRef: "10000000-0000-4000-8000-0000000000e1", At: at("2026-01-05T00:00:00Z"), Event: "evt_1", State: live},
			{SubscriptionRef: "10000000-0000-4000-8000-0000000000e1", At: at("2026-03-05T00:00:00Z"), Event: "evt_2", State: gone},
		},
		linked: {{SubscriptionRef: "10000000-0000-4000-8000-0000000000e2", At: at("2026-02-05T00:00:00Z"), Event: "evt_3", State: live}},
	}
	if _, err := st.DB().Exec(`INSERT INTO customers (stripe_customer_id, customer_ref, livemode) VALUES ('cus_L1', $1, true)`, linked); err != nil {
		t.Fatal(err)
	}
	for ref, vs := range history {
		for _, v := range vs {
			if err := metricstest.InsertVersion(ctx, st, ref, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	getenv := func(k string) string {
		if k == "DATABASE_URL" {
			return url
		}
		return ""
	}
	count := func(q string) int {
		var n int
		if err := st.DB().Get(&n, q); err != nil {
			t.Fatal(err)
		}
		return n
	}
	tests := []struct {
		name    string
		args    []string
		wantOut string
		usage   bool
	}{
		{"NoSubcommand", []string{"metrics"}, "", true},
		{"UnknownSubcommand", []string{"metrics", "recompute"}, "", true},
		{"Rebuild", []string{"metrics", "rebuild"}, "rebuilt the revenue ledger of 2 customers", false},
		{"RebuildAgainIsIdempotent", []string{"metrics", "rebuild"}, "rebuilt the revenue ledger of 2 customers", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(ctx, tc.args, getenv, &out, &errb)
			var ue usageError
			if tc.usage {
				if !errors.As(err, &ue) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			}
			if err != nil || !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("err %v, stdout %q", err, out.String())
			}
			// new + churn for the erased customer, new for the linked one.
			if n := count(`SELECT count(*) FROM mrr_movements`); n != 3 {
				t.Fatalf("%d movements, want 3", n)
			}
			if mrr := count(`SELECT sum(mrr_delta) FROM revenue_daily`); mrr != 2000 {
				t.Fatalf("rollup MRR %d, want 2000", mrr)
			}
			if n := count(`SELECT count(*) FROM (SELECT 1 FROM revenue_daily GROUP BY livemode, currency, day HAVING count(*) > 1) d`); n != 0 {
				t.Fatalf("%d uncompacted rollup days", n)
			}
		})
	}
}
