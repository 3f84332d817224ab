package billing

import (
	"context"
	"math/big"
	"time"
)

// Bucket is the grouping of a revenue report.
type Bucket string

// The bucket sizes the revenue report offers.
const (
	BucketDay   Bucket = "day"
	BucketWeek  Bucket = "week"
	BucketMonth Bucket = "month"
)

// Valid reports whether b is a known bucket size.
func (b Bucket) Valid() bool { return b == BucketDay || b == BucketWeek || b == BucketMonth }

// Next is the start of the bucket after the one starting at t.
func (b Bucket) Next(t time.Time) time.Time {
	switch b {
	case BucketDay:
		return t.AddDate(0, 0, 1)
	case BucketWeek:
		return t.AddDate(0, 0, 7)
	}
	return t.AddDate(0, 1, 0)
}

// Truncate is the start of the bucket holding t (UTC; weeks start Monday,
// as ISO 8601 and Postgres date_trunc have it).
func (b Bucket) Truncate(t time.Time) time.Time {
	t = t.UTC()
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch b {
	case BucketWeek:
		wd := (int(d.Weekday()) + 6) % 7 // Monday 0
		return d.AddDate(0, 0, -wd)
	case BucketMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return d
}

// MovementSums are the movements of one period, each a non-negative
// magnitude in minor units (churn 4000 means 40.00 of MRR lost).
type MovementSums struct {
	New          int64 `json:"new"`
	Expansion    int64 `json:"expansion"`
	Contraction  int64 `json:"contraction"`
	Churn        int64 `json:"churn"`
	Reactivation int64 `json:"reactivation"`
}

// Add counts one movement.
func (s *MovementSums) Add(m Movement) {
	mag := m.Delta
	if mag < 0 {
		mag = -mag
	}
	switch m.Kind {
	case MovementNew:
		s.New += mag
	case MovementExpansion:
		s.Expansion += mag
	case MovementContraction:
		s.Contraction += mag
	case MovementChurn:
		s.Churn += mag
	case MovementReactivation:
		s.Reactivation += mag
	}
}

// NetNew is new + expansion + reactivation − contraction − churn.
func (s MovementSums) NetNew() int64 {
	return s.New + s.Expansion + s.Reactivation - s.Contraction - s.Churn
}

// PeriodTotals are the sums a store computes for one bucket of one
// currency. A bucket runs from its start S (midnight UTC, inclusive) to the
// next bucket's start E (exclusive), so a movement at exactly midnight
// belongs to the day it starts; "MRR at E" is the MRR after every movement
// before E, i.e. at the end of the bucket's last instant.
type PeriodTotals struct {
	Start               time.Time
	End                 time.Time
	Currency            string
	Segment             string // the plan, product or interval of a GroupBy report; empty otherwise
	MRRStart            int64  // MRR at S
	MRREnd              int64  // MRR at E
	PayingStart         int64  // customers with MRR > 0 at S
	PayingEnd           int64  // customers with MRR > 0 at E
	ActiveSubscriptions int64  // subscriptions with MRR > 0 at E
	ChurnedCustomers    int64  // churn movements in (S, E]
	Movements           MovementSums
	TrialStarts         int64 // trials started in [S, E)
	TrialConversions    int64 // of those, trials that converted to paid (TrialConversionWindow)
	// FXEffect (reporting-currency reports only): the change of MRR in the
	// bucket due to exchange rates, so MRRStart + net new + FXEffect = MRREnd.
	FXEffect int64
	// Clamped is set when a figure of the bucket was beyond
	// ±MaxReportAmount and shows that limit instead (billing/clamp.go).
	Clamped bool
}

// PeriodFigures is one row of the revenue report: amounts are integers in
// minor units; rates are fractions (0.5 is 50%) and nil when their
// denominator is zero.
type PeriodFigures struct {
	PeriodTotals
	ARR                 int64
	ARPA                *int64
	NetNew              int64
	CustomerChurnRate   *float64
	GrossMRRChurnRate   *float64
	NetMRRChurnRate     *float64
	NetRevenueRetention *float64
	// GrossRevenueRetention = 1 − gross MRR churn rate: what MRR(S) kept,
	// expansion and reactivation left out.
	GrossRevenueRetention *float64
	// QuickRatio = (new + expansion + reactivation) ÷ (churn + contraction).
	QuickRatio *float64
	// TrialConversionRate = trial conversions ÷ trial starts of the bucket.
	TrialConversionRate *float64
	LTV                 *int64 // monthly buckets only: ARPA ÷ customer churn rate
	// Partial: the bucket contains AsOf, so it is not over yet.
	Partial bool
}

// Figures derives the period metrics of metrics.md from the totals. The
// totals are at most MaxReportAmount in magnitude (stores clamp them), so
// the arithmetic here cannot overflow; a derived amount beyond the limit
// is clamped too and flags the bucket.
func (p PeriodTotals) Figures(bucket Bucket) PeriodFigures {
	return p.FiguresAt(bucket, time.Time{})
}

// FiguresAt is Figures with the bucket containing asOf marked Partial
// (asOf zero: none is).
func (p PeriodTotals) FiguresAt(bucket Bucket, asOf time.Time) PeriodFigures {
	f := PeriodFigures{PeriodTotals: p}
	f.Partial = !asOf.IsZero() && !asOf.Before(p.Start) && asOf.Before(p.End)
	var c1, c2 bool
	f.ARR, c1 = clampInt64(12 * p.MRREnd)
	f.NetNew, c2 = clampInt64(p.Movements.NetNew())
	f.Clamped = f.Clamped || c1 || c2
	if p.PayingEnd > 0 {
		a := roundHalfEven(big.NewRat(p.MRREnd, p.PayingEnd))
		f.ARPA = &a
	}
	m := p.Movements
	if p.PayingStart > 0 {
		f.CustomerChurnRate = ratio(p.ChurnedCustomers, p.PayingStart)
	}
	if p.MRRStart > 0 {
		f.GrossMRRChurnRate = ratio(m.Churn+m.Contraction, p.MRRStart)
		f.NetMRRChurnRate = ratio(m.Churn+m.Contraction-m.Expansion-m.Reactivation, p.MRRStart)
		nrr := ratio(p.MRRStart-(m.Churn+m.Contraction-m.Expansion-m.Reactivation), p.MRRStart)
		f.NetRevenueRetention = nrr
		f.GrossRevenueRetention = ratio(p.MRRStart-(m.Churn+m.Contraction), p.MRRStart)
	}
	if lost := m.Churn + m.Contraction; lost > 0 {
		f.QuickRatio = ratio(m.New+m.Expansion+m.Reactivation, lost)
	}
	if p.TrialStarts > 0 {
		f.TrialConversionRate = ratio(p.TrialConversions, p.TrialStarts)
	}
	if bucket == BucketMonth && f.ARPA != nil && p.ChurnedCustomers > 0 && p.PayingStart > 0 {
		// ARPA ÷ (churned ÷ paying at start), exactly, then rounded once.
		l, c := clampInt64(roundHalfEven(new(big.Rat).Mul(big.NewRat(*f.ARPA, p.ChurnedCustomers), big.NewRat(p.PayingStart, 1))))
		f.LTV = &l
		f.Clamped = f.Clamped || c
	}
	return f
}

// ratio is num/den as a float rounded to six decimals: rates are shown,
// never summed back into money, so a float is fine here.
func ratio(num, den int64) *float64 {
	r := big.NewRat(num, den)
	scaled := roundHalfEven(new(big.Rat).Mul(r, big.NewRat(1_000_000, 1)))
	v, _ := big.NewRat(scaled, 1_000_000).Float64()
	return &v
}

// RevenueQuery selects a revenue report: buckets of size Bucket covering
// [From, To) (From is a bucket start, To the end of the last bucket), of one
// mode, in one currency or (Currency empty) every currency seen. Movements
// after AsOf (scheduled cancellations not yet effective) do not count yet.
type RevenueQuery struct {
	Livemode bool
	Currency string
	Bucket   Bucket
	// GroupBy splits each currency's series by plan, product or interval
	// (one series per segment; empty: totals).
	GroupBy Dimension
	From    time.Time
	To      time.Time
	AsOf    time.Time
}

// CurrencySummary is the current figures of one currency.
type CurrencySummary struct {
	Currency            string       `json:"currency"`
	Segment             string       `json:"segment,omitempty"` // with group_by: the plan, product or interval
	Exponent            int          `json:"exponent"`          // decimals of the amounts (MinorUnitExponent)
	Decimals            int          `json:"decimals"`          // decimals to display (DisplayDecimals)
	MRR                 int64        `json:"mrr"`
	ARR                 int64        `json:"arr"`
	ActiveSubscriptions int64        `json:"active_subscriptions"`
	PayingCustomers     int64        `json:"paying_customers"`
	ARPA                *int64       `json:"arpa"`
	Movements30d        MovementSums `json:"movements_30d"`
	// FirstActivity is the first day (YYYY-MM-DD, UTC) the ledger has
	// anything for this currency: the dashboard's default range starts there.
	FirstActivity string `json:"first_activity,omitempty"`
	// Clamped: a figure was beyond ±MaxReportAmount and shows that limit
	// (billing/clamp.go); the stored ledger holds absurd amounts.
	Clamped bool `json:"clamped"`
}

// Summary is the current figures of one mode, per currency.
type Summary struct {
	AsOf       time.Time         `json:"as_of"`
	Livemode   bool              `json:"livemode"`
	GroupBy    Dimension         `json:"group_by,omitempty"`
	Currencies []CurrencySummary `json:"currencies"`
	// ReportingCurrency is REPORTING_CURRENCY when set (the API fills it):
	// what currency=reporting converts into, so the dashboard offers it.
	ReportingCurrency string `json:"reporting_currency,omitempty"`
}

// RevenueReader is what the finance endpoints read.
type RevenueReader interface {
	// Revenue returns one PeriodTotals per currency and bucket, ordered by
	// currency then time, empty buckets included.
	Revenue(ctx context.Context, q RevenueQuery) ([]PeriodTotals, error)
	// Summary returns the figures at asOf and the movements of the 30 days
	// before it.
	Summary(ctx context.Context, livemode bool, asOf time.Time) (Summary, error)
	// SegmentSummary is Summary per currency and segment of dim (plan,
	// product or interval).
	SegmentSummary(ctx context.Context, livemode bool, dim Dimension, asOf time.Time) (Summary, error)
	CohortReader
	MoverReader
}

// FillSummary derives ARR and ARPA from MRR and paying customers, and sets
// the currency's exponents.
func (c *CurrencySummary) FillSummary() {
	c.Exponent, c.Decimals = MinorUnitExponent(c.Currency), DisplayDecimals(c.Currency)
	var clamped bool
	c.ARR, clamped = clampInt64(12 * c.MRR) // MRR is clamped already: no overflow
	c.Clamped = c.Clamped || clamped
	c.ARPA = nil
	if c.PayingCustomers > 0 {
		a := roundHalfEven(big.NewRat(c.MRR, c.PayingCustomers))
		c.ARPA = &a
	}
}
