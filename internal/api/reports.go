// Finance reports beside the revenue series: the cohort table
// (GET /v1/metrics/cohorts) and the movers list behind every movement
// (GET /v1/metrics/movements).

package api

import (
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
)

// parseFormat reads format=json|csv, or the Accept header.
func parseFormat(r *http.Request) (bool, *errorDetail) {
	switch f := r.URL.Query().Get("format"); f {
	case "csv":
		return true, nil
	case "json":
		return false, nil
	case "":
		return acceptsCSV(r.Header.Get("Accept")), nil
	default:
		return false, &errorDetail{"invalid_format", fmt.Sprintf("format must be json or csv, not %q", clip(f))}
	}
}

func parseCurrency(s string) (string, *errorDetail) {
	cur := strings.ToLower(s)
	if cur != "" && !validCurrency.MatchString(cur) {
		return "", &errorDetail{"invalid_currency", "currency must be a three-letter ISO 4217 code such as usd"}
	}
	return cur, nil
}

// parseMonth reads YYYY-MM or YYYY-MM-DD as the month holding it.
func parseMonth(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	t, err := time.Parse("2006-01", s)
	if err != nil {
		t, err = time.Parse(time.DateOnly, s)
	}
	return billing.BucketMonth.Truncate(t), err
}

type cohortsJSON struct {
	From     string           `json:"from"`
	To       string           `json:"to"`
	Livemode bool             `json:"livemode"`
	Basis    string           `json:"basis"`
	AsOf     time.Time        `json:"as_of"`
	Cohorts  []billing.Cohort `json:"cohorts"`
}

