package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
)

// BenchmarkOutboxDeliver measures the database side of delivery: claim a
// batch of 10 (SKIP LOCKED, per-key order check) and mark each row sent,
// over a backlog of b.N rows spread across 200 ordering keys, with 50 000
// sent rows left in the table as a busy day would. Run with
// go test -bench OutboxDeliver -run ^$ ./internal/postgres/
func BenchmarkOutboxDeliver(b *testing.B) {
	st := pgtest.Open(b)
	ctx := context.Background()
	db := st.DB()
	if _, err := db.ExecContext(ctx, `INSERT INTO outbox (kind, ordering_key, action, payload, state, sent_at)
		SELECT 'profitwell', 'k:' || (g % 200), 'update', '{}', 'sent', now() FROM generate_series(1, 50000) g`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO outbox (kind, ordering_key, action, payload)
		SELECT 'profitwell', 'k:' || (g % 200), 'update', '{}' FROM generate_series(1, $1::int) g`, b.N); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE outbox`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	done := 0
	for done < b.N {
		jobs, err := st.OutboxClaim(ctx, billing.OutboxProfitWell, 10, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if len(jobs) == 0 {
			b.Fatalf("nothing claimable with %d of %d delivered", done, b.N)
		}
		for _, j := range jobs {
			if err := st.OutboxMarkSent(ctx, j.ID, j.Attempts, 200); err != nil {
				b.Fatal(err)
			}
		}
		done += len(jobs)
	}
	b.ReportMetric(float64(done)/time.Since(start).Seconds(), "rows/s")
}
