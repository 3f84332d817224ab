// Revenue endpoints: GET /v1/metrics/revenue and /v1/metrics/summary, the
// finance API the dashboard reads too. (Prometheus metrics are in
// prometheus.go: the paths say "metrics", the numbers are revenue.)

package api

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
)

// maxRevenueRange caps a report's span: ten years of daily buckets is
// already 3,650 rows per currency.
const maxRevenueYears = 10

var validCurrency = regexp.MustCompile(`^[a-z]{3}$`)

// revenueRequest is a parsed GET /v1/metrics/revenue.
type revenueRequest struct {
	query     billing.RevenueQuery
	from, to  time.Time // the dates asked for (inclusive)
	csv       bool
	reporting bool // currency=reporting: every currency converted into REPORTING_CURRENCY
}

// checkRange refuses a report range that runs backwards or spans more
// than maxRevenueYears (every finance report reads at most that much).
func checkRange(from, to time.Time) *errorDetail {
	if from.After(to) {
		return &errorDetail{"invalid_range", "from must not be after to"}
	}
	if to.After(from.AddDate(maxRevenueYears, 0, 0)) {
		return &errorDetail{"range_too_long", fmt.Sprintf("from and to may be at most %d years apart", maxRevenueYears)}
	}
	return nil
}

// parseRevenueRequest validates the query string; every mistake is a 400
// naming the parameter. Defaults: the last 12 months by month, live mode,
// every currency.
func parseRevenueRequest(r *http.Request, now time.Time) (revenueRequest, *errorDetail) {
	q := r.URL.Query()
	var rr revenueRequest
	bucket := billing.Bucket(q.Get("interval"))
	if bucket == "" {
		bucket = billing.BucketMonth
	}
	if !bucket.Valid() {
		return rr, &errorDetail{"invalid_interval", fmt.Sprintf("interval must be day, week or month, not %q", clip(q.Get("interval")))}
	}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	to, err := parseDate(q.Get("to"), today)
	if err != nil {
		return rr, &errorDetail{"invalid_date", "to must be a date YYYY-MM-DD"}
	}
	from, err := parseDate(q.Get("from"), billing.BucketMonth.Truncate(to).AddDate(0, -11, 0))
	if err != nil {
		return rr, &errorDetail{"invalid_date", "from must be a date YYYY-MM-DD"}
	}
	if d := checkRange(from, to); d != nil {
		return rr, d
	}
	cur := strings.ToLower(q.Get("currency"))
	if cur == "reporting" {
		rr.reporting, cur = true, ""
	}
	if cur != "" && !validCurrency.MatchString(cur) {
		return rr, &errorDetail{"invalid_currency", "currency must be a three-letter ISO 4217 code such as usd, or reporting"}
	}
	live, perr := parseLivemode(q.Get("livemode"))
	if perr != nil {
		return rr, perr
	}
	groupBy, perr := parseGroupBy(q.Get("group_by"))
	if perr != nil {
		return rr, perr
	}
	switch f := q.Get("format"); f {
	case "csv":
		rr.csv = true
	case "json":
	case "":
		rr.csv = acceptsCSV(r.Header.Get("Accept"))
	default:
		return rr, &errorDetail{"invalid_format", fmt.Sprintf("format must be json or csv, not %q", clip(f))}
	}
	rr.from, rr.to = from, to
	rr.query = billing.RevenueQuery{Livemode: live, Currency: cur, Bucket: bucket, GroupBy: groupBy,
		From: bucket.Truncate(from), To: bucket.Next(bucket.Truncate(to)), AsOf: now}
	return rr, nil
}

// parseGroupBy reads group_by: plan, product, interval, or nothing.
func parseGroupBy(s string) (billing.Dimension, *errorDetail) {
	d := billing.Dimension(s)
	if s == "" || d.GroupBy() {
		return d, nil
	}
	return "", &errorDetail{"invalid_group_by", fmt.Sprintf("group_by must be plan, product or interval, not %q", clip(s))}
}

