package billing

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestItemShares(t *testing.T) {
	t.Parallel()
	at := *tp("2026-03-01T00:00:00Z")
	withD := func(s Subscription, d ...Discount) Subscription { s.Discounts = d; return s }
	yearly := Item{PriceID: "price_y", Quantity: 1, UnitAmount: 1000, Interval: IntervalYear, IntervalCount: 1}
	metered := Item{PriceID: "price_u", Quantity: 1, Interval: IntervalMonth, IntervalCount: 1, UsageType: "metered"}
	tests := []struct {
		name string
		sub  Subscription
		want []int64
	}{
		{"OneItem", act(monthly(2000, 1)), []int64{2000}},
		{"TwoItems", act(monthly(2000, 1), Item{PriceID: "price_b", Quantity: 2, UnitAmount: 500, Interval: IntervalMonth, IntervalCount: 1}), []int64{2000, 1000}},
		{"PercentCouponSplitsProportionally", withD(act(monthly(2000, 1), monthly(1000, 1)), Discount{PercentOffBP: 5000, Duration: "forever"}), []int64{1000, 500}},
		// 83.33 + 20.00 = 103.33 → MRR 10333: the remainder goes to the largest fraction.
		{"RoundingAddsUp", act(yearly, monthly(2000, 1)), []int64{83, 2000}},
		{"ThirdsAddUp", withD(act(monthly(100, 1), monthly(100, 1), monthly(100, 1)), Discount{AmountOff: 200, Duration: "forever"}), []int64{34, 33, 33}},
		{"MeteredGetsNothing", act(monthly(2000, 1), metered), []int64{2000, 0}},
		{"TrialingIsZero", st(StatusTrialing, monthly(2000, 1)), []int64{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ItemShares(tc.sub, at)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("shares %v, want %v", got, tc.want)
			}
			var sum int64
			for _, s := range got {
				sum += s
			}
			if sum != MRRAt(tc.sub, at) {
				t.Fatalf("shares add up to %d, MRR is %d", sum, MRRAt(tc.sub, at))
			}
		})
	}
}

func TestIntervalSegment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		iv    Interval
		count int64
		want  string
	}{{IntervalMonth, 1, "month"}, {IntervalMonth, 0, "month"}, {IntervalMonth, 3, "3 months"}, {IntervalYear, 2, "2 years"}, {"", 1, NoSegment}} {
		if got := IntervalSegment(tc.iv, tc.count); got != tc.want {
			t.Errorf("IntervalSegment(%s, %d) = %q, want %q", tc.iv, tc.count, got, tc.want)
		}
	}
}

// factLine renders a fact compactly for table tests.
func factLine(f Fact) string {
	s := fmt.Sprintf("%s %s %s %s", f.At.Format("01-02"), f.Dimension, f.Segment, f.Day.Format("01-02"))
	if f.Kind != "" {
		s += fmt.Sprintf(" %s %+d", f.Kind, f.Delta)
	}
	if f.RetainedDelta != 0 {
		s += fmt.Sprintf(" retained %+d", f.RetainedDelta)
	}
	if f.ActiveDelta != 0 {
		s += fmt.Sprintf(" active %+d", f.ActiveDelta)
	}
	if f.TrialStart != 0 {
		s += " trial_start"
	}
	if f.TrialConversion != 0 {
		s += " trial_conversion"
	}
	return s
}

func factLines(fs []Fact, dims ...Dimension) []string {
	var out []string
	for _, f := range fs {
		for _, d := range dims {
			if f.Dimension == d {
				out = append(out, factLine(f))
			}
		}
	}
	return out
}

