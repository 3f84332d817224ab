package api_test

import (
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
)

// Usage revenue sits beside MRR in the revenue report, JSON and CSV, and
// never changes MRR.
func TestRevenueUsageColumns(t *testing.T) {
	t.Parallel()
	f := setupFinance(t)
	_, before := f.get(t, "/v1/metrics/revenue?from=2026-01-01&to=2026-04-30&interval=month&currency=usd", f.finance, nil)
	// Stored paid metered lines, as invoice.paid records them.
	if _, err := f.store.DB().Exec(`
INSERT INTO invoice_line_amounts (customer_ref, livemode, currency, price_id, usage_kind, period_start, period_end,
    amount_minor, net_minor, paid_at)
VALUES (gen_random_uuid(), true, 'usd', 'price_M', 'metered', '2026-01-01', '2026-02-01', 3600, 3000, '2026-02-01'),
       (gen_random_uuid(), true, 'usd', 'price_T', 'tiered', '2026-02-01', '2026-03-01', 1500, 1500, '2026-03-01'),
       (gen_random_uuid(), true, 'usd', 'price_F', 'fixed', '2026-02-01', '2026-03-01', 9999, 9999, '2026-03-01'),
       (gen_random_uuid(), false, 'usd', 'price_M', 'metered', '2026-02-01', '2026-03-01', 7777, 7777, '2026-03-01')`); err != nil {
		t.Fatal(err)
	}
	resp, b := f.get(t, "/v1/metrics/revenue?from=2026-01-01&to=2026-04-30&interval=month&currency=usd", f.finance, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var body, old revenueBody
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(before, &old); err != nil {
		t.Fatal(err)
	}
	ps := body.Currencies[0].Periods
	// usage_revenue by period; usage_mrr trailing three months ÷ 3, net of tax.
	want := []struct{ rev, mrr float64 }{{3000, 1000}, {1500, 1500}, {0, 1500}, {0, 500}}
	for i, w := range want {
		if ps[i]["usage_revenue"] != w.rev || ps[i]["usage_mrr"] != w.mrr {
			t.Errorf("%s: usage_revenue %v usage_mrr %v, want %v %v", ps[i]["start"], ps[i]["usage_revenue"], ps[i]["usage_mrr"], w.rev, w.mrr)
		}
		if ps[i]["mrr"] != old.Currencies[0].Periods[i]["mrr"] {
			t.Errorf("%s: MRR %v changed from %v by usage", ps[i]["start"], ps[i]["mrr"], old.Currencies[0].Periods[i]["mrr"])
		}
	}
	resp, b = f.get(t, "/v1/metrics/revenue?from=2026-01-01&to=2026-04-30&interval=month&currency=usd&format=csv", f.finance, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	h := rows[0]
	if h[len(h)-2] != "usage_revenue" || h[len(h)-1] != "usage_mrr" {
		t.Fatalf("CSV header %v", h)
	}
	if r := rows[1]; r[len(r)-2] != "3000" || r[len(r)-1] != "1000" {
		t.Fatalf("CSV January %v", r)
	}
}

// GET /v1/catalog/plans names every price of a mode; finance scope only.
func TestPlanNamesEndpoint(t *testing.T) {
	t.Parallel()
	f := setupFinance(t)
	if _, err := f.store.DB().Exec(`
INSERT INTO catalog_products (product_id, livemode, name, active, version_at, version_event)
VALUES ('prod_pro', true, 'Pro', true, now(), 'evt_1');
INSERT INTO catalog_prices (price_id, livemode, product_id, nickname, currency, interval, interval_count, active, version_at, version_event)
VALUES ('price_y', true, 'prod_pro', NULL, 'usd', 'year', 1, true, now(), 'evt_2'),
       ('price_q', true, 'prod_pro', NULL, 'usd', 'month', 3, true, now(), 'evt_3'),
       ('price_n', true, 'prod_none', 'Founders', 'usd', 'month', 1, true, now(), 'evt_4'),
       ('price_t', false, 'prod_pro', NULL, 'usd', 'month', 1, true, now(), 'evt_5')`); err != nil {
		t.Fatal(err)
	}
	resp, b := f.get(t, "/v1/catalog/plans", f.finance, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var body struct {
		Plans []struct {
			PriceID  string `json:"price_id"`
			PlanName string `json:"plan_name"`
		} `json:"plans"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range body.Plans {
		got = append(got, p.PriceID+"="+p.PlanName)
	}
	if g := strings.Join(got, "; "); g != "price_q=Pro (every 3 months); price_y=Pro (yearly); price_n=prod_none (Founders)" {
		t.Fatalf("plans %s", g)
	}
	if resp, _ := f.get(t, "/v1/catalog/plans", f.app, nil); resp.StatusCode != 403 {
		t.Fatalf("app token: %d, want 403", resp.StatusCode)
	}
	if resp, b := f.get(t, "/v1/catalog/plans?livemode=maybe", f.finance, nil); resp.StatusCode != 400 || !strings.Contains(string(b), `"error"`) {
		t.Fatalf("bad livemode: %d %s", resp.StatusCode, b)
	}
}
