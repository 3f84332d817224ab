package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/billingd/billingd/billing"
)

const (
	refA = "00000000-0000-4000-8000-00000000000a"
	refB = "00000000-0000-4000-8000-00000000000b"
	refC = "00000000-0000-4000-8000-00000000000c"
)

// linkFixture gives financeExample's customers customers rows: A to
// acct_a, B to acct_b, C unlinked.
func linkFixture(t *testing.T, f financeFixture) {
	t.Helper()
	for _, c := range []struct{ cus, ref, account string }{
		{"cus_FixA", refA, "acct_a"}, {"cus_FixB", refB, "acct_b"}, {"cus_FixC", refC, ""},
	} {
		var acct any
		if c.account != "" {
			acct = c.account
		}
		if _, err := f.store.DB().ExecContext(context.Background(), `INSERT INTO customers (stripe_customer_id, customer_ref,
			account_id, linked_via, livemode) VALUES ($1, $2, $3, CASE WHEN $3::text IS NULL THEN NULL ELSE 'api' END, true)`,
			c.cus, c.ref, acct); err != nil {
			t.Fatal(err)
		}
	}
}

type moversBody struct {
	Movements []struct {
		Date        string   `json:"date"`
		Type        string   `json:"type"`
		Currency    string   `json:"currency"`
		Amount      int64    `json:"amount"`
		MRRBefore   int64    `json:"mrr_before"`
		MRRAfter    int64    `json:"mrr_after"`
		AccountID   *string  `json:"account_id"`
		Account     string   `json:"account"`
		PlansBefore []string `json:"plans_before"`
		PlansAfter  []string `json:"plans_after"`
	} `json:"movements"`
	NextCursor *string `json:"next_cursor"`
}

