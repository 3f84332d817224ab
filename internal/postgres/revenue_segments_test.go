package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/metricstest"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

func planItem(price, product string, amount int64, iv billing.Interval) billing.Item {
	return billing.Item{PriceID: price, ProductID: product, Quantity: 1, UnitAmount: amount, Interval: iv, IntervalCount: 1}
}

// segmentExample: A moves from Basic (20.00) to Pro (50.00) in February and
// cancels in April; B pays 240.00 a year from January; C trials Pro in
// March and converts; D trials Pro and cancels.
func segmentExample() map[string][]billing.SubscriptionVersion {
	basic := planItem("price_basic", "prod_app", 2000, billing.IntervalMonth)
	pro := planItem("price_pro", "prod_app", 5000, billing.IntervalMonth)
	year := planItem("price_year", "prod_archive", 24000, billing.IntervalYear)
	trial := func(end string) billing.Subscription {
		s := sub(billing.StatusTrialing, true, "usd", pro)
		s.TrialEnd = ptr(at(end))
		return s
	}
	const (
		custC = "00000000-0000-4000-8000-0000000000c1"
		custD = "00000000-0000-4000-8000-0000000000d1"
		subC  = "10000000-0000-4000-8000-0000000000c1"
		subD  = "10000000-0000-4000-8000-0000000000d1"
	)
	return map[string][]billing.SubscriptionVersion{
		custA: {
			v(subA, "2026-01-03T09:00:00Z", sub(billing.StatusActive, true, "usd", basic)),
			v(subA, "2026-02-10T12:00:00Z", sub(billing.StatusActive, true, "usd", pro)),
			v(subA, "2026-04-03T09:00:00Z", sub(billing.StatusCanceled, true, "usd", pro)),
		},
		custB: {v(subB, "2026-01-20T15:00:00Z", sub(billing.StatusActive, true, "usd", year))},
		custC: {
			v(subC, "2026-03-01T10:00:00Z", trial("2026-03-15T10:00:00Z")),
			v(subC, "2026-03-15T10:00:05Z", sub(billing.StatusActive, true, "usd", pro)),
		},
		custD: {
			v(subD, "2026-03-05T10:00:00Z", trial("2026-03-19T10:00:00Z")),
			v(subD, "2026-03-19T10:00:05Z", sub(billing.StatusCanceled, true, "usd", pro)),
		},
	}
}

