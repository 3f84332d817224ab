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

// factHistory is one customer's rich history: a trial that converts, a
// plan change, a second subscription of a yearly product, a repeating
// coupon, a scheduled cancellation and a late reactivation.
func factHistory(prefix string) []billing.SubscriptionVersion {
	a, b, c := prefix+"-0000-4000-8000-00000000000a", prefix+"-0000-4000-8000-00000000000b", prefix+"-0000-4000-8000-00000000000c"
	basic := planItem("price_basic", "prod_app", 1500, billing.IntervalMonth)
	pro := planItem("price_pro", "prod_app", 4000, billing.IntervalMonth)
	year := planItem("price_year", "prod_archive", 24000, billing.IntervalYear)
	trial := sub(billing.StatusTrialing, true, "eur", basic)
	trial.TrialEnd = ptr(at("2026-01-15T00:00:00Z"))
	coupon := sub(billing.StatusActive, true, "eur", pro)
	coupon.Discounts = []billing.Discount{{PercentOffBP: 2000, Duration: "repeating", End: ptr(at("2026-05-01T00:00:00Z"))}}
	cancel := sub(billing.StatusActive, true, "eur", pro)
	cancel.CancelAtPeriodEnd, cancel.CurrentPeriodEnd = true, ptr(at("2026-07-01T00:00:00Z"))
	return []billing.SubscriptionVersion{
		v(a, "2026-01-01T00:00:00Z", trial),
		v(a, "2026-01-15T00:00:05Z", sub(billing.StatusActive, true, "eur", basic)),
		v(a, "2026-02-01T00:00:00Z", coupon),
		v(b, "2026-02-01T00:00:01Z", sub(billing.StatusActive, true, "eur", year)),
		v(a, "2026-06-01T00:00:00Z", cancel),
		v(b, "2026-06-10T00:00:00Z", sub(billing.StatusCanceled, true, "eur", year)),
		v(c, "2026-09-01T00:00:00Z", sub(billing.StatusActive, true, "eur", basic)),
	}
}

// factsOf reads a customer's facts in a comparable form (after deriving
// what is queued).
func factsOf(t *testing.T, st *postgres.Store, ref string) []string {
	t.Helper()
	if err := st.DrainFacts(context.Background()); err != nil {
		t.Fatal(err)
	}
	var facts []string
	const q = `
SELECT concat_ws('|', livemode, currency, dimension, segment, effective_at AT TIME ZONE 'UTC', day, coalesce(kind, '-'),
                 delta_minor, active_delta, retained_delta, trial_start, trial_conversion)
FROM revenue_facts WHERE customer_ref = $1
ORDER BY 1`
	if err := st.DB().Select(&facts, q, ref); err != nil {
		t.Fatal(err)
	}
	return facts
}

func pendingFacts(t *testing.T, st *postgres.Store) int {
	t.Helper()
	var n int
	if err := st.DB().Get(&n, `SELECT count(*) FROM revenue_facts_pending`); err != nil {
		t.Fatal(err)
	}
	return n
}

