package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/metricstest"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// reportSet is every report the 1M benchmark times (and their neighbours),
// as comparable values.
type reportSet struct {
	Monthly, ByPlan, ByProduct, ByInterval, WeeklyByPlan []billing.PeriodTotals
	Cohorts                                              []billing.CohortTotals
	Summary, PlanSummary                                 billing.Summary
	Movers                                               []billing.Mover
}

func collectReports(t *testing.T, st *postgres.Store, from, to time.Time) reportSet {
	t.Helper()
	ctx := context.Background()
	var r reportSet
	q := billing.RevenueQuery{Livemode: true, Bucket: billing.BucketMonth, From: from, To: to, AsOf: to}
	var err error
	for _, c := range []struct {
		out *[]billing.PeriodTotals
		dim billing.Dimension
		b   billing.Bucket
	}{
		{&r.Monthly, "", billing.BucketMonth}, {&r.ByPlan, billing.DimensionPlan, billing.BucketMonth},
		{&r.ByProduct, billing.DimensionProduct, billing.BucketMonth},
		{&r.ByInterval, billing.DimensionInterval, billing.BucketMonth},
		{&r.WeeklyByPlan, billing.DimensionPlan, billing.BucketWeek},
	} {
		q := q
		q.GroupBy, q.Bucket = c.dim, c.b
		if c.b == billing.BucketWeek {
			q.From = billing.BucketWeek.Truncate(to.AddDate(0, -5, 0))
		}
		if *c.out, err = st.Revenue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if r.Cohorts, err = st.Cohorts(ctx, billing.CohortQuery{Livemode: true, From: from, To: to.AddDate(0, -1, 0), AsOf: to}); err != nil {
		t.Fatal(err)
	}
	if r.Summary, err = st.Summary(ctx, true, to); err != nil {
		t.Fatal(err)
	}
	if r.PlanSummary, err = st.SegmentSummary(ctx, true, billing.DimensionPlan, to); err != nil {
		t.Fatal(err)
	}
	mq := billing.MoverQuery{Livemode: true, From: from, To: to, AsOf: to, Limit: 97}
	for {
		page, more, err := st.Movers(ctx, mq)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			mq.After = &billing.MoverCursor{At: m.At, ID: m.ID}
			m.ID = 0 // row IDs differ between two writes of the same history
			r.Movers = append(r.Movers, m)
		}
		if !more {
			break
		}
	}
	return r
}

