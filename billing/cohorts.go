package billing

import (
	"context"
	"time"
)

// CohortQuery selects the cohort report: customers grouped by the month
// they first paid (per mode and currency), for first-paid months From to
// To, followed up to AsOf.
type CohortQuery struct {
	Livemode bool
	Currency string // empty: every currency
	From     time.Time
	To       time.Time
	AsOf     time.Time
}

// CohortMonthSums are one cohort's changes in one calendar month.
type CohortMonthSums struct {
	Month         time.Time
	MRRDelta      int64 // net MRR change of the cohort's customers
	NewMRR        int64 // first MRR of the customers who joined (the cohort's month only)
	PayingDelta   int64
	NewCustomers  int64
	RetainedDelta int64 // change of Σ min(MRR, first MRR)
}

// CohortTotals is one cohort's monthly sums as a store reads them (months
// without a change left out).
type CohortTotals struct {
	Currency string
	Cohort   string // first-paid month, "2026-01"
	Months   []CohortMonthSums
	Clamped  bool
}

// CohortMonth is one cell of the cohort table: the cohort at the end of
// the month Offset months after it first paid (0: that month itself).
type CohortMonth struct {
	Month             string   `json:"month"`
	Offset            int      `json:"offset"`
	MRR               int64    `json:"mrr"`
	RetainedMRR       int64    `json:"retained_mrr"`
	PayingCustomers   int64    `json:"paying_customers"`
	NetMRRRetention   *float64 `json:"net_mrr_retention"`
	GrossMRRRetention *float64 `json:"gross_mrr_retention"`
	CustomerRetention *float64 `json:"customer_retention"`
	// Retention is the cell's figure for a heat map: net MRR retention
	// (basis mrr) or customer retention (basis customers).
	Retention *float64 `json:"retention"`
	// Partial: the month is not over yet (it contains AsOf).
	Partial bool `json:"partial"`
}

// Cohort is one row of the cohort table.
type Cohort struct {
	Currency   string        `json:"currency"`
	Exponent   int           `json:"exponent"`
	Decimals   int           `json:"decimals"`
	Cohort     string        `json:"cohort"`
	Customers  int64         `json:"customers"`
	InitialMRR int64         `json:"initial_mrr"`
	Months     []CohortMonth `json:"months"`
	Clamped    bool          `json:"clamped"`
}

// CohortReader is what the cohort endpoint reads.
type CohortReader interface {
	Cohorts(ctx context.Context, q CohortQuery) ([]CohortTotals, error)
}

// CohortFigures turns a cohort's monthly sums into its table row: running
// sums from its first month to AsOf's month, and metrics.md's retention
// figures at the end of each month (net MRR retention = MRR ÷ initial MRR;
// gross MRR retention = Σ min(MRR, first MRR) ÷ initial MRR, so expansion
// never lifts it; customer retention = paying customers ÷ cohort size).
func CohortFigures(t CohortTotals, asOf time.Time) Cohort {
	c := Cohort{Currency: t.Currency, Exponent: MinorUnitExponent(t.Currency), Decimals: DisplayDecimals(t.Currency),
		Cohort: t.Cohort, Months: []CohortMonth{}, Clamped: t.Clamped}
	start, err := time.Parse("2006-01", t.Cohort)
	if err != nil {
		return c
	}
	for _, m := range t.Months {
		c.InitialMRR += m.NewMRR
		c.Customers += m.NewCustomers
	}
	byMonth := map[int64]CohortMonthSums{}
	for _, m := range t.Months {
		byMonth[m.Month.Unix()] = m
	}
	last := BucketMonth.Truncate(asOf)
	var mrr, retained, paying int64
	for m, i := start, 0; !m.After(last); m, i = m.AddDate(0, 1, 0), i+1 {
		s := byMonth[m.Unix()]
		mrr += s.MRRDelta
		retained += s.RetainedDelta
		paying += s.PayingDelta
		cell := CohortMonth{Month: m.Format("2006-01"), Offset: i, MRR: mrr, RetainedMRR: retained,
			PayingCustomers: paying, Partial: !asOf.Before(m) && asOf.Before(m.AddDate(0, 1, 0))}
		if c.InitialMRR > 0 {
			cell.NetMRRRetention = ratio(mrr, c.InitialMRR)
			cell.GrossMRRRetention = ratio(retained, c.InitialMRR)
		}
		if c.Customers > 0 {
			cell.CustomerRetention = ratio(paying, c.Customers)
		}
		c.Months = append(c.Months, cell)
	}
	return c
}
