package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/metricstest"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func ptr(t time.Time) *time.Time { return &t }

func monthlyItem(amount, qty int64) billing.Item {
	return billing.Item{PriceID: "price_1", Quantity: qty, UnitAmount: amount, Interval: billing.IntervalMonth, IntervalCount: 1}
}

func sub(status billing.Status, live bool, currency string, items ...billing.Item) billing.Subscription {
	return billing.Subscription{Status: status, Livemode: live, Currency: currency, Items: items}
}

func v(ref, when string, s billing.Subscription) billing.SubscriptionVersion {
	return billing.SubscriptionVersion{SubscriptionRef: ref, At: at(when), Event: "evt_" + when, State: s}
}

const (
	custA = "00000000-0000-4000-8000-00000000000a"
	custB = "00000000-0000-4000-8000-00000000000b"
	custT = "00000000-0000-4000-8000-00000000000c"
	subA  = "10000000-0000-4000-8000-00000000000a"
	subB  = "10000000-0000-4000-8000-00000000000b"
	subT  = "10000000-0000-4000-8000-00000000000c"
)

// workedExample is metrics.md's example, plus a test-mode customer that
// must never show in live figures.
func workedExample() map[string][]billing.SubscriptionVersion {
	a3 := sub(billing.StatusActive, true, "usd", monthlyItem(2000, 2))
	a3.CancelAtPeriodEnd, a3.CurrentPeriodEnd = true, ptr(at("2026-04-03T09:00:00Z"))
	return map[string][]billing.SubscriptionVersion{
		custA: {
			v(subA, "2026-01-03T09:00:00Z", sub(billing.StatusActive, true, "usd", monthlyItem(2000, 1))),
			v(subA, "2026-02-10T12:00:00Z", sub(billing.StatusActive, true, "usd", monthlyItem(2000, 2))),
			v(subA, "2026-03-15T08:00:00Z", a3),
			v(subA, "2026-04-03T09:00:01Z", sub(billing.StatusCanceled, true, "usd", monthlyItem(2000, 2))),
		},
		custB: {v(subB, "2026-01-20T15:00:00Z", sub(billing.StatusActive, true, "usd",
			billing.Item{Quantity: 1, UnitAmount: 24000, Interval: billing.IntervalYear, IntervalCount: 1}))},
		custT: {v(subT, "2026-01-05T00:00:00Z", sub(billing.StatusActive, false, "usd", monthlyItem(99900, 1)))},
	}
}