// TestSeedScaleMatchesDerivation: the benchmark's set-based seed writes
// what the real derivation writes for the same histories. It seeds a few
// hundred subscriptions over 36 months, takes every report, then rebuilds
// every customer's ledger and facts from the seeded subscription versions
// as `metrics rebuild` does (the event path's derivation) and the rollups
// from the facts, and takes them again: they must be identical.
func TestSeedScaleMatchesDerivation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const subs, months = 400, 36
	const qIndexes = `SELECT string_agg(indexdef, ';' ORDER BY indexname) FROM pg_indexes
WHERE tablename IN ('mrr_movements', 'subscription_activity', 'subscription_versions', 'revenue_segments_daily')`
	var before, after string
	if err := st.DB().GetContext(ctx, &before, qIndexes); err != nil {
		t.Fatal(err)
	}
	n, err := metricstest.SeedScale(ctx, st, subs, months, end)
	if err != nil {
		t.Fatal(err)
	}
	// The seed drops indexes and unique constraints for the load: all back.
	if err := st.DB().GetContext(ctx, &after, qIndexes); err != nil || after != before {
		t.Fatalf("indexes after the seed:\n%s\nbefore:\n%s (%v)", after, before, err)
	}
	if n < subs {
		t.Fatalf("seeded %d movements for %d subscriptions", n, subs)
	}
	from := end.AddDate(0, -months, 0)
	seeded := collectReports(t, st, from, end)
	if len(seeded.Movers) != int(n) || len(seeded.ByPlan) != 0 && len(seeded.ByPlan) < 4*months {
		t.Fatalf("seeded reports: %d movers of %d movements, %d plan buckets", len(seeded.Movers), n, len(seeded.ByPlan))
	}
	var facts int
	if err := st.DB().GetContext(ctx, &facts, `SELECT count(*) FROM revenue_facts`); err != nil || facts != 0 {
		t.Fatalf("the seed writes no facts, got %d (%v)", facts, err)
	}

	cursor := ""
	customers := 0
	for {
		refs, err := st.LedgerCustomers(ctx, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) == 0 {
			break
		}
		for _, ref := range refs {
			if err := st.RebuildCustomerLedger(ctx, ref); err != nil {
				t.Fatal(err)
			}
		}
		customers += len(refs)
		cursor = refs[len(refs)-1]
	}
	if customers != subs {
		t.Fatalf("rebuilt %d customers, want %d", customers, subs)
	}
	if err := st.RebuildRevenueRollup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.DB().GetContext(ctx, &facts, `SELECT count(*) FROM revenue_facts`); err != nil || facts < int(n) {
		t.Fatalf("derivation wrote %d facts for %d movements (%v)", facts, n, err)
	}
	derived := collectReports(t, st, from, end)
	if len(derived.Movers) != len(seeded.Movers) {
		t.Fatalf("derivation has %d movements, the seed %d", len(derived.Movers), len(seeded.Movers))
	}
	diffReports(t, "seed", seeded, "derivation", derived)
	checkMonthsMatchDays(t, st)
}

// diffReports reports each report that differs, with its first differing
// element.
func diffReports(t *testing.T, an string, a reportSet, bn string, b reportSet) {
	t.Helper()
	v1, v2 := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := 0; i < v1.NumField(); i++ {
		f1, f2 := v1.Field(i), v2.Field(i)
		if reflect.DeepEqual(f1.Interface(), f2.Interface()) {
			continue
		}
		name := v1.Type().Field(i).Name
		if f1.Kind() != reflect.Slice {
			t.Errorf("%s differs:\n %s %+v\n %s %+v", name, an, f1.Interface(), bn, f2.Interface())
			continue
		}
		if f1.Len() != f2.Len() {
			t.Errorf("%s: %s has %d rows, %s %d", name, an, f1.Len(), bn, f2.Len())
		}
		for j := 0; j < min(f1.Len(), f2.Len()); j++ {
			if !reflect.DeepEqual(f1.Index(j).Interface(), f2.Index(j).Interface()) {
				t.Errorf("%s row %d differs:\n %s %+v\n %s %+v", name, j, an, f1.Index(j).Interface(), bn, f2.Index(j).Interface())
				break
			}
		}
	}
}