// handleCohorts serves GET /v1/metrics/cohorts (scope finance):
// customers grouped by the month they first paid, followed month by month.
func (s *Server) handleCohorts(w http.ResponseWriter, r *http.Request) {
	if s.Revenue == nil {
		writeError(w, http.StatusServiceUnavailable, "metrics_unavailable", "revenue metrics are not configured")
		return
	}
	now := s.now().UTC().Truncate(time.Second)
	q := r.URL.Query()
	bad := func(d *errorDetail) { writeError(w, http.StatusBadRequest, d.Code, d.Message) }
	to, err := parseMonth(q.Get("to"), billing.BucketMonth.Truncate(now))
	if err != nil {
		bad(&errorDetail{"invalid_date", "to must be a month YYYY-MM or a date YYYY-MM-DD"})
		return
	}
	from, err := parseMonth(q.Get("from"), to.AddDate(0, -11, 0))
	if err != nil {
		bad(&errorDetail{"invalid_date", "from must be a month YYYY-MM or a date YYYY-MM-DD"})
		return
	}
	if d := checkRange(from, to); d != nil {
		bad(d)
		return
	}
	cur, perr := parseCurrency(q.Get("currency"))
	if perr != nil {
		bad(perr)
		return
	}
	live, perr := parseLivemode(q.Get("livemode"))
	if perr != nil {
		bad(perr)
		return
	}
	basis := q.Get("basis")
	switch basis {
	case "":
		basis = "mrr"
	case "mrr", "customers":
	default:
		bad(&errorDetail{"invalid_basis", fmt.Sprintf("basis must be mrr or customers, not %q", clip(basis))})
		return
	}
	asCSV, perr := parseFormat(r)
	if perr != nil {
		bad(perr)
		return
	}
	totals, err := s.Revenue.Cohorts(r.Context(), billing.CohortQuery{Livemode: live, Currency: cur, From: from, To: to, AsOf: now})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := cohortsJSON{From: from.Format("2006-01"), To: to.Format("2006-01"), Livemode: live, Basis: basis, AsOf: now,
		Cohorts: []billing.Cohort{}}
	for _, t := range totals {
		c := billing.CohortFigures(t, now)
		for i := range c.Months {
			m := &c.Months[i]
			m.Retention = m.NetMRRRetention
			if basis == "customers" {
				m.Retention = m.CustomerRetention
			}
		}
		out.Cohorts = append(out.Cohorts, c)
	}
	s.finm.report("cohorts", asCSV)
	w.Header().Set("Cache-Control", "private, no-store")
	if !asCSV {
		writeJSON(w, http.StatusOK, out)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="cohorts-%s-%s.csv"`, out.From, out.To))
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"currency", "currency_exponent", "cohort", "customers", "initial_mrr", "month", "offset", "mrr",
		"retained_mrr", "paying_customers", "net_mrr_retention", "gross_mrr_retention", "customer_retention", "partial"})
	i := strconv.FormatInt
	for _, c := range out.Cohorts {
		for _, m := range c.Months {
			_ = cw.Write([]string{c.Currency, strconv.Itoa(c.Exponent), c.Cohort, i(c.Customers, 10), i(c.InitialMRR, 10),
				m.Month, strconv.Itoa(m.Offset), i(m.MRR, 10), i(m.RetainedMRR, 10), i(m.PayingCustomers, 10),
				optRate(m.NetMRRRetention), optRate(m.GrossMRRRetention), optRate(m.CustomerRetention),
				strconv.FormatBool(m.Partial)})
		}
	}
	cw.Flush()
}

type moverJSON struct {
	At          time.Time `json:"at"`
	Date        string    `json:"date"`
	Type        string    `json:"type"`
	Currency    string    `json:"currency"`
	Exponent    int       `json:"exponent"`
	Decimals    int       `json:"decimals"`
	Amount      int64     `json:"amount"` // signed: churn and contraction negative
	MRRBefore   int64     `json:"mrr_before"`
	MRRAfter    int64     `json:"mrr_after"`
	AccountID   *string   `json:"account_id"` // null when erased, unlinked or deleted
	Account     string    `json:"account"`    // the account ID, "erased account", "unlinked customer" or "deleted customer"
	PlansBefore []string  `json:"plans_before"`
	PlansAfter  []string  `json:"plans_after"`
}

type moversJSON struct {
	From       string      `json:"from"`
	To         string      `json:"to"`
	Livemode   bool        `json:"livemode"`
	Type       string      `json:"type,omitempty"`
	Currency   string      `json:"currency,omitempty"`
	AsOf       time.Time   `json:"as_of"`
	Movements  []moverJSON `json:"movements"`
	NextCursor *string     `json:"next_cursor"`
}

// encodeCursor and decodeCursor make the movers list's position opaque.
func encodeCursor(c billing.MoverCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%d.%d", c.At.UnixMicro(), c.ID)))
}

func decodeCursor(s string) (*billing.MoverCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 48 {
		return nil, false
	}
	us, id, ok := strings.Cut(string(b), ".")
	if !ok {
		return nil, false
	}
	u, err1 := strconv.ParseInt(us, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil || n < 0 {
		return nil, false
	}
	return &billing.MoverCursor{At: time.UnixMicro(u).UTC(), ID: n}, true
}

// handleMovers serves GET /v1/metrics/movements (scope finance): who is
// behind each movement, newest first, a page at a time.
func (s *Server) handleMovers(w http.ResponseWriter, r *http.Request) {
	if s.Revenue == nil {
		writeError(w, http.StatusServiceUnavailable, "metrics_unavailable", "revenue metrics are not configured")
		return
	}
	now := s.now().UTC().Truncate(time.Second)
	q := r.URL.Query()
	bad := func(d *errorDetail) { writeError(w, http.StatusBadRequest, d.Code, d.Message) }
	today := billing.BucketDay.Truncate(now)
	to, err := parseDate(q.Get("to"), today)
	if err != nil {
		bad(&errorDetail{"invalid_date", "to must be a date YYYY-MM-DD"})
		return
	}
	from, err := parseDate(q.Get("from"), to.AddDate(0, 0, -29))
	if err != nil {
		bad(&errorDetail{"invalid_date", "from must be a date YYYY-MM-DD"})
		return
	}
	if d := checkRange(from, to); d != nil {
		bad(d)
		return
	}
	kind := billing.MovementKind(q.Get("type"))
	switch kind {
	case "", billing.MovementNew, billing.MovementExpansion, billing.MovementContraction, billing.MovementChurn,
		billing.MovementReactivation:
	default:
		bad(&errorDetail{"invalid_type", "type must be new, expansion, contraction, churn or reactivation"})
		return
	}
	cur, perr := parseCurrency(q.Get("currency"))
	if perr != nil {
		bad(perr)
		return
	}
	live, perr := parseLivemode(q.Get("livemode"))
	if perr != nil {
		bad(perr)
		return
	}
	asCSV, perr := parseFormat(r)
	if perr != nil {
		bad(perr)
		return
	}
	limit, maxLimit := 50, billing.MaxMoversPage
	if asCSV {
		limit, maxLimit = billing.MaxMoversCSVPage, billing.MaxMoversCSVPage
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxLimit {
			bad(&errorDetail{"invalid_limit", fmt.Sprintf("limit must be a whole number from 1 to %d", maxLimit)})
			return
		}
		limit = n
	}
	var after *billing.MoverCursor
	if c := q.Get("cursor"); c != "" {
		var ok bool
		if after, ok = decodeCursor(c); !ok {
			bad(&errorDetail{"invalid_cursor", "cursor must be a next_cursor this endpoint returned"})
			return
		}
	}
	page, more, err := s.Revenue.Movers(r.Context(), billing.MoverQuery{Livemode: live, Currency: cur, Kind: kind,
		From: from, To: to.AddDate(0, 0, 1), AsOf: now, Limit: limit, After: after})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := moversJSON{From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), Livemode: live, Type: string(kind),
		Currency: cur, AsOf: now, Movements: make([]moverJSON, 0, len(page))}
	for _, m := range page {
		j := moverJSON{At: m.At, Date: m.At.Format(time.DateOnly), Type: string(m.Kind), Currency: m.Currency,
			Exponent: billing.MinorUnitExponent(m.Currency), Decimals: billing.DisplayDecimals(m.Currency), Amount: m.Delta,
			MRRBefore: m.MRRBefore, MRRAfter: m.MRRAfter, Account: m.Account, PlansBefore: m.PlansBefore, PlansAfter: m.PlansAfter}
		if m.AccountID != "" {
			id := m.AccountID
			j.AccountID = &id
		}
		out.Movements = append(out.Movements, j)
	}
	if more && len(page) > 0 {
		c := encodeCursor(billing.MoverCursor{At: page[len(page)-1].At, ID: page[len(page)-1].ID})
		out.NextCursor = &c
	}
	s.finm.report("movements", asCSV)
	w.Header().Set("Cache-Control", "private, no-store")
	if !asCSV {
		writeJSON(w, http.StatusOK, out)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="movements-%s-%s.csv"`, out.From, out.To))
	if out.NextCursor != nil {
		w.Header().Set("X-Next-Cursor", *out.NextCursor)
	}
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"at", "type", "currency", "currency_exponent", "amount", "mrr_before", "mrr_after", "account",
		"plans_before", "plans_after"})
	i := strconv.FormatInt
	for _, m := range out.Movements {
		_ = cw.Write([]string{m.At.Format(time.RFC3339), m.Type, m.Currency, strconv.Itoa(m.Exponent), i(m.Amount, 10),
			i(m.MRRBefore, 10), i(m.MRRAfter, 10), csvSafe(m.Account), strings.Join(m.PlansBefore, " "),
			strings.Join(m.PlansAfter, " ")})
	}
	cw.Flush()
}

// csvSafe keeps a cell from being read as a formula by a spreadsheet
// (account IDs are the app's, and may start with anything it allows).
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		return "'" + s
	}
	return s
}
