package main

import (
	"context"
	"log/slog"
	"sort"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/metricstest"
	"github.com/billingd/billingd/internal/postgres"
)

// benchRevenue seeds subscriptions with 24 months of changes in several
// currencies (100k; 10k with -short) and times the 24-month revenue report
// by month and by day (median of 5 runs each).
func benchRevenue(ctx context.Context, c *config) error {
	subs := 100_000
	if c.short {
		subs = 10_000
	}
	dbURL, err := c.freshDB("bench_revenue")
	if err != nil {
		return err
	}
	st, err := postgres.Open(ctx, dbURL, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 4})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.MigrateUp(); err != nil {
		return err
	}
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	t0 := time.Now()
	movements, err := metricstest.SeedScale(ctx, st, subs, 24, end)
	if err != nil {
		return err
	}
	c.print("revenue_seed_subscriptions", "%d", subs)
	c.print("revenue_seed_movements", "%d", movements)
	c.print("revenue_seed_s", "%.1f", time.Since(t0).Seconds())
	if _, err := st.DB().ExecContext(ctx, `ANALYZE`); err != nil {
		return err
	}
	for _, q := range []struct {
		name   string
		bucket billing.Bucket
	}{{"monthly", billing.BucketMonth}, {"daily", billing.BucketDay}} {
		var times []time.Duration
		var rows int
		for i := 0; i < 5; i++ {
			t := time.Now()
			r, err := st.Revenue(ctx, billing.RevenueQuery{Livemode: true, Currency: "usd", Bucket: q.bucket, From: end.AddDate(0, -24, 0), To: end, AsOf: end})
			if err != nil {
				return err
			}
			times = append(times, time.Since(t))
			rows = len(r)
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		c.print("revenue_"+q.name+"_24m_ms", "%s", ms(times[2]))
		c.print("revenue_"+q.name+"_24m_rows", "%d", rows)
	}
	return nil
}