// checkMonthsMatchDays: every month of revenue_segments_monthly is the sum
// of its days in revenue_segments_daily (once all is folded).
func checkMonthsMatchDays(t *testing.T, st *postgres.Store) {
	t.Helper()
	ctx := context.Background()
	if err := st.FoldRevenueRollups(ctx); err != nil {
		t.Fatal(err)
	}
	const q = `
WITH d AS (
    SELECT livemode, dimension, date_trunc('month', day)::date AS month, currency, segment,
           sum(mrr_delta) AS m, sum(new_minor) AS n, sum(expansion_minor) AS e, sum(contraction_minor) AS c,
           sum(churn_minor) AS ch, sum(reactivation_minor) AS r, sum(paying_delta) AS p, sum(churned_customers) AS cc,
           sum(new_customers) AS nc, sum(active_delta) AS a, sum(retained_delta) AS rt, sum(trial_starts) AS ts,
           sum(trial_conversions) AS tc
    FROM revenue_segments_daily GROUP BY 1, 2, 3, 4, 5
), m AS (
    SELECT livemode, dimension, month, currency, segment, mrr_delta AS m, new_minor AS n, expansion_minor AS e,
           contraction_minor AS c, churn_minor AS ch, reactivation_minor AS r, paying_delta AS p,
           churned_customers AS cc, new_customers AS nc, active_delta AS a, retained_delta AS rt,
           trial_starts AS ts, trial_conversions AS tc
    FROM revenue_segments_monthly
)
SELECT count(*) FROM d FULL JOIN m USING (livemode, dimension, month, currency, segment)
WHERE ROW(coalesce(d.m, 0), coalesce(d.n, 0), coalesce(d.e, 0), coalesce(d.c, 0), coalesce(d.ch, 0), coalesce(d.r, 0),
          coalesce(d.p, 0), coalesce(d.cc, 0), coalesce(d.nc, 0), coalesce(d.a, 0), coalesce(d.rt, 0), coalesce(d.ts, 0),
          coalesce(d.tc, 0))
   <> ROW(coalesce(m.m, 0), coalesce(m.n, 0), coalesce(m.e, 0), coalesce(m.c, 0), coalesce(m.ch, 0), coalesce(m.r, 0),
          coalesce(m.p, 0), coalesce(m.cc, 0), coalesce(m.nc, 0), coalesce(m.a, 0), coalesce(m.rt, 0), coalesce(m.ts, 0),
          coalesce(m.tc, 0))`
	var bad int
	if err := st.DB().GetContext(ctx, &bad, q); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("%d months of revenue_segments_monthly differ from the sum of their days", bad)
	}
	var months int
	if err := st.DB().GetContext(ctx, &months, `SELECT count(*) FROM revenue_segments_monthly`); err != nil || months == 0 {
		t.Errorf("revenue_segments_monthly has %d rows (%v)", months, err)
	}
}

// monthsEvents is a history of six customers over eight months with plan
// moves, seat changes, a trial, cancellations and a reactivation: each
// event rewrites facts in months already folded when delivered late.
func monthsEvents() []billing.Event {
	basic := planItem("price_basic", "prod_app", 2000, billing.IntervalMonth)
	pro := planItem("price_pro", "prod_app", 5000, billing.IntervalMonth)
	year := planItem("price_year", "prod_archive", 24000, billing.IntervalYear)
	seats := func(it billing.Item, n int64) billing.Item { it.Quantity = n; return it }
	var evs []billing.Event
	add := func(cust string, n int, when string, typ string, status billing.Status, it billing.Item, trialEnd string) {
		s := billing.Subscription{ID: "sub_" + cust, CustomerID: "cus_" + cust, Status: status, Livemode: true,
			Currency: "usd", Items: []billing.Item{it}}
		if cust == "E" || cust == "F" {
			s.Currency = "eur"
		}
		if trialEnd != "" {
			s.TrialEnd = ptr(at(trialEnd))
		}
		evs = append(evs, billing.Event{ID: fmt.Sprintf("evt_%s%d", cust, n), Type: typ, Created: at(when), Livemode: true,
			Subscription: &s})
	}
	const created, updated, deleted = "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"
	add("A", 1, "2026-01-03T09:00:00Z", created, billing.StatusActive, basic, "")
	add("A", 2, "2026-02-10T12:00:00Z", updated, billing.StatusActive, pro, "")
	add("A", 3, "2026-04-03T09:00:00Z", updated, billing.StatusActive, seats(pro, 3), "")
	add("A", 4, "2026-06-30T23:59:59Z", deleted, billing.StatusCanceled, seats(pro, 3), "")
	add("B", 1, "2026-01-20T15:00:00Z", created, billing.StatusActive, year, "")
	add("B", 2, "2026-05-01T00:00:00Z", updated, billing.StatusActive, seats(year, 2), "")
	add("C", 1, "2026-03-01T10:00:00Z", created, billing.StatusTrialing, pro, "2026-03-15T10:00:00Z")
	add("C", 2, "2026-03-15T10:00:05Z", updated, billing.StatusActive, pro, "")
	add("C", 3, "2026-07-31T23:00:00Z", updated, billing.StatusActive, basic, "")
	add("D", 1, "2026-02-28T23:59:59Z", created, billing.StatusActive, basic, "")
	add("D", 2, "2026-03-01T00:00:00Z", updated, billing.StatusActive, seats(basic, 2), "")
	add("E", 1, "2026-01-31T12:00:00Z", created, billing.StatusActive, pro, "")
	add("E", 2, "2026-03-31T12:00:00Z", deleted, billing.StatusCanceled, pro, "")
	add("F", 1, "2026-04-15T08:00:00Z", created, billing.StatusActive, year, "")
	add("F", 2, "2026-06-02T08:00:00Z", updated, billing.StatusActive, seats(pro, 2), "")
	return evs
}