func TestDeriveFacts(t *testing.T) {
	t.Parallel()
	basic := Item{PriceID: "price_basic", ProductID: "prod_app", Quantity: 1, UnitAmount: 2000, Interval: IntervalMonth, IntervalCount: 1}
	pro := Item{PriceID: "price_pro", ProductID: "prod_app", Quantity: 1, UnitAmount: 5000, Interval: IntervalMonth, IntervalCount: 1}
	trial := func(end string) Subscription {
		s := st(StatusTrialing, pro)
		s.TrialEnd = tp(end)
		return s
	}
	tests := []struct {
		name     string
		versions []SubscriptionVersion
		dims     []Dimension
		want     []string
	}{
		{"PlanChangeChurnsOnePlanAndStartsTheOther", []SubscriptionVersion{
			ver("a", "2026-01-03T00:00:00Z", 0, act(basic)),
			ver("a", "2026-02-10T00:00:00Z", 0, act(pro)),
		}, []Dimension{DimensionPlan}, []string{
			"01-03 plan price_basic 01-03 new +2000", "01-03 plan price_basic 01-03 active +1",
			"02-10 plan price_basic 02-10 churn -2000", "02-10 plan price_pro 02-10 new +5000",
			"02-10 plan price_basic 02-10 active -1", "02-10 plan price_pro 02-10 active +1",
		}},
		{"SameProductIsExpansion", []SubscriptionVersion{
			ver("a", "2026-01-03T00:00:00Z", 0, act(basic)),
			ver("a", "2026-02-10T00:00:00Z", 0, act(pro)),
		}, []Dimension{DimensionProduct}, []string{
			"01-03 product prod_app 01-03 new +2000", "01-03 product prod_app 01-03 active +1",
			"02-10 product prod_app 02-10 expansion +3000",
		}},
		{"CohortKeepsFirstMonthAndCapsRetention", []SubscriptionVersion{
			ver("a", "2026-01-03T00:00:00Z", 0, act(basic)),
			ver("a", "2026-02-10T00:00:00Z", 0, act(pro)),
			ver("a", "2026-03-10T00:00:00Z", 0, act(Item{PriceID: "price_s", Quantity: 1, UnitAmount: 1000, Interval: IntervalMonth, IntervalCount: 1})),
			ver("a", "2026-04-10T00:00:00Z", 0, st(StatusCanceled, basic)),
			ver("a", "2026-06-10T00:00:00Z", 0, act(basic)),
		}, []Dimension{DimensionCohort}, []string{
			"01-03 cohort 2026-01 01-03 new +2000 retained +2000",
			"02-10 cohort 2026-01 02-10 expansion +3000", // above the first MRR: gross retention unchanged
			"03-10 cohort 2026-01 03-10 contraction -4000 retained -1000",
			"04-10 cohort 2026-01 04-10 churn -1000 retained -1000",
			"06-10 cohort 2026-01 06-10 reactivation +2000 retained +2000",
		}},
		{"TrialConvertsWithinWindow", []SubscriptionVersion{
			ver("t", "2026-03-01T00:00:00Z", 0, trial("2026-03-15T00:00:00Z")),
			ver("t", "2026-03-20T00:00:00Z", 0, act(pro)), // 5 days after the trial: inside the 14-day window
		}, []Dimension{DimensionInterval}, []string{
			"03-01 interval month 03-01 trial_start",
			"03-20 interval month 03-01 trial_conversion", // filed under the trial's start day
			"03-20 interval month 03-20 new +5000", "03-20 interval month 03-20 active +1",
		}},
		{"TrialPaysTooLate", []SubscriptionVersion{
			ver("t", "2026-03-01T00:00:00Z", 0, trial("2026-03-15T00:00:00Z")),
			ver("t", "2026-04-15T00:00:00Z", 0, act(pro)),
		}, []Dimension{DimensionPlan}, []string{
			"03-01 plan price_pro 03-01 trial_start",
			"04-15 plan price_pro 04-15 new +5000", "04-15 plan price_pro 04-15 active +1",
		}},
		{"TrialCanceled", []SubscriptionVersion{
			ver("t", "2026-03-01T00:00:00Z", 0, trial("2026-03-15T00:00:00Z")),
			ver("t", "2026-03-15T00:00:00Z", 0, st(StatusCanceled, pro)),
			ver("t", "2026-03-16T00:00:00Z", 0, act(pro)),
		}, []Dimension{DimensionPlan}, []string{
			"03-01 plan price_pro 03-01 trial_start",
			"03-16 plan price_pro 03-16 new +5000", "03-16 plan price_pro 03-16 active +1",
		}},
		{"OnlyTheFirstTrialCounts", []SubscriptionVersion{
			ver("t", "2026-03-01T00:00:00Z", 0, trial("2026-03-15T00:00:00Z")),
			ver("t", "2026-03-10T00:00:00Z", 0, trial("2026-03-25T00:00:00Z")), // trial extended
			ver("t", "2026-03-25T00:00:00Z", 0, act(pro)),
		}, []Dimension{DimensionPlan}, []string{
			"03-01 plan price_pro 03-01 trial_start",
			"03-25 plan price_pro 03-01 trial_conversion",
			"03-25 plan price_pro 03-25 new +5000", "03-25 plan price_pro 03-25 active +1",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := factLines(DeriveFacts(CustomerHistory{Versions: tc.versions}), tc.dims...)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("facts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// Segment MRR always adds up to the customer's, and the facts do not
// depend on the order versions arrive in.
func TestDeriveFactsOrderIndependentAndAddUp(t *testing.T) {
	t.Parallel()
	coupon := act(monthly(1500, 2), Item{PriceID: "price_y", ProductID: "prod_y", Quantity: 1, UnitAmount: 9900, Interval: IntervalYear, IntervalCount: 1})
	coupon.Discounts = []Discount{{PercentOffBP: 2000, Duration: "repeating", End: tp("2026-05-01T00:00:00Z")}}
	cancel := act(monthly(1500, 3))
	cancel.CancelAtPeriodEnd, cancel.CurrentPeriodEnd = true, tp("2026-07-01T00:00:00Z")
	tr := st(StatusTrialing, monthly(1500, 1))
	tr.TrialEnd = tp("2026-01-15T00:00:00Z")
	versions := []SubscriptionVersion{
		ver("a", "2026-01-01T00:00:00Z", 0, tr),
		ver("a", "2026-01-15T00:00:00Z", 0, act(monthly(1500, 1))),
		ver("a", "2026-02-01T00:00:00Z", 0, coupon),
		ver("b", "2026-02-01T00:00:00Z", 1, act(Item{PriceID: "price_q", Quantity: 1, UnitAmount: 9000, Interval: IntervalMonth, IntervalCount: 3})),
		ver("a", "2026-06-01T00:00:00Z", 0, cancel),
		ver("b", "2026-06-10T00:00:00Z", 0, st(StatusCanceled)),
		ver("c", "2026-09-01T00:00:00Z", 0, act(monthly(700, 1))),
	}
	l := DeriveLedger(versions)
	facts := DeriveFacts(CustomerHistory{Versions: versions})
	// Per dimension, the running sum of the segment deltas equals the
	// customer's MRR after each movement.
	for _, d := range []Dimension{DimensionPlan, DimensionProduct, DimensionInterval, DimensionCohort} {
		for _, m := range l.Movements {
			var sum int64
			for _, f := range facts {
				if f.Dimension == d && !f.At.After(m.At) {
					sum += f.Delta
				}
			}
			if sum != m.After {
				t.Errorf("%s: segments add up to %d at %s, customer MRR %d", d, sum, m.At.Format(time.DateOnly), m.After)
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 30 {
		vs := append([]SubscriptionVersion(nil), versions...)
		rng.Shuffle(len(vs), func(i, j int) { vs[i], vs[j] = vs[j], vs[i] })
		if got := DeriveFacts(CustomerHistory{Versions: vs}); !reflect.DeepEqual(got, facts) {
			t.Fatalf("shuffle %d: facts differ", i)
		}
	}
}

func TestPeriodFiguresNewMetrics(t *testing.T) {
	t.Parallel()
	p := func(mrrStart int64, m MovementSums, trials, conv int64) PeriodTotals {
		return PeriodTotals{Start: *tp("2026-04-01T00:00:00Z"), End: *tp("2026-05-01T00:00:00Z"), MRRStart: mrrStart,
			MRREnd: mrrStart + m.NetNew(), PayingStart: 2, PayingEnd: 2, Movements: m, TrialStarts: trials, TrialConversions: conv}
	}
	f64 := func(v float64) *float64 { return &v }
	tests := []struct {
		name                  string
		totals                PeriodTotals
		asOf                  string
		quick, grr, trialRate *float64
		partial               bool
	}{
		// metrics.md: April, churn 40.00 from 60.00, and C new at 30.00.
		{"WorkedExample", p(6000, MovementSums{New: 3000, Churn: 4000}, 0, 0), "2026-06-01T00:00:00Z", f64(0.75), f64(0.333333), nil, false},
		{"NothingLostIsNull", p(6000, MovementSums{Expansion: 2000}, 0, 0), "2026-06-01T00:00:00Z", nil, f64(1), nil, false},
		{"AllCounts", p(10000, MovementSums{New: 1000, Expansion: 2000, Reactivation: 1000, Contraction: 1000, Churn: 1000}, 4, 1), "2026-04-30T23:59:59Z", f64(2), f64(0.8), f64(0.25), true},
		{"NoMRRAtStart", p(0, MovementSums{New: 1000}, 0, 0), "2026-04-01T00:00:00Z", nil, nil, nil, true},
		{"EndIsExclusive", p(0, MovementSums{}, 0, 0), "2026-05-01T00:00:00Z", nil, nil, nil, false},
	}
	eq := func(a, b *float64) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.totals.FiguresAt(BucketMonth, *tp(tc.asOf))
			if !eq(f.QuickRatio, tc.quick) || !eq(f.GrossRevenueRetention, tc.grr) || !eq(f.TrialConversionRate, tc.trialRate) || f.Partial != tc.partial {
				t.Fatalf("quick %v grr %v trial %v partial %v", fmtp(f.QuickRatio), fmtp(f.GrossRevenueRetention), fmtp(f.TrialConversionRate), f.Partial)
			}
		})
	}
}

func fmtp(v *float64) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprint(*v)
}

func TestCohortFigures(t *testing.T) {
	t.Parallel()
	month := func(s string) time.Time { return *tp(s + "-01T00:00:00Z") }
	// metrics.md's cohort example: A (20.00, 40.00 from February, churned
	// in April) and B (240.00 a year) first paid in January.
	ct := CohortTotals{Currency: "usd", Cohort: "2026-01", Months: []CohortMonthSums{
		{Month: month("2026-01"), MRRDelta: 4000, NewMRR: 4000, PayingDelta: 2, NewCustomers: 2, RetainedDelta: 4000},
		{Month: month("2026-02"), MRRDelta: 2000},
		{Month: month("2026-04"), MRRDelta: -4000, PayingDelta: -1, RetainedDelta: -2000},
	}}
	c := CohortFigures(ct, *tp("2026-05-10T00:00:00Z"))
	if c.Customers != 2 || c.InitialMRR != 4000 || len(c.Months) != 5 {
		t.Fatalf("cohort %+v", c)
	}
	want := []struct {
		mrr           int64
		nrr, grr, cus float64
		partial       bool
	}{{4000, 1, 1, 1, false}, {6000, 1.5, 1, 1, false}, {6000, 1.5, 1, 1, false}, {2000, 0.5, 0.5, 0.5, false}, {2000, 0.5, 0.5, 0.5, true}}
	for i, w := range want {
		m := c.Months[i]
		if m.Offset != i || m.MRR != w.mrr || *m.NetMRRRetention != w.nrr || *m.GrossMRRRetention != w.grr || *m.CustomerRetention != w.cus || m.Partial != w.partial {
			t.Errorf("month %d: %+v, want %+v", i, m, w)
		}
	}
	empty := CohortFigures(CohortTotals{Currency: "usd", Cohort: "2026-04"}, *tp("2026-04-10T00:00:00Z"))
	if len(empty.Months) != 1 || empty.Months[0].NetMRRRetention != nil || empty.Months[0].CustomerRetention != nil {
		t.Errorf("a cohort without customers has no rates: %+v", empty)
	}
}