func parseDate(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	return time.Parse(time.DateOnly, s)
}

func parseLivemode(s string) (bool, *errorDetail) {
	switch s {
	case "", "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, &errorDetail{"invalid_livemode", "livemode must be true or false"}
}

// acceptsCSV reports whether the Accept header prefers text/csv (a plain
// "text/csv" or one listed before any JSON type).
func acceptsCSV(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		switch mt {
		case "text/csv":
			return true
		case "application/json", "*/*":
			return false
		}
	}
	return false
}

// clip keeps echoed input short in error messages.
func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// periodJSON is one bucket of the revenue report. Amounts are integers in
// the currency's minor unit; rates are fractions, null when undefined.
type periodJSON struct {
	Start               string   `json:"start"`
	End                 string   `json:"end"` // last day of the bucket, inclusive
	MRR                 int64    `json:"mrr"`
	ARR                 int64    `json:"arr"`
	ActiveSubscriptions int64    `json:"active_subscriptions"`
	PayingCustomers     int64    `json:"paying_customers"`
	ARPA                *int64   `json:"arpa"`
	New                 int64    `json:"new"`
	Expansion           int64    `json:"expansion"`
	Contraction         int64    `json:"contraction"`
	Churn               int64    `json:"churn"`
	Reactivation        int64    `json:"reactivation"`
	NetNew              int64    `json:"net_new"`
	ChurnedCustomers    int64    `json:"churned_customers"`
	CustomerChurnRate   *float64 `json:"customer_churn_rate"`
	GrossMRRChurnRate   *float64 `json:"gross_mrr_churn_rate"`
	NetMRRChurnRate     *float64 `json:"net_mrr_churn_rate"`
	NetRevenueRetention *float64 `json:"net_revenue_retention"`
	// GrossRevenueRetention = 1 − gross MRR churn rate (expansion left out).
	GrossRevenueRetention *float64 `json:"gross_revenue_retention"`
	// QuickRatio = (new + expansion + reactivation) ÷ (churn + contraction).
	QuickRatio          *float64 `json:"quick_ratio"`
	TrialStarts         int64    `json:"trial_starts"`
	TrialConversions    int64    `json:"trial_conversions"` // of the trials started in the bucket
	TrialConversionRate *float64 `json:"trial_conversion_rate"`
	LTV                 *int64   `json:"ltv"`
	// UsageRevenue is the bucket's paid metered and tiered usage, and
	// UsageMRR the trailing three-month usage per month at its end: beside
	// MRR, never part of it (metrics.md). Null when not available.
	UsageRevenue *int64 `json:"usage_revenue"`
	UsageMRR     *int64 `json:"usage_mrr"`
	// FXEffect (currency=reporting only): MRR change due to exchange rates,
	// so that mrr(previous bucket) + net_new + fx_effect = mrr.
	FXEffect *int64 `json:"fx_effect,omitempty"`
	// Partial: the bucket contains now, so its figures are still moving.
	Partial bool `json:"partial"`
	// Clamped: a figure of the bucket was beyond ±2^53 − 1 minor units
	// and shows that limit (billing.MaxReportAmount): the ledger holds
	// absurd amounts.
	Clamped bool `json:"clamped"`
}

type currencyJSON struct {
	Currency string `json:"currency"`
	Segment  string `json:"segment,omitempty"` // with group_by: the plan, product or interval
	// Reporting: every currency converted into this one (currency=reporting);
	// each period then has fx_effect.
	Reporting bool         `json:"reporting,omitempty"`
	Exponent  int          `json:"exponent"` // decimals of the API amounts
	Decimals  int          `json:"decimals"` // decimals to display
	Periods   []periodJSON `json:"periods"`
}

type revenueJSON struct {
	Interval   billing.Bucket `json:"interval"`
	From       string         `json:"from"`
	To         string         `json:"to"`
	Livemode   bool           `json:"livemode"`
	GroupBy    string         `json:"group_by,omitempty"`
	AsOf       time.Time      `json:"as_of"`
	Currencies []currencyJSON `json:"currencies"`
}