// TestSegmentMonthsExactUnderAnyDelivery: the monthly rollup, folded
// between deliveries (every report folds), stays the sum of the daily
// rollup and gives the reports of in-order delivery when events arrive
// shuffled, duplicated and concurrently with folds; a rebuild changes
// nothing.
func TestSegmentMonthsExactUnderAnyDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	from, to := at("2026-01-01T00:00:00Z"), at("2026-09-01T00:00:00Z")
	deliver := func(t *testing.T, evs []billing.Event, concurrent bool) reportSet {
		t.Helper()
		st := pgtest.Open(t)
		if !concurrent {
			for i, ev := range evs {
				if _, err := st.ApplyEvent(ctx, ev); err != nil {
					t.Fatalf("apply %s: %v", ev.ID, err)
				}
				if i%3 == 2 { // a report now and then: it folds what is there
					if _, err := st.CompactRevenueRollup(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
		} else {
			var wg sync.WaitGroup
			work := make(chan billing.Event)
			errs := make(chan error, len(evs)+1)
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ev := range work {
						if _, err := st.ApplyEvent(ctx, ev); err != nil {
							errs <- fmt.Errorf("apply %s: %w", ev.ID, err)
						}
					}
				}()
			}
			stop := make(chan struct{})
			folded := make(chan struct{})
			go func() {
				defer close(folded)
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := st.FoldRevenueRollups(ctx); err != nil {
						errs <- err
						return
					}
					if _, err := st.CompactRevenueRollup(ctx); err != nil {
						errs <- err
						return
					}
				}
			}()
			for _, ev := range evs {
				work <- ev
			}
			close(work)
			wg.Wait()
			close(stop)
			<-folded
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		}
		got := collectReports(t, st, from, to)
		checkMonthsMatchDays(t, st)
		if err := st.RebuildRevenueRollup(ctx); err != nil {
			t.Fatal(err)
		}
		diffReports(t, "before rebuild", got, "after", collectReports(t, st, from, to))
		checkMonthsMatchDays(t, st)
		return got
	}
	events := monthsEvents()
	want := deliver(t, events, false)
	if len(want.ByPlan) == 0 || len(want.Cohorts) == 0 {
		t.Fatalf("in-order reports empty: %+v", want)
	}
	rng := rand.New(rand.NewPCG(20, 10))
	for _, tc := range []struct {
		name       string
		concurrent bool
	}{{"Shuffled", false}, {"ShuffledDuplicated", false}, {"Reversed", false}, {"Concurrent", true}} {
		t.Run(tc.name, func(t *testing.T) {
			evs := append([]billing.Event(nil), events...)
			switch tc.name {
			case "Reversed":
				for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
					evs[i], evs[j] = evs[j], evs[i]
				}
			case "ShuffledDuplicated", "Concurrent":
				evs = append(evs, events...)
				fallthrough
			default:
				rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
			}
			got := deliver(t, evs, tc.concurrent)
			if !reflect.DeepEqual(got, want) {
				t.Logf("order %v", ids(evs))
				diffReports(t, "got", got, "in order", want)
			}
		})
	}
}