// factReports is every report that reads the facts, for comparison.
func factReports(t *testing.T, st *postgres.Store) []any {
	t.Helper()
	ctx := context.Background()
	var out []any
	for _, dim := range []billing.Dimension{"", billing.DimensionPlan, billing.DimensionProduct, billing.DimensionInterval} {
		r, err := st.Revenue(ctx, billing.RevenueQuery{Livemode: true, Currency: "eur", Bucket: billing.BucketMonth, GroupBy: dim,
			From: at("2026-01-01T00:00:00Z"), To: at("2026-11-01T00:00:00Z"), AsOf: at("2026-12-01T00:00:00Z")})
		if err != nil {
			t.Fatalf("revenue by %q: %v", dim, err)
		}
		out = append(out, r)
	}
	c, err := st.Cohorts(ctx, billing.CohortQuery{Livemode: true, Currency: "eur", From: at("2026-01-01T00:00:00Z"),
		To: at("2026-11-01T00:00:00Z"), AsOf: at("2026-12-01T00:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	return append(out, c)
}

// TestFactsDerivedConcurrently: two stores (two replicas) derive the queue
// and fold the daily rollup into its months while versions keep arriving
// in shuffled orders; each customer's facts end equal to a rebuild's, the
// rollup agrees with them, each month with its days, and nothing is left
// queued.
func TestFactsDerivedConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	open := func() *postgres.Store {
		st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	st1, st2 := open(), open()
	const customers = 8
	rng := rand.New(rand.NewPCG(11, 12))
	type work struct {
		cust string
		ver  billing.SubscriptionVersion
	}
	var todo []work
	var refs []string
	for i := range customers {
		cust := fmt.Sprintf("4000000%d-0000-4000-8000-000000000000", i)
		refs = append(refs, cust)
		for _, ver := range factHistory(fmt.Sprintf("5000000%d", i)) {
			todo = append(todo, work{cust, ver})
		}
	}
	rng.Shuffle(len(todo), func(i, j int) { todo[i], todo[j] = todo[j], todo[i] })

	applied := make(chan struct{})
	var wg sync.WaitGroup
	derived := make([]int, 2)
	errs := make(chan error, 4)
	for i, st := range []*postgres.Store{st1, st2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				// Small batches, so the two interleave over the same customers.
				n, _, err := st.DeriveFacts(ctx, 3)
				if err != nil {
					errs <- err
					return
				}
				derived[i] += n
				// Each replica's reports fold the daily rollup into its
				// months while the other derives.
				if _, err := st.CompactRevenueRollup(ctx); err != nil {
					errs <- err
					return
				}
				select {
				case <-applied:
					return
				default:
				}
			}
		}()
	}
	for _, w := range todo {
		if err := st1.ApplyVersionForTest(ctx, w.cust, w.ver); err != nil {
			t.Fatal(err)
		}
	}
	close(applied)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("derived by store 1: %d rows, store 2: %d rows", derived[0], derived[1])
	if err := st2.DrainFacts(ctx); err != nil {
		t.Fatal(err)
	}
	if n := pendingFacts(t, st1); n != 0 {
		t.Fatalf("%d derivations left queued after draining", n)
	}
	checkSegmentRollup(t, st1)
	checkMonthsMatchDays(t, st1)
	before := factReports(t, st1)
	for _, ref := range refs {
		got := factsOf(t, st1, ref)
		if len(got) < 10 {
			t.Fatalf("customer %s: expected rich facts, got %v", ref, got)
		}
		if err := st1.RebuildCustomerLedger(ctx, ref); err != nil {
			t.Fatal(err)
		}
		if rebuilt := factsOf(t, st1, ref); !reflect.DeepEqual(rebuilt, got) {
			t.Fatalf("customer %s: derived concurrently\n%v\nrebuilt\n%v", ref, got, rebuilt)
		}
	}
	if err := st1.RebuildRevenueRollup(ctx); err != nil {
		t.Fatal(err)
	}
	if after := factReports(t, st1); !reflect.DeepEqual(after, before) {
		t.Fatalf("reports after a rebuild differ:\n%+v\nbefore\n%+v", after, before)
	}
}

// TestFactsSkipLockedCustomer: a customer whose ledger lock is held (by a
// rebuild, an erasure or another replica's deriver) stays queued while the
// others are derived, and is derived once the lock is released.
func TestFactsSkipLockedCustomer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	held, free := "40000000-0000-4000-8000-0000000000a1", "40000000-0000-4000-8000-0000000000b1"
	for _, c := range []struct{ cust, prefix string }{{held, "600000a1"}, {free, "600000b1"}} {
		for _, ver := range factHistory(c.prefix) {
			if err := st.ApplyVersionForTest(ctx, c.cust, ver); err != nil {
				t.Fatal(err)
			}
		}
	}
	tx, err := st.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // released below
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('billingd.ledger:' || $1, 0))`, held); err != nil {
		t.Fatal(err)
	}
	done, full, err := st.DeriveFacts(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	queued := func(ref string) int {
		var n int
		if err := st.DB().Get(&n, `SELECT count(*) FROM revenue_facts_pending WHERE customer_ref = $1`, ref); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if full || done == 0 || queued(free) != 0 || queued(held) == 0 {
		t.Fatalf("with %s locked: derived %d (full %v), queued free %d, held %d", held, done, full, queued(free), queued(held))
	}
	var n int
	if err := st.DB().Get(&n, `SELECT count(*) FROM revenue_facts WHERE customer_ref = $1`, held); err != nil || n != 0 {
		t.Fatalf("locked customer got %d facts (%v)", n, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := factsOf(t, st, held); len(got) == 0 || queued(held) != 0 {
		t.Fatalf("after the lock's release: %d facts, %d queued", len(got), queued(held))
	}
	checkSegmentRollup(t, st)
}

// TestFactsShuffledDuplicatedDelivery sends events through the real event
// transaction, shuffled, every other one delivered twice, from several
// goroutines at once, with the background deriver running: the reports
// that read facts equal those of in-order delivery with no deriver at all
// (reports derive what is queued first), and each customer's facts equal
// a rebuild's.
func TestFactsShuffledDuplicatedDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ev := func(id, cust, subID, when string, s billing.Subscription) billing.Event {
		s.ID, s.CustomerID, s.Livemode, s.Currency = subID, cust, true, "eur"
		typ := "customer.subscription.updated"
		if s.Status == billing.StatusCanceled {
			typ = "customer.subscription.deleted"
		}
		return billing.Event{ID: id, Type: typ, Created: at(when), Livemode: true, Subscription: &s}
	}
	var events []billing.Event
	for i := range 5 {
		cust := fmt.Sprintf("cus_Facts%d", i)
		subIDs := map[string]string{}
		for j, ver := range factHistory(fmt.Sprintf("7000000%d", i)) {
			id, ok := subIDs[ver.SubscriptionRef]
			if !ok {
				id = fmt.Sprintf("sub_Facts%dx%d", i, len(subIDs))
				subIDs[ver.SubscriptionRef] = id
			}
			// Customers start weeks apart, so cohorts differ (and nothing is dated after today).
			when := ver.At.AddDate(0, 0, 9*i).Format(time.RFC3339)
			s := ver.State
			if s.TrialEnd != nil {
				s.TrialEnd = ptr(s.TrialEnd.AddDate(0, 0, 9*i))
			}
			if s.CurrentPeriodEnd != nil {
				s.CurrentPeriodEnd = ptr(s.CurrentPeriodEnd.AddDate(0, 0, 9*i))
			}
			if len(s.Discounts) > 0 {
				d := s.Discounts[0]
				d.End = ptr(d.End.AddDate(0, 0, 9*i))
				s.Discounts = []billing.Discount{d}
			}
			events = append(events, ev(fmt.Sprintf("evt_facts_%d_%d", i, j), cust, id, when, s))
		}
	}

	inOrder := pgtest.Open(t)
	for _, e := range events {
		if _, err := inOrder.ApplyEvent(ctx, e); err != nil {
			t.Fatalf("apply %s: %v", e.ID, err)
		}
	}
	want := factReports(t, inOrder)

	st := pgtest.Open(t)
	dctx, stop := context.WithCancel(ctx)
	deriverDone := make(chan struct{})
	go func() {
		defer close(deriverDone)
		st.RunFactDeriver(dctx, postgres.FactDeriverTiming{Poll: 20 * time.Millisecond})
	}()
	rng := rand.New(rand.NewPCG(5, 6))
	deliveries := append([]billing.Event(nil), events...)
	for i := 0; i < len(events); i += 2 {
		deliveries = append(deliveries, events[i])
	}
	rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	next := make(chan billing.Event)
	errs := make(chan error, len(deliveries))
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range next {
				if _, err := st.ApplyEvent(ctx, e); err != nil {
					errs <- fmt.Errorf("apply %s: %w", e.ID, err)
				}
			}
		}()
	}
	for _, e := range deliveries {
		next <- e
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Stopped before reading, so no derivation is in flight: the reports
	// below must settle what is still queued themselves.
	stop()
	<-deriverDone
	got := factReports(t, st)
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("report %d after shuffled, duplicated, concurrent delivery:\n%+v\nin order\n%+v", i, got[i], want[i])
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if n := pendingFacts(t, st); n != 0 {
		t.Fatalf("%d derivations still queued after the reports", n)
	}
	checkSegmentRollup(t, st)
	checkMonthsMatchDays(t, st)
	var refs []string
	if err := st.DB().Select(&refs, `SELECT customer_ref::text FROM customers ORDER BY 1`); err != nil || len(refs) != 5 {
		t.Fatalf("customers %v (%v)", refs, err)
	}
	for _, ref := range refs {
		got := factsOf(t, st, ref)
		if err := st.RebuildCustomerLedger(ctx, ref); err != nil {
			t.Fatal(err)
		}
		if rebuilt := factsOf(t, st, ref); !reflect.DeepEqual(rebuilt, got) || len(got) == 0 {
			t.Fatalf("customer %s: derived\n%v\nrebuilt\n%v", ref, got, rebuilt)
		}
	}
}

// TestFactsQueueErasure: an account erased while its customer's facts are
// still queued keeps its figures under the fresh reference: the queued
// derivation moves with the history and derives there.
func TestFactsQueueErasure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	const cust = "40000000-0000-4000-8000-0000000000e1"
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO customers (stripe_customer_id, customer_ref, account_id, linked_via, livemode)
		VALUES ('cus_FactsQueued', $1, 'acct_facts_queued', 'api', true)`, cust); err != nil {
		t.Fatal(err)
	}
	// Facts derived for the first half of the history, the rest queued.
	vs := factHistory("800000e1")
	for i, ver := range vs {
		if err := st.ApplyVersionForTest(ctx, cust, ver); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			if err := st.DrainFacts(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if pendingFacts(t, st) == 0 {
		t.Fatal("nothing queued before the erasure")
	}
	if _, err := st.EraseAccount(ctx, billing.ErasureRequest{AccountID: "acct_facts_queued", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	var old int
	if err := st.DB().Get(&old, `SELECT (SELECT count(*) FROM revenue_facts WHERE customer_ref = $1)
		+ (SELECT count(*) FROM revenue_facts_pending WHERE customer_ref = $1)`, cust); err != nil || old != 0 {
		t.Fatalf("%d rows still under the erased reference (%v)", old, err)
	}
	var fresh string
	if err := st.DB().Get(&fresh, `SELECT DISTINCT customer_ref::text FROM subscription_versions`); err != nil {
		t.Fatal(err)
	}
	got := factsOf(t, st, fresh)
	// The same history seeded whole elsewhere derives the same facts.
	ref := pgtest.Open(t)
	if err := metricstest.Seed(ctx, ref, map[string][]billing.SubscriptionVersion{cust: vs}); err != nil {
		t.Fatal(err)
	}
	if want := factsOf(t, ref, cust); !reflect.DeepEqual(got, want) || len(got) == 0 {
		t.Fatalf("erased customer's facts\n%v\nwant\n%v", got, want)
	}
}

// TestFactDeriverYieldsToEvents: a deriver whose event path committed a
// batch less than Quiet ago leaves the queue alone, polls or not, and
// derives once the work has waited MaxDefer.
func TestFactDeriverYieldsToEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	s := sub(billing.StatusActive, true, "eur", planItem("price_basic", "prod_app", 1500, billing.IntervalMonth))
	s.ID, s.CustomerID, s.Livemode = "sub_Yield1", "cus_Yield1", true
	if _, err := st.ApplyEvent(ctx, billing.Event{ID: "evt_yield_1", Type: "customer.subscription.created",
		Created: at("2026-03-01T00:00:00Z"), Livemode: true, Subscription: &s}); err != nil {
		t.Fatal(err)
	}
	if n := pendingFacts(t, st); n == 0 {
		t.Fatal("the event queued no derivation")
	}
	run := func(timing postgres.FactDeriverTiming) (stop func()) {
		dctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			st.RunFactDeriver(dctx, timing)
		}()
		return func() { cancel(); <-done }
	}

	// The batch above committed moments ago and Quiet is an hour: forty
	// polls later the derivation is still queued.
	stop := run(postgres.FactDeriverTiming{Poll: 10 * time.Millisecond, Quiet: time.Hour, MaxDefer: time.Hour})
	time.Sleep(400 * time.Millisecond)
	stop()
	if n := pendingFacts(t, st); n == 0 {
		t.Fatal("the deriver derived while the event path was busy")
	}

	// The same, but work may wait only 50 ms: it is derived.
	stop = run(postgres.FactDeriverTiming{Poll: 10 * time.Millisecond, Quiet: time.Hour, MaxDefer: 50 * time.Millisecond})
	defer stop()
	deadline := time.Now().Add(time.Minute)
	for pendingFacts(t, st) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("queued derivation not derived a minute after MaxDefer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var ref string
	if err := st.DB().Get(&ref, `SELECT customer_ref::text FROM customers WHERE stripe_customer_id = 'cus_Yield1'`); err != nil {
		t.Fatal(err)
	}
	if got := factsOf(t, st, ref); len(got) == 0 {
		t.Fatal("derived, but no facts")
	}
}

// TestUpgradeQueuesStoredHistory: a database upgraded from a release
// before the facts (history, no facts, no queue) gets every customer
// queued by the migration that creates the queue, and deriving that queue
// gives the facts the event path derived.
func TestUpgradeQueuesStoredHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	for i := range 3 {
		cust := fmt.Sprintf("cus_Upgrade%d", i)
		for j, ver := range factHistory(fmt.Sprintf("7100000%d", i)) {
			s := ver.State
			s.ID, s.CustomerID, s.Livemode, s.Currency = fmt.Sprintf("sub_Upgrade%dx%s", i, ver.SubscriptionRef[len(ver.SubscriptionRef)-1:]), cust, true, "eur"
			typ := "customer.subscription.updated"
			if s.Status == billing.StatusCanceled {
				typ = "customer.subscription.deleted"
			}
			if _, err := st.ApplyEvent(ctx, billing.Event{ID: fmt.Sprintf("evt_upgrade_%d_%d", i, j), Type: typ,
				Created: ver.At, Livemode: true, Subscription: &s}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.DrainFacts(ctx); err != nil {
		t.Fatal(err)
	}
	var refs []string
	if err := st.DB().Select(&refs, `SELECT customer_ref::text FROM customers ORDER BY 1`); err != nil || len(refs) != 3 {
		t.Fatalf("customers %v (%v)", refs, err)
	}
	want := map[string][]string{}
	for _, ref := range refs {
		if want[ref] = factsOf(t, st, ref); len(want[ref]) == 0 {
			t.Fatalf("customer %s has no facts", ref)
		}
	}
	wantReports := factReports(t, st)

	// Back to the schema before the queue, and the facts a release before
	// them would not have.
	for {
		v, dirty, err := st.SchemaVersion()
		if err != nil || dirty {
			t.Fatalf("schema version %d dirty=%v: %v", v, dirty, err)
		}
		if v < 640 {
			break
		}
		if err := st.MigrateDown(1); err != nil {
			t.Fatal(err)
		}
	}
	// (The daily rollup's months, revenue_segments_monthly, went with
	// migration 0650 in the step back.)
	if tableExists(t, st, "revenue_segments_monthly") {
		t.Fatal("revenue_segments_monthly still there below 0640")
	}
	if _, err := st.DB().Exec(`TRUNCATE revenue_facts, revenue_segments_daily`); err != nil {
		t.Fatal(err)
	}
	if err := st.MigrateUp(); err != nil {
		t.Fatal(err)
	}
	if n := pendingFacts(t, st); n != 3 {
		t.Fatalf("%d derivations queued by the upgrade, want one per customer (3)", n)
	}
	if err := st.DrainFacts(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ref := range refs {
		if got := factsOf(t, st, ref); !reflect.DeepEqual(got, want[ref]) {
			t.Fatalf("customer %s after the upgrade:\n%v\nbefore\n%v", ref, got, want[ref])
		}
	}
	if got := factReports(t, st); !reflect.DeepEqual(got, wantReports) {
		t.Fatalf("reports after the upgrade:\n%+v\nbefore\n%+v", got, wantReports)
	}
	checkSegmentRollup(t, st)
	checkMonthsMatchDays(t, st)
}
