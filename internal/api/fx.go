// Reporting currency: PUT /v1/fx/rates stores daily reference rates, and
// GET /v1/metrics/revenue?currency=reporting converts every currency into
// REPORTING_CURRENCY with them.

package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
)

// maxFXBody caps a PUT /v1/fx/rates body: the ECB's whole history since
// 1999 is about 1.5 MiB of CSV.
const maxFXBody = 8 << 20

type fxRateJSON struct {
	Date     string `json:"date"`
	Currency string `json:"currency"`
	PerEUR   string `json:"per_eur"`
}

// handlePutFXRates serves PUT /v1/fx/rates (finance token): a JSON body
// {"rates":[{"date":"2026-01-05","currency":"usd","per_eur":"1.0921"}]}, or
// the ECB reference-rate CSV with Content-Type text/csv. All or nothing:
// one bad rate refuses the body, naming it.
func (s *Server) handlePutFXRates(w http.ResponseWriter, r *http.Request) {
	if s.FX == nil {
		writeError(w, http.StatusServiceUnavailable, "fx_unavailable", "exchange rates are not configured")
		return
	}
	body := http.MaxBytesReader(w, r.Body, maxFXBody)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var rates []billing.FXRate
	tooBig := func(err error) bool {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body is over %d bytes", maxFXBody))
			return true
		}
		return false
	}
	switch mt {
	case "text/csv":
		var err error
		rates, err = billing.ParseECBRates(body)
		if err != nil {
			if !tooBig(err) {
				writeError(w, http.StatusBadRequest, "invalid_rates", strings.TrimPrefix(err.Error(), billing.ErrInvalid.Error()+": "))
			}
			return
		}
	case "application/json", "":
		var req struct {
			Rates []fxRateJSON `json:"rates"`
		}
		dec := json.NewDecoder(body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			if !tooBig(err) {
				writeError(w, http.StatusBadRequest, "invalid_json", `body must be {"rates":[{"date":"YYYY-MM-DD","currency":"usd","per_eur":"1.0921"}]}`)
			}
			return
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, "invalid_json", "body must hold one JSON object")
			return
		}
		if len(req.Rates) == 0 || len(req.Rates) > billing.MaxFXRates {
			writeError(w, http.StatusBadRequest, "invalid_rates", fmt.Sprintf("rates must list 1 to %d rates", billing.MaxFXRates))
			return
		}
		for i, j := range req.Rates {
			day, err := time.Parse(time.DateOnly, j.Date)
			if err != nil {
				writeError(w, http.StatusBadRequest, "invalid_rates", fmt.Sprintf("rates[%d]: date must be YYYY-MM-DD", i))
				return
			}
			fr := billing.FXRate{Day: day, Currency: strings.ToLower(j.Currency), PerEUR: j.PerEUR}
			if err := billing.ValidFXRate(fr); err != nil {
				writeError(w, http.StatusBadRequest, "invalid_rates",
					fmt.Sprintf("rates[%d]: %s", i, strings.TrimPrefix(err.Error(), billing.ErrInvalid.Error()+": ")))
				return
			}
			rates = append(rates, fr)
		}
	default:
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json or text/csv (the ECB format)")
		return
	}
	n, err := s.FX.PutFXRates(r.Context(), rates, "api")
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"written": n})
}

// reportingRevenue answers a revenue report in the reporting currency:
// the daily report of every currency from the day before the first bucket
// (its MRR at S), converted day by day (billing.ToReporting).
func (s *Server) reportingRevenue(w http.ResponseWriter, r *http.Request, rr revenueRequest, now time.Time) ([]billing.PeriodTotals, bool) {
	if s.ReportingCurrency == "" {
		writeError(w, http.StatusBadRequest, "reporting_currency_unset", "currency=reporting needs REPORTING_CURRENCY to be set")
		return nil, false
	}
	if s.FX == nil {
		writeError(w, http.StatusServiceUnavailable, "fx_unavailable", "exchange rates are not configured")
		return nil, false
	}
	q := rr.query
	q.Bucket, q.From, q.Currency = billing.BucketDay, rr.query.From.AddDate(0, 0, -1), ""
	daily, err := s.Revenue.Revenue(r.Context(), q)
	if err != nil {
		s.Error(w, r, err)
		return nil, false
	}
	rates, err := s.FX.FXRates(r.Context(), q.From.AddDate(0, 0, -billing.FXCarryDays), q.To)
	if err != nil {
		s.Error(w, r, err)
		return nil, false
	}
	out, err := billing.ToReporting(daily, s.ReportingCurrency, billing.NewRateTable(rates), rr.query.Bucket,
		rr.query.From, rr.query.To, now)
	var missing *billing.MissingRatesError
	if errors.As(err, &missing) {
		writeError(w, http.StatusUnprocessableEntity, "fx_rates_missing", missing.Error())
		return nil, false
	}
	if err != nil {
		s.Error(w, r, err)
		return nil, false
	}
	return out, true
}
