package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
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

// TestSegmentMonthsExactUnderAnyDelivery: the monthly rollup is folded
// from what the fact deriver appends to the daily rollup, asynchronously
// after each event's commit. Events are delivered in order, shuffled,
// shuffled with duplicates, reversed, and concurrently from several
// goroutines while two replicas derive the queue in small batches, a third
// session folds and compacts, and (ConcurrentWithRebuild) `metrics
// rebuild` runs in the middle of the delivery. In every case:
//
//   - the reports equal those of in-order delivery;
//   - each month equals the sum of its days;
//   - the reports read through the monthly rollup equal the same reports
//     read from the daily rollup alone (months emptied, folding held off);
//   - a full `metrics rebuild` afterwards changes no report.
//
// The sequential runs derive part of the queue and fold after every other
// event, so late events rewrite facts in months already folded; the test
// checks that happened (lateRows), or it would prove nothing about the
// fold's handling of late changes.
func TestSegmentMonthsExactUnderAnyDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	from, to := at("2026-01-01T00:00:00Z"), at("2026-09-01T00:00:00Z")
	// A mid-month as-of: the months before July come from the monthly
	// rollup, July's days from the daily one.
	midFrom, midTo := at("2026-02-01T00:00:00Z"), at("2026-07-20T00:00:00Z")
	type mode int
	const (
		sequential mode = iota
		concurrent
		concurrentRebuild
	)
	deliver := func(t *testing.T, evs []billing.Event, m mode, wantLate bool) reportSet {
		t.Helper()
		url := pgtest.URL(t)
		st, st2 := openReplica(t, url), openReplica(t, url)
		if m == sequential {
			late := 0
			for i, ev := range evs {
				if _, err := st.ApplyEvent(ctx, ev); err != nil {
					t.Fatalf("apply %s: %v", ev.ID, err)
				}
				// The deriver takes part of the queue; a report now and
				// then folds what it appended.
				if _, _, err := st.DeriveFacts(ctx, 1+i%2); err != nil {
					t.Fatal(err)
				}
				if i%2 == 1 {
					late += lateRows(t, st)
					if _, err := st.CompactRevenueRollup(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			if wantLate && late == 0 {
				t.Fatalf("no derivation appended to a month already folded: the delivery order tests nothing")
			}
			t.Logf("%d daily rows appended to months already folded", late)
		} else {
			deliverConcurrently(t, st, st2, evs, m == concurrentRebuild)
		}
		got := collectReports(t, st, from, to)
		if n := pendingCount(t, st); n != 0 {
			t.Fatalf("%d derivations still queued after the reports", n)
		}
		checkMonthsMatchDays(t, st)
		mid := collectReports(t, st, midFrom, midTo)
		diffReports(t, "through months", got, "from days", reportsFromDays(t, st, from, to))
		diffReports(t, "mid-month through months", mid, "from days", reportsFromDays(t, st, midFrom, midTo))
		rebuildAll(t, st)
		diffReports(t, "before rebuild", got, "after", collectReports(t, st, from, to))
		diffReports(t, "mid-month before rebuild", mid, "after", collectReports(t, st, midFrom, midTo))
		checkMonthsMatchDays(t, st)
		return got
	}
	events := monthsEvents()
	want := deliver(t, events, sequential, false)
	if len(want.ByPlan) == 0 || len(want.Cohorts) == 0 || len(want.Movers) == 0 {
		t.Fatalf("in-order reports empty: %+v", want)
	}
	rng := rand.New(rand.NewPCG(20, 10))
	for _, tc := range []struct {
		name string
		mode mode
	}{
		{"Shuffled", sequential}, {"ShuffledDuplicated", sequential}, {"Reversed", sequential},
		{"Concurrent", concurrent}, {"ConcurrentWithRebuild", concurrentRebuild},
	} {
		evs := append([]billing.Event(nil), events...)
		switch tc.name {
		case "Reversed":
			for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
				evs[i], evs[j] = evs[j], evs[i]
			}
		case "Shuffled":
			rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		default:
			evs = append(evs, events...)
			rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		}
		t.Run(tc.name, func(t *testing.T) {
			got := deliver(t, evs, tc.mode, tc.mode == sequential)
			if !reflect.DeepEqual(got, want) {
				t.Logf("order %v", ids(evs))
				diffReports(t, "got", got, "in order", want)
			}
		})
	}
}

// openReplica opens another Store on url, as another replica would.
func openReplica(t *testing.T, url string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler),
		postgres.Options{PrepareStatements: true, MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// deliverConcurrently applies evs from four goroutines on st while both
// stores derive the queue in batches of two and st2 folds and compacts in
// a loop. With rebuild, a full `metrics rebuild` (every customer's ledger
// and facts, then the rollups) runs on st2 once half the events are
// applied, while the rest are being delivered, derived and folded.
func deliverConcurrently(t *testing.T, st, st2 *postgres.Store, evs []billing.Event, rebuild bool) {
	t.Helper()
	ctx := context.Background()
	errs := make(chan error, len(evs)+8)
	var appliers, background sync.WaitGroup
	work := make(chan billing.Event)
	for range 4 {
		appliers.Add(1)
		go func() {
			defer appliers.Done()
			for ev := range work {
				if _, err := st.ApplyEvent(ctx, ev); err != nil {
					errs <- fmt.Errorf("apply %s: %w", ev.ID, err)
				}
			}
		}()
	}
	stop := make(chan struct{})
	loop := func(f func() error) {
		background.Add(1)
		go func() {
			defer background.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := f(); err != nil {
					errs <- err
					return
				}
				time.Sleep(time.Millisecond) // other tests share the CPU; this only spaces the rounds
			}
		}()
	}
	for _, s := range []*postgres.Store{st, st2} {
		loop(func() error { _, _, err := s.DeriveFacts(ctx, 2); return err })
	}
	loop(func() error {
		if err := st2.FoldRevenueRollups(ctx); err != nil {
			return err
		}
		_, err := st2.CompactRevenueRollup(ctx)
		return err
	})
	half := len(evs) / 2
	for _, ev := range evs[:half] {
		work <- ev
	}
	rebuilt := make(chan error, 1)
	if rebuild {
		go func() { rebuilt <- rebuildAllErr(ctx, st2) }()
	} else {
		rebuilt <- nil
	}
	for _, ev := range evs[half:] {
		work <- ev
	}
	close(work)
	appliers.Wait()
	if err := <-rebuilt; err != nil {
		errs <- fmt.Errorf("rebuild during delivery: %w", err)
	}
	close(stop)
	background.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// lateRows counts the daily rollup rows not yet folded whose month already
// has a row in the monthly rollup: changes the next fold adds to a month
// folded before (late or rewritten facts).
func lateRows(t *testing.T, st *postgres.Store) int {
	t.Helper()
	const q = `
SELECT count(*) FROM revenue_segments_daily d
WHERE NOT d.folded AND EXISTS (
    SELECT 1 FROM revenue_segments_monthly m
    WHERE m.livemode = d.livemode AND m.dimension = d.dimension AND m.month = date_trunc('month', d.day)::date
      AND m.currency = d.currency AND m.segment = d.segment)`
	var n int
	if err := st.DB().Get(&n, q); err != nil {
		t.Fatal(err)
	}
	return n
}

func pendingCount(t *testing.T, st *postgres.Store) int {
	t.Helper()
	var n int
	if err := st.DB().Get(&n, `SELECT count(*) FROM revenue_facts_pending`); err != nil {
		t.Fatal(err)
	}
	return n
}

// reportsFromDays takes the reports with the monthly rollup out of the
// picture: every daily row is marked unfolded and the months emptied, and
// the compaction lock (which every fold takes) is held while the reports
// run, so they read every change from revenue_segments_daily. The lock is
// then released and the next report folds everything back.
func reportsFromDays(t *testing.T, st *postgres.Store, from, to time.Time) reportSet {
	t.Helper()
	ctx := context.Background()
	conn, err := st.DB().Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, postgres.RollupLockKeyForTest); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, postgres.RollupLockKeyForTest); err != nil {
			t.Error(err)
		}
	}()
	if _, err := conn.ExecContext(ctx, `
WITH u AS (UPDATE revenue_segments_daily SET folded = false WHERE folded)
DELETE FROM revenue_segments_monthly`); err != nil {
		t.Fatal(err)
	}
	r := collectReports(t, st, from, to)
	var months int
	if err := st.DB().Get(&months, `SELECT count(*) FROM revenue_segments_monthly`); err != nil || months != 0 {
		t.Fatalf("a fold ran while the reports were to read days only: %d months (%v)", months, err)
	}
	return r
}

// rebuildAll is `billingd metrics rebuild`: every customer's ledger and
// facts, then the rollups from them.
func rebuildAll(t *testing.T, st *postgres.Store) {
	t.Helper()
	if err := rebuildAllErr(context.Background(), st); err != nil {
		t.Fatal(err)
	}
}

func rebuildAllErr(ctx context.Context, st *postgres.Store) error {
	refs, err := st.LedgerCustomers(ctx, "", 1000)
	if err != nil {
		return err
	}
	if len(refs) == 0 {
		return fmt.Errorf("no customers to rebuild")
	}
	for _, ref := range refs {
		if err := st.RebuildCustomerLedger(ctx, ref); err != nil {
			return err
		}
	}
	if err := st.RebuildRevenueRollup(ctx); err != nil {
		return err
	}
	_, err = st.CompactRevenueRollup(ctx)
	return err
}
