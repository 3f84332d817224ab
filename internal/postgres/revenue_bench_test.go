package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/metricstest"
	"github.com/billingd/billingd/internal/pgtest"
)

// BenchmarkRevenueScale seeds 100,000 subscriptions with 24 months of
// changes in four currencies and times the revenue report over the whole
// range, by month and by day, plus the summary. Not part of the CI run
// (go test runs no benchmarks by default):
//
//	go test -run '^$' -bench RevenueScale -benchtime 20x ./internal/postgres
func BenchmarkRevenueScale(b *testing.B) {
	ctx := context.Background()
	st := pgtest.Open(b)
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	t0 := time.Now()
	n, err := metricstest.SeedScale(ctx, st, 100_000, 24, end)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded 100000 subscriptions, %d movements in %v", n, time.Since(t0).Round(time.Millisecond))
	from := end.AddDate(0, -24, 0)
	cases := []struct {
		name     string
		bucket   billing.Bucket
		currency string
	}{
		{"Monthly24mUSD", billing.BucketMonth, "usd"},
		{"Monthly24mAllCurrencies", billing.BucketMonth, ""},
		{"Daily24mUSD", billing.BucketDay, "usd"},
		{"Daily24mAllCurrencies", billing.BucketDay, ""},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var rows int
			for b.Loop() {
				r, err := st.Revenue(ctx, billing.RevenueQuery{Livemode: true, Currency: c.currency, Bucket: c.bucket, From: from, To: end, AsOf: end})
				if err != nil {
					b.Fatal(err)
				}
				rows = len(r)
			}
			b.ReportMetric(float64(rows), "rows")
		})
	}
	b.Run("Summary", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.Summary(ctx, true, end); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRecomputeMovements times the event path's ledger rewrite for a
// customer with two subscriptions and 24 months of monthly changes each
// (48 versions), recomputed from the middle of its history: the hot-path
// cost an event pays for the ledger (one history read, one statement).
func BenchmarkRecomputeMovements(b *testing.B) {
	ctx := context.Background()
	st := pgtest.Open(b)
	cust := "60000000-0000-4000-8000-000000000000"
	for _, sref := range []string{"61000000-0000-4000-8000-000000000000", "62000000-0000-4000-8000-000000000000"} {
		for m := range 24 {
			ver := v(sref, time.Date(2025, time.Month(m+1), 5, 0, 0, 0, 0, time.UTC).Format(time.RFC3339),
				sub(billing.StatusActive, true, "usd", monthlyItem(1000, int64(m%5+1))))
			if err := metricstest.InsertVersion(ctx, st, cust, ver); err != nil {
				b.Fatal(err)
			}
		}
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		if err := st.RecomputeForTest(ctx, cust, true, from); err != nil {
			b.Fatal(err)
		}
	}
}
