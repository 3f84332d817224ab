package apibench_test

import (
	"context"
	"os"
	"testing"

	"github.com/billingd/billingd/internal/apibench"
	"github.com/billingd/billingd/internal/pgtest"
)

// BenchmarkEntitlement prints the figures of one full run (10k accounts,
// concurrency 32); b.N is ignored: the run sizes itself. Not run by CI.
func BenchmarkEntitlement(b *testing.B) {
	res, err := apibench.Entitlement(context.Background(), apibench.Config{DatabaseURL: pgtest.URL(b), Out: os.Stdout})
	if err != nil {
		b.Fatal(err)
	}
	bd, sq, bare := res[0], res[1], res[2]
	b.ReportMetric(bd.Rate(), "billingd_req/s")
	b.ReportMetric(sq.Rate(), "sql_req/s")
	b.ReportMetric(bare.Rate(), "bare_req/s")
	b.ReportMetric(bd.Rate()/bare.Rate(), "rate_vs_bare")
	b.ReportMetric(float64(bd.P99)/float64(bare.P99), "p99_vs_bare")
}

// TestEntitlementSmoke runs the benchmark tiny, so it keeps working.
func TestEntitlementSmoke(t *testing.T) {
	t.Parallel()
	res, err := apibench.Entitlement(context.Background(), apibench.Config{DatabaseURL: pgtest.URL(t), Accounts: 50, Concurrency: 4, Requests: 800})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Requests != 800 || res[0].P99 < res[0].P50 {
		t.Fatalf("results: %+v", res)
	}
}