func toPeriodJSON(p billing.PeriodTotals, b billing.Bucket, now time.Time, reporting bool) periodJSON {
	f := p.FiguresAt(b, now)
	var fx *int64
	if reporting {
		v := p.FXEffect
		fx = &v
	}
	return periodJSON{FXEffect: fx,
		Start: p.Start.Format(time.DateOnly), End: p.End.AddDate(0, 0, -1).Format(time.DateOnly),
		MRR: f.MRREnd, ARR: f.ARR, ActiveSubscriptions: f.ActiveSubscriptions, PayingCustomers: f.PayingEnd, ARPA: f.ARPA,
		New: f.Movements.New, Expansion: f.Movements.Expansion, Contraction: f.Movements.Contraction,
		Churn: f.Movements.Churn, Reactivation: f.Movements.Reactivation, NetNew: f.NetNew, ChurnedCustomers: f.ChurnedCustomers,
		CustomerChurnRate: f.CustomerChurnRate, GrossMRRChurnRate: f.GrossMRRChurnRate, NetMRRChurnRate: f.NetMRRChurnRate,
		NetRevenueRetention: f.NetRevenueRetention, GrossRevenueRetention: f.GrossRevenueRetention,
		QuickRatio: f.QuickRatio, TrialStarts: f.TrialStarts, TrialConversions: f.TrialConversions,
		TrialConversionRate: f.TrialConversionRate, LTV: f.LTV, Partial: f.Partial, Clamped: f.Clamped,
	}
}