func TestMoversEndpoint(t *testing.T) {
	t.Parallel()
	f := setupFinance(t)
	linkFixture(t, f)
	get := func(t *testing.T, q string) moversBody {
		t.Helper()
		resp, b := f.get(t, "/v1/metrics/movements?"+q, f.finance, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		var body moversBody
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
		return body
	}
	t.Run("EveryMovementNewestFirst", func(t *testing.T) {
		body := get(t, "from=2026-01-01&to=2026-05-31")
		want := []struct {
			date, typ, cur, account string
			amount, before, after   int64
			plansBefore, plansAfter string
		}{
			{"2026-04-03", "churn", "usd", "acct_a", -4000, 4000, 0, "price_1", ""},
			{"2026-02-10", "expansion", "usd", "acct_a", 2000, 2000, 4000, "price_1", "price_1"},
			{"2026-02-01", "new", "jpy", billing.AccountUnlinked, 5000, 0, 5000, "", "price_1"},
			{"2026-01-20", "new", "usd", "acct_b", 2000, 0, 2000, "", "price_1"},
			{"2026-01-03", "new", "usd", "acct_a", 2000, 0, 2000, "", "price_1"},
		}
		if len(body.Movements) != len(want) || body.NextCursor != nil {
			t.Fatalf("movements %+v next %v, want %d and no cursor", body.Movements, body.NextCursor, len(want))
		}
		for i, w := range want {
			m := body.Movements[i]
			if m.Date != w.date || m.Type != w.typ || m.Currency != w.cur || m.Account != w.account || m.Amount != w.amount ||
				m.MRRBefore != w.before || m.MRRAfter != w.after || strings.Join(m.PlansBefore, ",") != w.plansBefore ||
				strings.Join(m.PlansAfter, ",") != w.plansAfter {
				t.Errorf("row %d = %+v, want %+v", i, m, w)
			}
			if (m.AccountID == nil) != strings.Contains(w.account, " ") {
				t.Errorf("row %d account_id %v for %q", i, m.AccountID, w.account)
			}
		}
	})
	t.Run("TypeAndCurrency", func(t *testing.T) {
		body := get(t, "from=2026-01-01&to=2026-05-31&type=new&currency=usd")
		if len(body.Movements) != 2 || body.Movements[0].Account != "acct_b" || body.Movements[1].Account != "acct_a" {
			t.Fatalf("new usd movements %+v", body.Movements)
		}
	})
	t.Run("Pages", func(t *testing.T) {
		var got []string
		q := "from=2026-01-01&to=2026-05-31&limit=2"
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			body := get(t, q)
			for _, m := range body.Movements {
				got = append(got, m.Date+m.Type)
			}
			if body.NextCursor == nil {
				break
			}
			q = "from=2026-01-01&to=2026-05-31&limit=2&cursor=" + url.QueryEscape(*body.NextCursor)
		}
		if strings.Join(got, ",") != "2026-04-03churn,2026-02-10expansion,2026-02-01new,2026-01-20new,2026-01-03new" {
			t.Fatalf("pages gave %v", got)
		}
	})
	t.Run("ErasedAccountKeepsAmountsNotIDs", func(t *testing.T) {
		if _, err := f.store.EraseAccount(context.Background(), billing.ErasureRequest{AccountID: "acct_b", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		resp, b := f.get(t, "/v1/metrics/movements?from=2026-01-01&to=2026-05-31&type=new&currency=usd", f.finance, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		for _, leak := range []string{"acct_b", "cus_FixB", refB} {
			if strings.Contains(string(b), leak) {
				t.Errorf("movers list names %s after its erasure: %s", leak, b)
			}
		}
		var body moversBody
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
		if len(body.Movements) != 2 || body.Movements[0].Account != billing.AccountErased || body.Movements[0].AccountID != nil ||
			body.Movements[0].Amount != 2000 {
			t.Fatalf("after erasure %+v, want B as %q with its 20.00", body.Movements, billing.AccountErased)
		}
		_, c := f.get(t, "/v1/metrics/movements?from=2026-01-01&to=2026-05-31&type=new&currency=usd&format=csv", f.finance, nil)
		rows, err := csv.NewReader(strings.NewReader(string(c))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 3 || rows[0][7] != "account" || rows[1][7] != billing.AccountErased || rows[1][4] != "2000" || rows[2][7] != "acct_a" {
			t.Fatalf("CSV %q", rows)
		}
	})
	t.Run("BadInput", func(t *testing.T) {
		for q, code := range map[string]string{
			"type=upgrade":                  "invalid_type",
			"limit=0":                       "invalid_limit",
			"limit=501":                     "invalid_limit",
			"cursor=%21%21":                 "invalid_cursor",
			"from=2026-13-01":               "invalid_date",
			"from=2026-05-01&to=2026-01-01": "invalid_range",
			"currency=dollars":              "invalid_currency",
			"from=2000-01-01&to=2026-01-01": "range_too_long",
			"format=xml":                    "invalid_format",
		} {
			resp, b := f.get(t, "/v1/metrics/movements?"+q, f.finance, nil)
			if resp.StatusCode != 400 || !strings.Contains(string(b), `"code":"`+code+`"`) {
				t.Errorf("%s: %d %s, want 400 %s", q, resp.StatusCode, b, code)
			}
		}
		if resp, _ := f.get(t, "/v1/metrics/movements", f.app, nil); resp.StatusCode != 403 {
			t.Errorf("app token: %d, want 403", resp.StatusCode)
		}
	})
}

func TestCohortsEndpoint(t *testing.T) {
	t.Parallel()
	f := setupFinance(t)
	var body struct {
		Basis   string `json:"basis"`
		Cohorts []struct {
			Currency   string `json:"currency"`
			Cohort     string `json:"cohort"`
			Customers  int64  `json:"customers"`
			InitialMRR int64  `json:"initial_mrr"`
			Months     []struct {
				Month     string   `json:"month"`
				MRR       int64    `json:"mrr"`
				Retention *float64 `json:"retention"`
				GRR       *float64 `json:"gross_mrr_retention"`
			} `json:"months"`
		} `json:"cohorts"`
	}
	resp, b := f.get(t, "/v1/metrics/cohorts?from=2026-01&to=2026-01&currency=usd&basis=customers", f.finance, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	// metrics.md's worked example: A and B first paid in January; A
	// expands in February and churns in April. Months run to June (now).
	if len(body.Cohorts) != 1 || body.Cohorts[0].Cohort != "2026-01" || body.Cohorts[0].Customers != 2 ||
		body.Cohorts[0].InitialMRR != 4000 || len(body.Cohorts[0].Months) != 6 {
		t.Fatalf("cohorts %s", b)
	}
	ms := body.Cohorts[0].Months
	wantMRR := []int64{4000, 6000, 6000, 2000, 2000, 2000}
	wantCust := []float64{1, 1, 1, 0.5, 0.5, 0.5}
	wantGRR := []float64{1, 1, 1, 0.5, 0.5, 0.5}
	for i := range ms {
		if ms[i].MRR != wantMRR[i] || *ms[i].Retention != wantCust[i] || *ms[i].GRR != wantGRR[i] {
			t.Errorf("month %s: mrr %d customer retention %v gross %v", ms[i].Month, ms[i].MRR, *ms[i].Retention, *ms[i].GRR)
		}
	}
	for q, code := range map[string]string{"basis=arr": "invalid_basis", "from=2026-05&to=2026-01": "invalid_range",
		"from=jan": "invalid_date"} {
		resp, b := f.get(t, "/v1/metrics/cohorts?"+q, f.finance, nil)
		if resp.StatusCode != 400 || !strings.Contains(string(b), code) {
			t.Errorf("%s: %d %s", q, resp.StatusCode, b)
		}
	}
}

func TestRevenueGroupBy(t *testing.T) {
	t.Parallel()
	f := setupFinance(t)
	resp, b := f.get(t, "/v1/metrics/revenue?from=2026-01-01&to=2026-04-30&currency=usd&group_by=interval", f.finance, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var body struct {
		GroupBy    string `json:"group_by"`
		Currencies []struct {
			Segment string           `json:"segment"`
			Periods []map[string]any `json:"periods"`
		} `json:"currencies"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	if body.GroupBy != "interval" || len(body.Currencies) != 2 || body.Currencies[0].Segment != "month" ||
		body.Currencies[1].Segment != "year" {
		t.Fatalf("body %s", b)
	}
	if got := body.Currencies[0].Periods[3]["churn"]; got != 4000.0 {
		t.Errorf("monthly plans churned %v in April, want 4000", got)
	}
	if got := body.Currencies[1].Periods[3]["mrr"]; got != 2000.0 {
		t.Errorf("yearly plans' MRR %v in April, want 2000", got)
	}
	_, c := f.get(t, "/v1/metrics/revenue?from=2026-01-01&to=2026-04-30&currency=usd&group_by=plan&format=csv", f.finance, nil)
	rows, err := csv.NewReader(strings.NewReader(string(c))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if rows[0][0] != "currency" || rows[0][1] != "plan" || rows[1][1] != "price_1" || len(rows) != 5 {
		t.Fatalf("CSV %q", rows)
	}
	resp, b = f.get(t, "/v1/metrics/summary?group_by=plan", f.finance, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"segment":"price_1"`) || !strings.Contains(string(b), `"group_by":"plan"`) {
		t.Errorf("summary by plan: %d %s", resp.StatusCode, b)
	}
	for _, p := range []string{"/v1/metrics/revenue?group_by=customer", "/v1/metrics/summary?group_by=cohort"} {
		if resp, b := f.get(t, p, f.finance, nil); resp.StatusCode != 400 || !strings.Contains(string(b), "invalid_group_by") {
			t.Errorf("%s: %d %s", p, resp.StatusCode, b)
		}
	}
}

func TestRevenuePeriodMetrics(t *testing.T) {
	t.Parallel()
	f := setupFinance(t)
	// The clock is 2026-06-01T00:00Z: June is the partial bucket.
	_, b := f.get(t, "/v1/metrics/revenue?from=2026-01-01&to=2026-06-30&currency=usd", f.finance, nil)
	var body revenueBody
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	ps := body.Currencies[0].Periods
	for i, p := range ps {
		if p["partial"] != (i == 5) {
			t.Errorf("month %d partial = %v", i, p["partial"])
		}
	}
	// April: MRR(S) 60.00, churn 40.00: gross revenue retention 1/3,
	// quick ratio 0 (nothing gained); Feb: only expansion, no loss: null.
	if ps[3]["gross_revenue_retention"] != 0.333333 || ps[3]["quick_ratio"] != 0.0 || ps[1]["quick_ratio"] != nil {
		t.Errorf("April GRR %v quick ratio %v, Feb quick ratio %v", ps[3]["gross_revenue_retention"], ps[3]["quick_ratio"], ps[1]["quick_ratio"])
	}
}
