package metricstest

import (
	"context"
	"fmt"

	"github.com/billingd/billingd/internal/postgres"
)

// ScalePlans is how many plans SeedSegmentScale spreads subscriptions over:
// price_bench_0 … price_bench_7 (6 monthly, 2 yearly) of three products.
const ScalePlans = 8

// SeedSegmentScale completes a SeedScale ledger for the segment, cohort
// and movers reports: each synthetic customer's one subscription gets a
// plan (by a hash of its reference), a subscription_versions row per
// movement (the state after it, as the movers list reads plans from), and
// the segment rollup (revenue_segments_daily) summed straight from the
// ledger, as `metrics rebuild` would sum the revenue_facts rows that the
// event path writes. With one single-item subscription per customer each
// segment's ledger is the customer's, so the sums are exact; revenue_facts
// itself is left empty (reports read it only for the current day, through
// its time index).
func SeedSegmentScale(ctx context.Context, st *postgres.Store) error {
	const plans = `
WITH c AS (
    SELECT customer_ref, abs(hashtext(customer_ref::text)) % 8 AS p FROM mrr_movements WHERE kind = 'new'
)
SELECT customer_ref, 'price_bench_' || p AS plan, 'prod_bench_' || (p % 3) AS product,
       CASE WHEN p < 6 THEN 'month' ELSE 'year' END AS iv
FROM c`
	stmts := []struct{ name, q string }{
		{"plans", `CREATE TEMP TABLE bench_plans AS ` + plans},
		{"versions", `
INSERT INTO subscription_versions (subscription_ref, customer_ref, livemode, status, currency, items, mrr_minor,
                                   version_at, version_rank, version_event)
SELECT m.subscription_ref, m.customer_ref, m.livemode, CASE WHEN m.customer_mrr_after = 0 THEN 'canceled' ELSE 'active' END,
       m.currency,
       jsonb_build_array(jsonb_build_object('price_id', b.plan, 'product_id', b.product, 'quantity', 1,
           'unit_amount', CASE WHEN b.iv = 'year' THEN 12 ELSE 1 END * greatest(m.customer_mrr_after, m.customer_mrr_before),
           'interval', b.iv, 'interval_count', 1)),
       m.customer_mrr_after, m.effective_at, 0, 'evt_bench' || m.id
FROM mrr_movements m JOIN bench_plans b USING (customer_ref)`},
		{"segments", `
INSERT INTO revenue_segments_daily (livemode, currency, dimension, segment, day, mrr_delta, new_minor, expansion_minor,
    contraction_minor, churn_minor, reactivation_minor, paying_delta, churned_customers, new_customers, active_delta,
    retained_delta, trial_starts, trial_conversions)
SELECT m.livemode, m.currency, d.dim, d.seg, (m.effective_at AT TIME ZONE 'UTC')::date, sum(m.delta_minor),
       coalesce(sum(m.delta_minor) FILTER (WHERE m.kind = 'new'), 0), coalesce(sum(m.delta_minor) FILTER (WHERE m.kind = 'expansion'), 0),
       coalesce(-sum(m.delta_minor) FILTER (WHERE m.kind = 'contraction'), 0),
       coalesce(-sum(m.delta_minor) FILTER (WHERE m.kind = 'churn'), 0),
       coalesce(sum(m.delta_minor) FILTER (WHERE m.kind = 'reactivation'), 0),
       count(*) FILTER (WHERE m.kind IN ('new', 'reactivation')) - count(*) FILTER (WHERE m.kind = 'churn'),
       count(*) FILTER (WHERE m.kind = 'churn'), count(*) FILTER (WHERE m.kind = 'new'),
       count(*) FILTER (WHERE m.kind IN ('new', 'reactivation')) - count(*) FILTER (WHERE m.kind = 'churn'),
       sum(least(m.customer_mrr_after, f.delta_minor) - least(m.customer_mrr_before, f.delta_minor)),
       0, 0
FROM mrr_movements m
JOIN bench_plans b USING (customer_ref)
JOIN mrr_movements f ON f.customer_ref = m.customer_ref AND f.kind = 'new'
CROSS JOIN LATERAL (VALUES ('plan', b.plan), ('product', b.product), ('interval', b.iv),
                           ('cohort', to_char(f.effective_at AT TIME ZONE 'UTC', 'YYYY-MM'))) AS d(dim, seg)
GROUP BY 1, 2, 3, 4, 5`},
		{"drop", `DROP TABLE bench_plans`},
	}
	conn, err := st.DB().Conn(ctx) // the temp table lives in one session
	if err != nil {
		return fmt.Errorf("seed segment scale: %w", err)
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s.q); err != nil {
			return fmt.Errorf("seed segment scale: %s: %w", s.name, err)
		}
	}
	for _, t := range []string{"subscription_versions", "revenue_segments_daily"} {
		if _, err := st.DB().ExecContext(ctx, `VACUUM ANALYZE `+t); err != nil {
			return fmt.Errorf("vacuum %s: %w", t, err)
		}
	}
	return nil
}