func TestRevenueSegments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	if err := metricstest.Seed(ctx, st, segmentExample()); err != nil {
		t.Fatal(err)
	}
	q := billing.RevenueQuery{Livemode: true, Currency: "usd", Bucket: billing.BucketMonth,
		From: at("2026-01-01T00:00:00Z"), To: at("2026-05-01T00:00:00Z"), AsOf: at("2026-06-01T00:00:00Z")}
	type cell struct {
		mrr, new, exp, con, churn, active, trials, conv int64
	}
	check := func(t *testing.T, got []billing.PeriodTotals, want map[string][]cell) {
		t.Helper()
		seen := map[string]int{}
		for _, p := range got {
			w, ok := want[p.Segment]
			if !ok {
				t.Errorf("unexpected segment %q", p.Segment)
				continue
			}
			i := seen[p.Segment]
			seen[p.Segment]++
			g := cell{p.MRREnd, p.Movements.New, p.Movements.Expansion, p.Movements.Contraction, p.Movements.Churn,
				p.ActiveSubscriptions, p.TrialStarts, p.TrialConversions}
			if g != w[i] {
				t.Errorf("%s %s: got %+v, want %+v", p.Segment, p.Start.Format("Jan"), g, w[i])
			}
		}
		for s := range want {
			if seen[s] != 4 {
				t.Errorf("segment %s has %d buckets, want 4", s, seen[s])
			}
		}
	}
	tests := []struct {
		dim  billing.Dimension
		want map[string][]cell
	}{
		{billing.DimensionPlan, map[string][]cell{
			"price_basic": {{2000, 2000, 0, 0, 0, 1, 0, 0}, {0, 0, 0, 0, 2000, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0}},
			"price_pro":   {{0, 0, 0, 0, 0, 0, 0, 0}, {5000, 5000, 0, 0, 0, 1, 0, 0}, {10000, 5000, 0, 0, 0, 2, 2, 1}, {5000, 0, 0, 0, 5000, 1, 0, 0}},
			"price_year":  {{2000, 2000, 0, 0, 0, 1, 0, 0}, {2000, 0, 0, 0, 0, 1, 0, 0}, {2000, 0, 0, 0, 0, 1, 0, 0}, {2000, 0, 0, 0, 0, 1, 0, 0}},
		}},
		{billing.DimensionProduct, map[string][]cell{
			"prod_app":     {{2000, 2000, 0, 0, 0, 1, 0, 0}, {5000, 0, 3000, 0, 0, 1, 0, 0}, {10000, 5000, 0, 0, 0, 2, 2, 1}, {5000, 0, 0, 0, 5000, 1, 0, 0}},
			"prod_archive": {{2000, 2000, 0, 0, 0, 1, 0, 0}, {2000, 0, 0, 0, 0, 1, 0, 0}, {2000, 0, 0, 0, 0, 1, 0, 0}, {2000, 0, 0, 0, 0, 1, 0, 0}},
		}},
		{billing.DimensionInterval, map[string][]cell{
			"month": {{2000, 2000, 0, 0, 0, 1, 0, 0}, {5000, 0, 3000, 0, 0, 1, 0, 0}, {10000, 5000, 0, 0, 0, 2, 2, 1}, {5000, 0, 0, 0, 5000, 1, 0, 0}},
			"year":  {{2000, 2000, 0, 0, 0, 1, 0, 0}, {2000, 0, 0, 0, 0, 1, 0, 0}, {2000, 0, 0, 0, 0, 1, 0, 0}, {2000, 0, 0, 0, 0, 1, 0, 0}},
		}},
	}
	for _, tc := range tests {
		t.Run(string(tc.dim), func(t *testing.T) {
			q := q
			q.GroupBy = tc.dim
			got, err := st.Revenue(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			check(t, got, tc.want)
		})
	}
	t.Run("TotalsAgree", func(t *testing.T) {
		// Every segmentation adds up to the totals' MRR, and the totals
		// carry the trial counts.
		tot, err := st.Revenue(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		wantMRR := []int64{4000, 7000, 12000, 7000}
		for i, p := range tot {
			if p.MRREnd != wantMRR[i] {
				t.Errorf("total MRR %s = %d, want %d", p.Start.Format("Jan"), p.MRREnd, wantMRR[i])
			}
		}
		mar := tot[2].FiguresAt(billing.BucketMonth, time.Time{})
		if mar.TrialStarts != 2 || mar.TrialConversions != 1 || mar.TrialConversionRate == nil || *mar.TrialConversionRate != 0.5 {
			t.Errorf("March trials %d/%d rate %v, want 2/1 0.5", mar.TrialStarts, mar.TrialConversions, mar.TrialConversionRate)
		}
		for _, dim := range []billing.Dimension{billing.DimensionPlan, billing.DimensionProduct, billing.DimensionInterval} {
			q := q
			q.GroupBy = dim
			segs, err := st.Revenue(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			sum := map[int64]int64{}
			for _, p := range segs {
				sum[p.Start.Unix()] += p.MRREnd
			}
			for _, p := range tot {
				if sum[p.Start.Unix()] != p.MRREnd {
					t.Errorf("%s: segments add up to %d in %s, total %d", dim, sum[p.Start.Unix()], p.Start.Format("Jan"), p.MRREnd)
				}
			}
		}
	})
	t.Run("Summary", func(t *testing.T) {
		sum, err := st.SegmentSummary(ctx, true, billing.DimensionPlan, at("2026-04-20T00:00:00Z"))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, c := range sum.Currencies {
			got[c.Segment] = c.MRR
		}
		if len(got) != 2 || got["price_pro"] != 5000 || got["price_year"] != 2000 {
			t.Errorf("summary by plan %+v, want pro 5000 and year 2000 (basic: nothing for 30 days)", got)
		}
	})
	t.Run("Cohorts", func(t *testing.T) {
		asOf := at("2026-04-20T00:00:00Z")
		got, err := st.Cohorts(ctx, billing.CohortQuery{Livemode: true, Currency: "usd", From: at("2026-01-01T00:00:00Z"),
			To: at("2026-04-01T00:00:00Z"), AsOf: asOf})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Cohort != "2026-01" || got[1].Cohort != "2026-03" {
			t.Fatalf("cohorts %+v, want 2026-01 and 2026-03", got)
		}
		jan := billing.CohortFigures(got[0], asOf)
		if jan.Customers != 2 || jan.InitialMRR != 4000 || len(jan.Months) != 4 {
			t.Fatalf("January cohort %+v", jan)
		}
		want := []struct {
			mrr, retained, paying int64
			nrr, grr, cr          float64
		}{{4000, 4000, 2, 1, 1, 1}, {7000, 4000, 2, 1.75, 1, 1}, {7000, 4000, 2, 1.75, 1, 1}, {2000, 2000, 1, 0.5, 0.5, 0.5}}
		for i, w := range want {
			m := jan.Months[i]
			if m.MRR != w.mrr || m.RetainedMRR != w.retained || m.PayingCustomers != w.paying || *m.NetMRRRetention != w.nrr ||
				*m.GrossMRRRetention != w.grr || *m.CustomerRetention != w.cr || m.Partial != (i == 3) {
				t.Errorf("January cohort, month %d: %+v, want %+v", i, m, w)
			}
		}
		mar := billing.CohortFigures(got[1], asOf)
		if mar.Customers != 1 || mar.InitialMRR != 5000 || len(mar.Months) != 2 || mar.Months[1].MRR != 5000 {
			t.Errorf("March cohort %+v", mar)
		}
	})
	t.Run("RebuildSame", func(t *testing.T) {
		q := q
		q.GroupBy = billing.DimensionPlan
		before, err := st.Revenue(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.RebuildRevenueRollup(ctx); err != nil {
			t.Fatal(err)
		}
		after, err := st.Revenue(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(before) != len(after) {
			t.Fatalf("rebuild changed the segments: %d vs %d buckets", len(before), len(after))
		}
		for i := range before {
			if before[i] != after[i] {
				t.Errorf("rebuild changed bucket %d: %+v vs %+v", i, before[i], after[i])
			}
		}
	})
}

// TestRevenueFactsErasedAndPurged: erasure keeps a customer's facts for
// finance under a fresh reference (figures unchanged, the old reference
// gone); the retention purge deletes them with the rest of the history.
func TestRevenueFactsErasedAndPurged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	if err := metricstest.Seed(ctx, st, segmentExample()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO customers (stripe_customer_id, customer_ref, account_id, linked_via, livemode)
		VALUES ('cus_FactsA', $1, 'acct_facts', 'api', true)`, custA); err != nil {
		t.Fatal(err)
	}
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := st.DB().GetContext(ctx, &n, q, args...); err != nil {
			t.Fatal(err)
		}
		return n
	}
	q := billing.RevenueQuery{Livemode: true, Currency: "usd", Bucket: billing.BucketMonth, GroupBy: billing.DimensionPlan,
		From: at("2026-01-01T00:00:00Z"), To: at("2026-05-01T00:00:00Z"), AsOf: at("2026-06-01T00:00:00Z")}
	before, err := st.Revenue(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	facts := count(`SELECT count(*) FROM revenue_facts WHERE customer_ref = $1`, custA)
	if facts == 0 {
		t.Fatal("no facts for A")
	}
	exp, err := st.AccountExport(ctx, "acct_facts")
	if err != nil || len(exp.RevenueFacts) != facts {
		t.Fatalf("export has %d facts (%v), want %d", len(exp.RevenueFacts), err, facts)
	}
	if _, err := st.EraseAccount(ctx, billing.ErasureRequest{AccountID: "acct_facts", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if n := count(`SELECT count(*) FROM revenue_facts WHERE customer_ref = $1`, custA); n != 0 {
		t.Errorf("%d facts still under the erased customer's reference", n)
	}
	if n := count(`SELECT count(*) FROM revenue_facts`); n == 0 {
		t.Error("erasure dropped the facts finance keeps")
	}
	after, err := st.Revenue(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("erasure changed the report's shape")
	}
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("erasure changed %s %s: %+v vs %+v", before[i].Segment, before[i].Start.Format("Jan"), before[i], after[i])
		}
	}
	// A's history closed in April: a purge with a cutoff after it deletes
	// its (re-keyed) facts with the rest.
	res, err := st.Purge(ctx, postgres.RetentionPolicy{EventRetention: postgres.MinEventRetention, MetricsRetention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if res.Facts == 0 {
		t.Errorf("purge removed no facts: %+v", res)
	}
	if n := count(`SELECT count(*) FROM revenue_facts f WHERE NOT EXISTS (SELECT 1 FROM subscription_versions v WHERE v.customer_ref = f.customer_ref)`); n != 0 {
		t.Errorf("%d facts left without their history after the purge", n)
	}
}