func TestRevenueWorkedExample(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	if err := metricstest.Seed(ctx, st, workedExample()); err != nil {
		t.Fatal(err)
	}
	got, err := st.Revenue(ctx, billing.RevenueQuery{Livemode: true, Currency: "usd", Bucket: billing.BucketMonth,
		From: at("2026-01-01T00:00:00Z"), To: at("2026-05-01T00:00:00Z"), AsOf: at("2026-06-01T00:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	// The SQL report must agree with the in-memory reference over the same ledgers.
	var ledgers []metricstest.CustomerMovements
	for ref, vs := range workedExample() {
		ledgers = append(ledgers, metricstest.CustomerMovements{CustomerRef: ref, Movements: billing.DeriveLedger(vs).Movements})
	}
	want := metricstest.Periods(ledgers, true, "usd", billing.BucketMonth, at("2026-01-01T00:00:00Z"), at("2026-05-01T00:00:00Z"))
	wantActive := []int64{2, 2, 2, 1}
	if len(got) != len(want) {
		t.Fatalf("got %d buckets, want %d", len(got), len(want))
	}
	for i := range want {
		want[i].ActiveSubscriptions = wantActive[i]
		if got[i] != want[i] {
			t.Errorf("bucket %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	tests := []struct {
		name  string
		month int
		mrr   int64
		check func(billing.PeriodFigures) bool
	}{
		{"Jan", 0, 4000, func(f billing.PeriodFigures) bool { return f.Movements.New == 4000 && f.CustomerChurnRate == nil }},
		{"Feb", 1, 6000, func(f billing.PeriodFigures) bool { return f.Movements.Expansion == 2000 && f.NetNew == 2000 }},
		{"Mar", 2, 6000, func(f billing.PeriodFigures) bool { return f.NetNew == 0 }},
		{"Apr", 3, 2000, func(f billing.PeriodFigures) bool {
			return f.Movements.Churn == 4000 && f.CustomerChurnRate != nil && *f.CustomerChurnRate == 0.5
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := got[tc.month].Figures(billing.BucketMonth)
			if f.MRREnd != tc.mrr || !tc.check(f) {
				t.Fatalf("figures %+v", f)
			}
		})
	}
	t.Run("TestModeSeparate", func(t *testing.T) {
		tm, err := st.Revenue(ctx, billing.RevenueQuery{Livemode: false, Bucket: billing.BucketMonth,
			From: at("2026-01-01T00:00:00Z"), To: at("2026-02-01T00:00:00Z")})
		if err != nil {
			t.Fatal(err)
		}
		if len(tm) != 1 || tm[0].MRREnd != 99900 || tm[0].Currency != "usd" {
			t.Fatalf("test mode report %+v", tm)
		}
	})
	t.Run("AsOfHidesScheduledChurn", func(t *testing.T) {
		r, err := st.Revenue(ctx, billing.RevenueQuery{Livemode: true, Currency: "usd", Bucket: billing.BucketMonth,
			From: at("2026-04-01T00:00:00Z"), To: at("2026-05-01T00:00:00Z"), AsOf: at("2026-04-02T00:00:00Z")})
		if err != nil {
			t.Fatal(err)
		}
		if r[0].MRREnd != 6000 || r[0].Movements.Churn != 0 {
			t.Fatalf("churn before it happened: %+v", r[0])
		}
	})
	t.Run("Summary", func(t *testing.T) {
		s, err := st.Summary(ctx, true, at("2026-04-20T00:00:00Z"))
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Currencies) != 1 {
			t.Fatalf("summary %+v", s)
		}
		c := s.Currencies[0]
		if c.MRR != 2000 || c.ARR != 24000 || c.PayingCustomers != 1 || c.ActiveSubscriptions != 1 || *c.ARPA != 2000 ||
			c.Movements30d.Churn != 4000 || c.Movements30d.New != 0 {
			t.Fatalf("summary %+v", c)
		}
	})
	t.Run("DailyBuckets", func(t *testing.T) {
		r, err := st.Revenue(ctx, billing.RevenueQuery{Livemode: true, Currency: "usd", Bucket: billing.BucketDay,
			From: at("2026-01-19T00:00:00Z"), To: at("2026-01-22T00:00:00Z")})
		if err != nil {
			t.Fatal(err)
		}
		ends := []int64{r[0].MRREnd, r[1].MRREnd, r[2].MRREnd}
		if !reflect.DeepEqual(ends, []int64{2000, 4000, 4000}) || r[1].Movements.New != 2000 {
			t.Fatalf("daily %+v", r)
		}
	})
}

// ledger reads a customer's derived rows in a comparable form.
func ledger(t *testing.T, st *postgres.Store, ref string) []string {
	t.Helper()
	// The facts are derived after the commit: settle them first.
	if err := st.DrainFacts(context.Background()); err != nil {
		t.Fatal(err)
	}
	var rows []string
	const q = `
SELECT concat_ws('|', coalesce(subscription_ref::text, '-'), livemode, currency, effective_at AT TIME ZONE 'UTC', kind,
                 delta_minor, customer_mrr_before, customer_mrr_after)
FROM mrr_movements WHERE customer_ref = $1 ORDER BY effective_at, currency, livemode`
	if err := st.DB().Select(&rows, q, ref); err != nil {
		t.Fatal(err)
	}
	var act []string
	const qa = `
SELECT concat_ws('|', subscription_ref, effective_at AT TIME ZONE 'UTC', delta)
FROM subscription_activity WHERE customer_ref = $1 ORDER BY effective_at, subscription_ref, delta`
	if err := st.DB().Select(&act, qa, ref); err != nil {
		t.Fatal(err)
	}
	// The segment, cohort and trial facts are part of the ledger too.
	var facts []string
	const qf = `
SELECT concat_ws('|', livemode, currency, dimension, segment, effective_at AT TIME ZONE 'UTC', day, coalesce(kind, '-'),
                 delta_minor, active_delta, retained_delta, trial_start, trial_conversion)
FROM revenue_facts WHERE customer_ref = $1
ORDER BY effective_at, dimension, segment, currency, livemode, kind, delta_minor, active_delta, trial_start, trial_conversion`
	if err := st.DB().Select(&facts, qf, ref); err != nil {
		t.Fatal(err)
	}
	return append(append(rows, act...), facts...)
}

// checkSegmentRollup: the segment rollup sums to what the facts say, per
// mode, currency, dimension, segment and day.
func checkSegmentRollup(t *testing.T, st *postgres.Store) {
	t.Helper()
	const q = `
WITH roll AS (
    SELECT livemode, currency, dimension, segment, day, sum(mrr_delta) AS m, sum(paying_delta) AS p,
           sum(active_delta) AS a, sum(retained_delta) AS rt, sum(trial_starts) AS ts, sum(trial_conversions) AS tc,
           sum(new_customers) AS nc
    FROM revenue_segments_daily GROUP BY 1, 2, 3, 4, 5
), led AS (
    SELECT livemode, currency, dimension, segment, day, sum(delta_minor) AS m,
           sum(CASE WHEN kind IN ('new', 'reactivation') THEN 1 WHEN kind = 'churn' THEN -1 ELSE 0 END) AS p,
           sum(active_delta) AS a, sum(retained_delta) AS rt, sum(trial_start) AS ts, sum(trial_conversion) AS tc,
           sum(CASE WHEN kind = 'new' THEN 1 ELSE 0 END) AS nc
    FROM revenue_facts GROUP BY 1, 2, 3, 4, 5
), nz_roll AS (SELECT * FROM roll WHERE (m, p, a, rt, ts, tc, nc) <> (0, 0, 0, 0, 0, 0, 0)),
   nz_led AS (SELECT * FROM led WHERE (m, p, a, rt, ts, tc, nc) <> (0, 0, 0, 0, 0, 0, 0))
SELECT count(*) FROM ((TABLE nz_roll EXCEPT TABLE nz_led) UNION ALL (TABLE nz_led EXCEPT TABLE nz_roll)) d`
	var diff int
	if err := st.DB().Get(&diff, q); err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Fatalf("revenue_segments_daily disagrees with revenue_facts on %d rows", diff)
	}
}

// TestRecomputeDeliveryOrder applies one customer's versions the way the
// event path does (insert a version, recompute from its time) in many
// delivery orders: the ledger always ends the same, and equals a rebuild.
func TestRecomputeDeliveryOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	coupon := sub(billing.StatusActive, true, "eur", monthlyItem(1500, 2))
	coupon.Discounts = []billing.Discount{{PercentOffBP: 2000, Duration: "repeating", End: ptr(at("2026-05-01T00:00:00Z"))}}
	cancel := sub(billing.StatusActive, true, "eur", monthlyItem(1500, 3))
	cancel.CancelAtPeriodEnd, cancel.CurrentPeriodEnd = true, ptr(at("2026-07-01T00:00:00Z"))
	history := func(prefix string) []billing.SubscriptionVersion {
		a, b, c := prefix+"-0000-4000-8000-00000000000a", prefix+"-0000-4000-8000-00000000000b", prefix+"-0000-4000-8000-00000000000c"
		return []billing.SubscriptionVersion{
			v(a, "2026-01-01T00:00:00Z", sub(billing.StatusTrialing, true, "eur", monthlyItem(1500, 1))),
			v(a, "2026-01-15T00:00:00Z", sub(billing.StatusActive, true, "eur", monthlyItem(1500, 1))),
			v(a, "2026-02-01T00:00:00Z", coupon),
			v(b, "2026-02-01T00:00:01Z", sub(billing.StatusActive, true, "eur", monthlyItem(4000, 1))),
			v(a, "2026-06-01T00:00:00Z", cancel),
			v(b, "2026-06-10T00:00:00Z", sub(billing.StatusCanceled, true, "eur")),
			v(c, "2026-09-01T00:00:00Z", sub(billing.StatusActive, true, "eur", monthlyItem(700, 1))),
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var first []string
	for i := range 6 {
		prefix := fmt.Sprintf("2000000%d", i)
		cust := fmt.Sprintf("3000000%d-0000-4000-8000-000000000000", i)
		vs := history(prefix)
		if i > 0 {
			rng.Shuffle(len(vs), func(i, j int) { vs[i], vs[j] = vs[j], vs[i] })
		}
		for _, ver := range vs {
			if err := metricstest.InsertVersion(ctx, st, cust, ver); err != nil {
				t.Fatal(err)
			}
			if err := st.RecomputeForTest(ctx, cust, true, ver.At); err != nil {
				t.Fatal(err)
			}
			// Half the orders derive the facts after every version, as a
			// deriver keeping up would; the others queue them all and
			// derive once, from the earliest time queued.
			if i%2 == 0 {
				if err := st.DrainFacts(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		got := ledger(t, st, cust)
		// Normalise the per-order references so ledgers compare.
		for j := range got {
			got[j] = replaceAll(got[j], prefix, "P")
		}
		if i == 0 {
			first = got
			if len(first) < 8 {
				t.Fatalf("expected a rich ledger, got %v", first)
			}
			continue
		}
		if !reflect.DeepEqual(got, first) {
			t.Fatalf("delivery order %d: ledger\n%v\nwant\n%v", i, got, first)
		}
		if err := st.RebuildCustomerLedger(ctx, cust); err != nil {
			t.Fatal(err)
		}
		rebuilt := ledger(t, st, cust)
		for j := range rebuilt {
			rebuilt[j] = replaceAll(rebuilt[j], prefix, "P")
		}
		if !reflect.DeepEqual(rebuilt, first) {
			t.Fatalf("rebuild differs:\n%v\nwant\n%v", rebuilt, first)
		}
	}
	checkRollup(t, st)
	if err := st.DrainFacts(ctx); err != nil {
		t.Fatal(err)
	}
	checkSegmentRollup(t, st)
	var dups int
	if _, err := st.CompactRevenueRollup(ctx); err != nil {
		t.Fatal(err)
	}
	checkRollup(t, st)
	checkSegmentRollup(t, st)
	if err := st.DB().Get(&dups, `SELECT count(*) FROM (SELECT 1 FROM revenue_segments_daily
		GROUP BY livemode, currency, dimension, segment, day HAVING count(*) > 1) d`); err != nil || dups != 0 {
		t.Fatalf("after compaction %d segment days still have several rows (%v)", dups, err)
	}
	if err := st.DB().Get(&dups, `SELECT count(*) FROM (SELECT 1 FROM revenue_daily GROUP BY livemode, currency, day HAVING count(*) > 1) d`); err != nil || dups != 0 {
		t.Fatalf("after compaction %d days still have several rows (%v)", dups, err)
	}
}

func replaceAll(s, old, new string) string {
	for {
		i := indexOf(s, old)
		if i < 0 {
			return s
		}
		s = s[:i] + new + s[i+len(old):]
	}
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestRebuildCustomerLedger: a rebuild finds every customer with history,
// erased ones (no customers row) included, and fixes a wrong ledger.
func TestRebuildCustomerLedger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	if err := metricstest.Seed(ctx, st, workedExample()); err != nil {
		t.Fatal(err)
	}
	want := ledger(t, st, custA)
	// Corrupt the ledger as an old formula might have left it.
	if _, err := st.DB().Exec(`UPDATE mrr_movements SET delta_minor = delta_minor * 2 WHERE customer_ref = $1`, custA); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().Exec(`INSERT INTO customers (stripe_customer_id, customer_ref, livemode) VALUES ('cus_B', $1, true)`, custB); err != nil {
		t.Fatal(err)
	}
	refs, err := st.LedgerCustomers(ctx, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	more, err := st.LedgerCustomers(ctx, refs[len(refs)-1], 2)
	if err != nil {
		t.Fatal(err)
	}
	all := append(refs, more...)
	if !reflect.DeepEqual(all, []string{custA, custB, custT}) {
		t.Fatalf("ledger customers %v", all)
	}
	for _, ref := range all {
		if err := st.RebuildCustomerLedger(ctx, ref); err != nil {
			t.Fatalf("rebuild %s: %v", ref, err)
		}
	}
	if got := ledger(t, st, custA); !reflect.DeepEqual(got, want) {
		t.Fatalf("rebuilt ledger\n%v\nwant\n%v", got, want)
	}
}

// TestRebuildWhileEventsArrive runs ledger rebuilds concurrently with
// event-path transactions for the same customers: whatever interleaving,
// the final ledger equals a fresh derivation of the final history.
func TestRebuildWhileEventsArrive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	const customers = 4
	refs := make([]string, customers)
	for i := range refs {
		refs[i] = fmt.Sprintf("4000000%d-0000-4000-8000-000000000000", i)
		if _, err := st.DB().Exec(`INSERT INTO customers (stripe_customer_id, customer_ref, livemode) VALUES ($1, $2, true)`,
			fmt.Sprintf("cus_R%d", i), refs[i]); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, customers+1)
	for i, ref := range refs {
		go func() {
			sref := fmt.Sprintf("5000000%d-0000-4000-8000-000000000000", i)
			for m := 1; m <= 12; m++ {
				ver := v(sref, fmt.Sprintf("2026-%02d-05T00:00:00Z", m), sub(billing.StatusActive, true, "usd", monthlyItem(1000, int64(m%4+1))))
				if err := st.ApplyVersionForTest(ctx, ref, ver); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	go func() {
		for range 5 {
			for _, ref := range refs {
				if err := st.RebuildCustomerLedger(ctx, ref); err != nil {
					errc <- err
					return
				}
			}
		}
		errc <- nil
	}()
	for range customers + 1 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	checkRollup(t, st)
	for _, ref := range refs {
		got := ledger(t, st, ref)
		if err := st.RebuildCustomerLedger(ctx, ref); err != nil {
			t.Fatal(err)
		}
		if want := ledger(t, st, ref); !reflect.DeepEqual(got, want) || len(want) < 10 {
			t.Fatalf("customer %s: ledger after concurrent rebuilds\n%v\nwant\n%v", ref, got, want)
		}
	}
}

// checkRollup asserts that the revenue_daily rollup sums, day by day, to
// exactly what the ledger says: the incremental maintenance in
// replaceLedger never drifts.
func checkRollup(t *testing.T, st *postgres.Store) {
	t.Helper()
	const q = `
WITH roll AS (
    SELECT livemode, currency, day, sum(mrr_delta) AS mrr, sum(new_minor) AS n, sum(expansion_minor) AS e,
           sum(contraction_minor) AS c, sum(churn_minor) AS ch, sum(reactivation_minor) AS r,
           sum(paying_delta) AS p, sum(churned_customers) AS cc, sum(active_delta) AS a
    FROM revenue_daily GROUP BY 1, 2, 3
), led AS (
    SELECT livemode, currency, day, sum(mrr) AS mrr, sum(n) AS n, sum(e) AS e, sum(c) AS c, sum(ch) AS ch,
           sum(r) AS r, sum(p) AS p, sum(cc) AS cc, sum(a) AS a
    FROM (
        SELECT livemode, currency, (effective_at AT TIME ZONE 'UTC')::date AS day, delta_minor AS mrr,
               CASE WHEN kind = 'new' THEN delta_minor ELSE 0 END AS n,
               CASE WHEN kind = 'expansion' THEN delta_minor ELSE 0 END AS e,
               CASE WHEN kind = 'contraction' THEN -delta_minor ELSE 0 END AS c,
               CASE WHEN kind = 'churn' THEN -delta_minor ELSE 0 END AS ch,
               CASE WHEN kind = 'reactivation' THEN delta_minor ELSE 0 END AS r,
               CASE WHEN kind IN ('new', 'reactivation') THEN 1 WHEN kind = 'churn' THEN -1 ELSE 0 END AS p,
               CASE WHEN kind = 'churn' THEN 1 ELSE 0 END AS cc, 0 AS a
        FROM mrr_movements
        UNION ALL
        SELECT livemode, currency, (effective_at AT TIME ZONE 'UTC')::date, 0, 0, 0, 0, 0, 0, 0, 0, delta
        FROM subscription_activity
    ) x GROUP BY 1, 2, 3
), nz_roll AS (SELECT * FROM roll WHERE (mrr, n, e, c, ch, r, p, cc, a) <> (0, 0, 0, 0, 0, 0, 0, 0, 0)),
   nz_led AS (SELECT * FROM led WHERE (mrr, n, e, c, ch, r, p, cc, a) <> (0, 0, 0, 0, 0, 0, 0, 0, 0))
SELECT concat_ws('|', 'rollup-only', livemode, currency, day) FROM (SELECT * FROM nz_roll EXCEPT SELECT * FROM nz_led) a
UNION ALL
SELECT concat_ws('|', 'ledger-only', livemode, currency, day) FROM (SELECT * FROM nz_led EXCEPT SELECT * FROM nz_roll) b`
	var diff []string
	if err := st.DB().Select(&diff, q); err != nil {
		t.Fatal(err)
	}
	if len(diff) > 0 {
		t.Fatalf("revenue_daily disagrees with the ledger on %d days: %v", len(diff), diff)
	}
}
