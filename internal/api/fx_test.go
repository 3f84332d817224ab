package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/api"
)

func (f financeFixture) put(t *testing.T, path, token, contentType, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, f.srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// reportingFixture is setupFinance with REPORTING_CURRENCY=eur.
func reportingFixture(t *testing.T) financeFixture {
	f := setupFinance(t)
	s := &api.Server{Log: slog.New(slog.DiscardHandler), Tokens: f.store, Revenue: f.store, FX: f.store, ReportingCurrency: "eur",
		Now: func() time.Time { return at("2026-06-01T00:00:00Z") }}
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func TestFXRatesPut(t *testing.T) {
	t.Parallel()
	f := reportingFixture(t)
	resp, b := f.put(t, "/v1/fx/rates", f.finance, "application/json",
		`{"rates":[{"date":"2026-01-05","currency":"USD","per_eur":"1.0921"},{"date":"2026-01-05","currency":"jpy","per_eur":"158.56"}]}`)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"written":2`) {
		t.Fatalf("JSON put: %d %s", resp.StatusCode, b)
	}
	resp, b = f.put(t, "/v1/fx/rates", f.finance, "text/csv", "Date,USD,JPY,\n2026-01-05,1.0930,N/A,\n2026-01-06,1.1,160,\n")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"written":3`) {
		t.Fatalf("CSV put: %d %s", resp.StatusCode, b)
	}
	rates, err := f.store.FXRates(context.Background(), at("2026-01-01T00:00:00Z"), at("2026-01-31T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rates {
		got[r.Day.Format(time.DateOnly)+r.Currency] = r.PerEUR
	}
	if len(got) != 4 || got["2026-01-05usd"] != "1.0930" || got["2026-01-05jpy"] != "158.56" || got["2026-01-06jpy"] != "160" {
		t.Fatalf("stored %v: the CSV replaces the day's usd rate and keeps jpy", got)
	}
	for _, tc := range []struct {
		name, ctype, body, code string
		status                  int
	}{
		{"BadDate", "application/json", `{"rates":[{"date":"5 Jan","currency":"usd","per_eur":"1"}]}`, "invalid_rates", 400},
		{"EUR", "application/json", `{"rates":[{"date":"2026-01-05","currency":"eur","per_eur":"1"}]}`, "invalid_rates", 400},
		{"Negative", "application/json", `{"rates":[{"date":"2026-01-05","currency":"usd","per_eur":"-1"}]}`, "invalid_rates", 400},
		{"Empty", "application/json", `{"rates":[]}`, "invalid_rates", 400},
		{"UnknownField", "application/json", `{"rates":[],"x":1}`, "invalid_json", 400},
		{"BadCSVLine", "text/csv", "Date,USD\n2026-01-05,1.1\n2026-01-06,x\n", "invalid_rates", 400},
		{"XML", "application/xml", `<rates/>`, "unsupported_media_type", 415},
	} {
		resp, b := f.put(t, "/v1/fx/rates", f.finance, tc.ctype, tc.body)
		if resp.StatusCode != tc.status || !strings.Contains(string(b), `"code":"`+tc.code+`"`) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, resp.StatusCode, b, tc.status, tc.code)
		}
	}
	if resp, b := f.put(t, "/v1/fx/rates", f.app, "application/json", `{"rates":[]}`); resp.StatusCode != 403 {
		t.Errorf("app token: %d %s", resp.StatusCode, b)
	}
	if resp, _ := f.put(t, "/v1/fx/rates", "", "application/json", `{"rates":[]}`); resp.StatusCode != 401 {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	// Nothing of the refused bodies was written.
	after, _ := f.store.FXRates(context.Background(), at("2026-01-01T00:00:00Z"), at("2026-01-31T00:00:00Z"))
	if len(after) != 4 {
		t.Errorf("%d rates after refused bodies, want 4", len(after))
	}
}

func TestRevenueReportingCurrency(t *testing.T) {
	t.Parallel()
	f := reportingFixture(t)
	// financeExample: usd (metrics.md's example) and a 5000 yen customer
	// from February. 1 EUR = 1.25 USD = 125 JPY, and the dollar jumps to
	// 1.00 on April 1. No rates before 2025-12-28: a report from December
	// lacks days.
	var rates []string
	for d := at("2025-12-28T00:00:00Z"); d.Before(at("2026-07-01T00:00:00Z")); d = d.AddDate(0, 0, 1) {
		usd := "1.25"
		if !d.Before(at("2026-04-01T00:00:00Z")) {
			usd = "1.00"
		}
		if d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
			continue // as the ECB: no rates on weekends, Friday's carries over
		}
		rates = append(rates, d.Format(time.DateOnly)+","+usd+",125")
	}
	if resp, b := f.put(t, "/v1/fx/rates", f.finance, "text/csv", "Date,USD,JPY\n"+strings.Join(rates, "\n")); resp.StatusCode != 200 {
		t.Fatalf("put rates: %d %s", resp.StatusCode, b)
	}
	resp, b := f.get(t, "/v1/metrics/revenue?from=2026-01-01&to=2026-04-30&currency=reporting", f.finance, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var body struct {
		Currencies []struct {
			Currency  string           `json:"currency"`
			Reporting bool             `json:"reporting"`
			Periods   []map[string]any `json:"periods"`
		} `json:"currencies"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Currencies) != 1 || body.Currencies[0].Currency != "eur" || !body.Currencies[0].Reporting {
		t.Fatalf("body %s", b)
	}
	ps := body.Currencies[0].Periods
	want := []struct{ mrr, newMRR, exp, churn, fx float64 }{
		{3200, 3200, 0, 0, 0},    // 40 USD = 32.00 EUR
		{8800, 4000, 1600, 0, 0}, // + 20 USD expansion (16.00) + 5000 yen new (40.00)
		{8800, 0, 0, 0, 0},       // unchanged
		{6000, 0, 0, 4000, 1200}, // see below
	}
	// April: MRR(S) 88.00 EUR = 60 USD at 1.25 + 40.00; MRR(E) = 20 USD at
	// 1.00 + 40.00 = 60.00; churn 40 USD at April 3's 1.00 = 40.00; FX
	// effect = 60.00 − 88.00 + 40.00 = 12.00.
	for i, w := range want {
		p := ps[i]
		if p["mrr"] != w.mrr || p["new"] != w.newMRR || p["expansion"] != w.exp || p["churn"] != w.churn || p["fx_effect"] != w.fx {
			t.Errorf("month %d: mrr %v new %v expansion %v churn %v fx %v; want %+v", i, p["mrr"], p["new"], p["expansion"], p["churn"], p["fx_effect"], w)
		}
	}
	t.Run("MissingRatesNameTheDays", func(t *testing.T) {
		resp, b := f.get(t, "/v1/metrics/revenue?from=2025-12-01&to=2026-01-31&currency=reporting", f.finance, nil)
		// Only days with MRR or movements in a currency need its rate:
		// December has none, though its rates stop on the 28th.
		if resp.StatusCode != 200 {
			t.Fatalf("December without revenue needs no rates: %d %s", resp.StatusCode, b)
		}
		if _, err := f.store.DB().ExecContext(context.Background(), `DELETE FROM fx_rates WHERE currency = 'jpy' AND day BETWEEN '2026-02-20' AND '2026-03-10'`); err != nil {
			t.Fatal(err)
		}
		resp, b = f.get(t, "/v1/metrics/revenue?from=2026-02-01&to=2026-03-31&currency=reporting", f.finance, nil)
		if resp.StatusCode != 422 || !strings.Contains(string(b), `"code":"fx_rates_missing"`) ||
			!strings.Contains(string(b), "jpy") || !strings.Contains(string(b), "2026-02-28") {
			t.Fatalf("missing yen rates: %d %s", resp.StatusCode, b)
		}
	})
	t.Run("Unset", func(t *testing.T) {
		g := setupFinance(t)
		resp, b := g.get(t, "/v1/metrics/revenue?currency=reporting", g.finance, nil)
		if resp.StatusCode != 400 || !strings.Contains(string(b), "reporting_currency_unset") {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
}
