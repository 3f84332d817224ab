package postgres_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/metricstest"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// rollupDays returns the non-zero days of the rollup (the revenue_daily
// rows summed per mode, currency and day) or of another relation with its
// columns, as text rows in a fixed order.
func rollupDays(t *testing.T, st *postgres.Store, relation string) []string {
	t.Helper()
	q := `
SELECT concat_ws(' ', livemode, currency, day, sum(mrr_delta), sum(new_minor), sum(expansion_minor),
                 sum(contraction_minor), sum(churn_minor), sum(reactivation_minor), sum(paying_delta),
                 sum(churned_customers), sum(active_delta))
FROM ` + relation + `
GROUP BY livemode, currency, day
HAVING sum(mrr_delta) <> 0 OR sum(new_minor) <> 0 OR sum(expansion_minor) <> 0 OR sum(contraction_minor) <> 0
    OR sum(churn_minor) <> 0 OR sum(reactivation_minor) <> 0 OR sum(paying_delta) <> 0
    OR sum(churned_customers) <> 0 OR sum(active_delta) <> 0
ORDER BY livemode, currency, day`
	var rows []string
	if err := st.DB().SelectContext(context.Background(), &rows, q); err != nil {
		t.Fatalf("read %s: %v", relation, err)
	}
	return rows
}

// migrateDownBelow steps the schema down until its version is below v.
func migrateDownBelow(t *testing.T, st *postgres.Store, v uint) {
	t.Helper()
	for {
		cur, _, err := st.SchemaVersion()
		if err != nil {
			t.Fatal(err)
		}
		if cur < v {
			return
		}
		if err := st.MigrateDown(1); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRevenueRollupOneDefinition: the view revenue_daily_from_ledger
// (migration 0120) is the one definition of what the daily rollup sums to.
// The rows event transactions append agree with it, a rebuild writes it,
// and a database upgraded from before the rollup existed (0031 no longer
// fills the table) gets it filled by 0120, while one that has rows keeps
// them and is not filled twice.
func TestRevenueRollupOneDefinition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	report := func(t *testing.T, st *postgres.Store) []billing.PeriodTotals {
		t.Helper()
		got, err := st.Revenue(ctx, billing.RevenueQuery{Livemode: true, Currency: "usd", Bucket: billing.BucketMonth,
			From: at("2026-01-01T00:00:00Z"), To: at("2026-05-01T00:00:00Z"), AsOf: at("2026-06-01T00:00:00Z")})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	seeded := func(t *testing.T) (*postgres.Store, []string, []billing.PeriodTotals) {
		t.Helper()
		st := pgtest.Open(t)
		if err := metricstest.Seed(ctx, st, workedExample()); err != nil {
			t.Fatal(err)
		}
		days := rollupDays(t, st, "revenue_daily")
		if len(days) == 0 {
			t.Fatal("the worked example left no rollup rows")
		}
		return st, days, report(t, st)
	}

	t.Run("AppendedRowsMatchTheView", func(t *testing.T) {
		t.Parallel()
		st, days, _ := seeded(t)
		if view := rollupDays(t, st, "revenue_daily_from_ledger"); !reflect.DeepEqual(days, view) {
			t.Fatalf("rollup appended by the event path:\n%v\nthe view over the ledger:\n%v", days, view)
		}
	})
	t.Run("RebuildWritesTheView", func(t *testing.T) {
		t.Parallel()
		st, days, want := seeded(t)
		if err := st.RebuildRevenueRollup(ctx); err != nil {
			t.Fatal(err)
		}
		if got := rollupDays(t, st, "revenue_daily"); !reflect.DeepEqual(got, days) {
			t.Fatalf("after rebuild:\n%v\nbefore:\n%v", got, days)
		}
		if got := report(t, st); !reflect.DeepEqual(got, want) {
			t.Fatalf("report after rebuild:\n%+v\nwant\n%+v", got, want)
		}
	})
	t.Run("FilledOnUpgradeFromBeforeTheRollup", func(t *testing.T) {
		t.Parallel()
		st, days, want := seeded(t)
		migrateDownBelow(t, st, 31) // revenue_daily gone; the ledger stays
		if err := st.MigrateUp(); err != nil {
			t.Fatal(err)
		}
		if got := rollupDays(t, st, "revenue_daily"); !reflect.DeepEqual(got, days) {
			t.Fatalf("rollup after the upgrade:\n%v\nwant\n%v", got, days)
		}
		if got := report(t, st); !reflect.DeepEqual(got, want) {
			t.Fatalf("report after the upgrade:\n%+v\nwant\n%+v", got, want)
		}
	})
	t.Run("KeptNotDoubledWhenPresent", func(t *testing.T) {
		t.Parallel()
		st, days, want := seeded(t)
		var rows int
		if err := st.DB().GetContext(ctx, &rows, `SELECT count(*) FROM revenue_daily`); err != nil {
			t.Fatal(err)
		}
		migrateDownBelow(t, st, 120) // the view goes, the rollup's rows stay
		if err := st.MigrateUp(); err != nil {
			t.Fatal(err)
		}
		var after int
		if err := st.DB().GetContext(ctx, &after, `SELECT count(*) FROM revenue_daily`); err != nil {
			t.Fatal(err)
		}
		if after != rows {
			t.Errorf("%d rollup rows after 0120 ran again, want the %d there before", after, rows)
		}
		if got := rollupDays(t, st, "revenue_daily"); !reflect.DeepEqual(got, days) {
			t.Fatalf("rollup after 0120 ran again:\n%v\nwant\n%v", got, days)
		}
		if got := report(t, st); !reflect.DeepEqual(got, want) {
			t.Fatalf("report:\n%+v\nwant\n%+v", got, want)
		}
	})
}
