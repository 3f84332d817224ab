// Revenue endpoints: GET /v1/metrics/revenue and /v1/metrics/summary, the
// finance API the dashboard reads too. (Prometheus metrics are in
// prometheus.go: the paths say "metrics", the numbers are revenue.)

package api

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"regexp"
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
	query    billing.RevenueQuery
	from, to time.Time // the dates asked for (inclusive)
	csv      bool
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
	if from.After(to) {
		return rr, &errorDetail{"invalid_range", "from must not be after to"}
	}
	if to.After(from.AddDate(maxRevenueYears, 0, 0)) {
		return rr, &errorDetail{"range_too_long", fmt.Sprintf("from and to may be at most %d years apart", maxRevenueYears)}
	}
	cur := strings.ToLower(q.Get("currency"))
	if cur != "" && !validCurrency.MatchString(cur) {
		return rr, &errorDetail{"invalid_currency", "currency must be a three-letter ISO 4217 code such as usd"}
	}
	live, perr := parseLivemode(q.Get("livemode"))
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
	rr.query = billing.RevenueQuery{Livemode: live, Currency: cur, Bucket: bucket,
		From: bucket.Truncate(from), To: bucket.Next(bucket.Truncate(to)), AsOf: now}
	return rr, nil
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
	LTV                 *int64   `json:"ltv"`
	// UsageRevenue is the bucket's paid metered and tiered usage, and
	// UsageMRR the trailing three-month usage per month at its end: beside
	// MRR, never part of it (metrics.md). Null when not available.
	UsageRevenue *int64 `json:"usage_revenue"`
	UsageMRR     *int64 `json:"usage_mrr"`
	// Clamped: a figure of the bucket was beyond ±2^53 − 1 minor units
	// and shows that limit (billing.MaxReportAmount): the ledger holds
	// absurd amounts.
	Clamped bool `json:"clamped"`
}

type currencyJSON struct {
	Currency string       `json:"currency"`
	Exponent int          `json:"exponent"` // decimals of the API amounts
	Decimals int          `json:"decimals"` // decimals to display
	Periods  []periodJSON `json:"periods"`
}

type revenueJSON struct {
	Interval   billing.Bucket `json:"interval"`
	From       string         `json:"from"`
	To         string         `json:"to"`
	Livemode   bool           `json:"livemode"`
	AsOf       time.Time      `json:"as_of"`
	Currencies []currencyJSON `json:"currencies"`
}

func toPeriodJSON(p billing.PeriodTotals, b billing.Bucket) periodJSON {
	f := p.Figures(b)
	return periodJSON{
		Start: p.Start.Format(time.DateOnly), End: p.End.AddDate(0, 0, -1).Format(time.DateOnly),
		MRR: f.MRREnd, ARR: f.ARR, ActiveSubscriptions: f.ActiveSubscriptions, PayingCustomers: f.PayingEnd, ARPA: f.ARPA,
		New: f.Movements.New, Expansion: f.Movements.Expansion, Contraction: f.Movements.Contraction,
		Churn: f.Movements.Churn, Reactivation: f.Movements.Reactivation, NetNew: f.NetNew, ChurnedCustomers: f.ChurnedCustomers,
		CustomerChurnRate: f.CustomerChurnRate, GrossMRRChurnRate: f.GrossMRRChurnRate, NetMRRChurnRate: f.NetMRRChurnRate,
		NetRevenueRetention: f.NetRevenueRetention, LTV: f.LTV, Clamped: f.Clamped,
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
	periods, err := s.Revenue.Revenue(r.Context(), rr.query)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := revenueJSON{Interval: rr.query.Bucket, From: rr.from.Format(time.DateOnly), To: rr.to.Format(time.DateOnly),
		Livemode: rr.query.Livemode, AsOf: now.UTC().Truncate(time.Second), Currencies: []currencyJSON{}}
	for _, p := range periods {
		if n := len(out.Currencies); n == 0 || out.Currencies[n-1].Currency != p.Currency {
			out.Currencies = append(out.Currencies, currencyJSON{Currency: p.Currency,
				Exponent: billing.MinorUnitExponent(p.Currency), Decimals: billing.DisplayDecimals(p.Currency), Periods: []periodJSON{}})
		}
		c := &out.Currencies[len(out.Currencies)-1]
		c.Periods = append(c.Periods, toPeriodJSON(p, rr.query.Bucket))
	}
	if err := s.addUsage(r.Context(), &out, rr.query); err != nil {
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
	"net_revenue_retention", "ltv", "clamped", "usage_revenue", "usage_mrr"}

func writeRevenueCSV(w http.ResponseWriter, out revenueJSON) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	name := fmt.Sprintf("revenue-%s-%s-%s.csv", out.Interval, out.From, out.To)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write(revenueCSVHeader)
	i := strconv.FormatInt
	for _, c := range out.Currencies {
		for _, p := range c.Periods {
			_ = cw.Write([]string{c.Currency, strconv.Itoa(c.Exponent), p.Start, p.End, i(p.MRR, 10), i(p.ARR, 10),
				i(p.ActiveSubscriptions, 10), i(p.PayingCustomers, 10), optInt(p.ARPA), i(p.New, 10), i(p.Expansion, 10),
				i(p.Contraction, 10), i(p.Churn, 10), i(p.Reactivation, 10), i(p.NetNew, 10), i(p.ChurnedCustomers, 10),
				optRate(p.CustomerChurnRate), optRate(p.GrossMRRChurnRate), optRate(p.NetMRRChurnRate),
				optRate(p.NetRevenueRetention), optInt(p.LTV), strconv.FormatBool(p.Clamped),
				optInt(p.UsageRevenue), optInt(p.UsageMRR)})
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
	sum, err := s.Revenue.Summary(r.Context(), live, s.now().UTC().Truncate(time.Second))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "private, no-store")
	writeJSON(w, http.StatusOK, sum)
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
