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

// revenue1MSubs is -revenue-1m-subs: the goals are measured at
// 1,000,000.
var revenue1MSubs = 1_000_000

// revenue1MShortSubs is the stage's size under -short.
const revenue1MShortSubs = 50_000

// benchRevenue1M seeds 1,000,000 subscriptions (-short: 50,000) over 36
// months in usd, eur, gbp and jpy (metricstest.SeedScale: ledger,
// versions, daily and monthly rollups, set-based) and times, as the
// median of 5 runs, the 36-month monthly report of every currency, the
// same grouped by plan, the cohort table and the first page (50 rows) of
// the movers list of churn over the 36 months.
func benchRevenue1M(ctx context.Context, c *config) error {
	subs := revenue1MSubs
	if c.short {
		subs = min(subs, revenue1MShortSubs)
	}
	dbURL, err := c.freshDB("bench_revenue_1m")
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
	const months = 36
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	t0 := time.Now()
	metricstest.SeedProgress = func(step string, took time.Duration) {
		c.print("revenue_1m_seed_step", "%s %.1f s", step, took.Seconds())
	}
	defer func() { metricstest.SeedProgress = nil }()
	movements, err := metricstest.SeedScale(ctx, st, subs, months, end)
	if err != nil {
		return err
	}
	c.print("revenue_1m_seed_subscriptions", "%d", subs)
	c.print("revenue_1m_seed_movements", "%d", movements)
	c.print("revenue_1m_seed_s", "%.1f", time.Since(t0).Seconds())
	from := end.AddDate(0, -months, 0)
	median := func(name string, f func() (int, error)) error {
		var times []time.Duration
		var rows int
		for i := 0; i < 5; i++ {
			t := time.Now()
			n, err := f()
			if err != nil {
				return err
			}
			times = append(times, time.Since(t))
			rows = n
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		c.print("revenue_1m_"+name+"_ms", "%s", ms(times[2]))
		c.print("revenue_1m_"+name+"_rows", "%d", rows)
		return nil
	}
	q := billing.RevenueQuery{Livemode: true, Bucket: billing.BucketMonth, From: from, To: end, AsOf: end}
	if err := median("monthly", func() (int, error) {
		r, err := st.Revenue(ctx, q)
		return len(r), err
	}); err != nil {
		return err
	}
	if err := median("by_plan", func() (int, error) {
		q := q
		q.GroupBy = billing.DimensionPlan
		r, err := st.Revenue(ctx, q)
		return len(r), err
	}); err != nil {
		return err
	}
	if err := median("cohorts", func() (int, error) {
		r, err := st.Cohorts(ctx, billing.CohortQuery{Livemode: true, From: from, To: end.AddDate(0, -1, 0), AsOf: end})
		n := 0
		for _, t := range r {
			n += len(billing.CohortFigures(t, end).Months)
		}
		return n, err
	}); err != nil {
		return err
	}
	return median("movements_page", func() (int, error) {
		r, _, err := st.Movers(ctx, billing.MoverQuery{Livemode: true, Kind: billing.MovementChurn, From: from, To: end,
			AsOf: end, Limit: 50})
		return len(r), err
	})
}