// handleRevenue serves GET /v1/metrics/revenue (scope finance) as JSON or,
// with Accept: text/csv or format=csv, as CSV with a header row.
func (s *Server) handleRevenue(w http.ResponseWriter, r *http.Request) {
	if s.Revenue == nil {
		writeError(w, http.StatusServiceUnavailable, "metrics_unavailable", "revenue metrics are not configured")
		return
	}
	now := s.now()
	rr, perr := parseRevenueRequest(r, now)
	if perr != nil {
		writeError(w, http.StatusBadRequest, perr.Code, perr.Message)
		return
	}
	var periods []billing.PeriodTotals
	if rr.reporting {
		var ok bool
		if periods, ok = s.reportingRevenue(w, r, rr, now); !ok {
			return
		}
	} else {
		var err error
		if periods, err = s.Revenue.Revenue(r.Context(), rr.query); err != nil {
			s.Error(w, r, err)
			return
		}
	}
	out := revenueJSON{Interval: rr.query.Bucket, From: rr.from.Format(time.DateOnly), To: rr.to.Format(time.DateOnly),
		Livemode: rr.query.Livemode, GroupBy: string(rr.query.GroupBy), AsOf: now.UTC().Truncate(time.Second),
		Currencies: []currencyJSON{}}
	for _, p := range periods {
		if n := len(out.Currencies); n == 0 || out.Currencies[n-1].Currency != p.Currency || out.Currencies[n-1].Segment != p.Segment {
			out.Currencies = append(out.Currencies, currencyJSON{Currency: p.Currency, Segment: p.Segment, Reporting: rr.reporting,
				Exponent: billing.MinorUnitExponent(p.Currency), Decimals: billing.DisplayDecimals(p.Currency), Periods: []periodJSON{}})
		}
		c := &out.Currencies[len(out.Currencies)-1]
		c.Periods = append(c.Periods, toPeriodJSON(p, rr.query.Bucket, now, rr.reporting))
	}
	if err := s.addUsage(r.Context(), &out, rr.query, now, rr.reporting); err != nil {
		s.Error(w, r, err)
		return
	}
	s.finm.report(string(rr.query.Bucket), rr.csv)
	w.Header().Set("Cache-Control", "private, no-store")
	if rr.csv {
		writeRevenueCSV(w, out)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// revenueCSVHeader is the CSV column order; amounts stay in minor units
// (currency_exponent says where the decimal point goes).
var revenueCSVHeader = []string{"currency", "currency_exponent", "period_start", "period_end", "mrr", "arr",
	"active_subscriptions", "paying_customers", "arpa", "new", "expansion", "contraction", "churn", "reactivation",
	"net_new", "churned_customers", "customer_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate",
	"net_revenue_retention", "ltv", "clamped", "usage_revenue", "usage_mrr", "gross_revenue_retention", "quick_ratio", "trial_starts",
	"trial_conversions", "trial_conversion_rate", "partial"}

func writeRevenueCSV(w http.ResponseWriter, out revenueJSON) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	name := fmt.Sprintf("revenue-%s-%s-%s.csv", out.Interval, out.From, out.To)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	header := revenueCSVHeader
	if out.GroupBy != "" {
		// Grouped: the segment follows the currency.
		header = append([]string{"currency", out.GroupBy}, revenueCSVHeader[1:]...)
	}
	reporting := len(out.Currencies) > 0 && out.Currencies[0].Reporting
	if reporting {
		header = append(slices.Clone(header), "fx_effect")
	}
	_ = cw.Write(header)
	i := strconv.FormatInt
	for _, c := range out.Currencies {
		for _, p := range c.Periods {
			row := []string{c.Currency, strconv.Itoa(c.Exponent), p.Start, p.End, i(p.MRR, 10), i(p.ARR, 10),
				i(p.ActiveSubscriptions, 10), i(p.PayingCustomers, 10), optInt(p.ARPA), i(p.New, 10), i(p.Expansion, 10),
				i(p.Contraction, 10), i(p.Churn, 10), i(p.Reactivation, 10), i(p.NetNew, 10), i(p.ChurnedCustomers, 10),
				optRate(p.CustomerChurnRate), optRate(p.GrossMRRChurnRate), optRate(p.NetMRRChurnRate),
				optRate(p.NetRevenueRetention), optInt(p.LTV), strconv.FormatBool(p.Clamped),
				optInt(p.UsageRevenue), optInt(p.UsageMRR),
				optRate(p.GrossRevenueRetention), optRate(p.QuickRatio), i(p.TrialStarts, 10), i(p.TrialConversions, 10),
				optRate(p.TrialConversionRate), strconv.FormatBool(p.Partial)}
			if out.GroupBy != "" {
				row = append([]string{c.Currency, c.Segment}, row[1:]...)
			}
			if reporting {
				row = append(row, optInt(p.FXEffect))
			}
			_ = cw.Write(row)
		}
	}
	cw.Flush()
}

func optInt(v *int64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatInt(*v, 10)
}

func optRate(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

// handleSummary serves GET /v1/metrics/summary (scope finance): live-mode
// figures now, or test mode with ?livemode=false.
func (s *Server) handleSummary(w http.ResponseWriter, r *http.Request) {
	if s.Revenue == nil {
		writeError(w, http.StatusServiceUnavailable, "metrics_unavailable", "revenue metrics are not configured")
		return
	}
	live, perr := parseLivemode(r.URL.Query().Get("livemode"))
	if perr != nil {
		writeError(w, http.StatusBadRequest, perr.Code, perr.Message)
		return
	}
	groupBy, perr := parseGroupBy(r.URL.Query().Get("group_by"))
	if perr != nil {
		writeError(w, http.StatusBadRequest, perr.Code, perr.Message)
		return
	}
	asOf := s.now().UTC().Truncate(time.Second)
	var sum billing.Summary
	var err error
	if groupBy != "" {
		sum, err = s.Revenue.SegmentSummary(r.Context(), live, groupBy, asOf)
	} else {
		sum, err = s.Revenue.Summary(r.Context(), live, asOf)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "private, no-store")
	sum.ReportingCurrency = s.ReportingCurrency
	writeJSON(w, http.StatusOK, sum)
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
