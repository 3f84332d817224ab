package billing

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const ecbSample = `Date, USD, JPY, GBP, 
2026-01-06, 1.1000, 160.00, 0.8500, 
2026-01-05, 1.0921, 158.56, N/A, 
`

func TestParseECBRates(t *testing.T) {
	t.Parallel()
	rates, err := ParseECBRates(strings.NewReader("\ufeff" + ecbSample))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rates {
		got[r.Day.Format(time.DateOnly)+" "+r.Currency] = r.PerEUR
	}
	want := map[string]string{"2026-01-06 usd": "1.1000", "2026-01-06 jpy": "160.00", "2026-01-06 gbp": "0.8500",
		"2026-01-05 usd": "1.0921", "2026-01-05 jpy": "158.56"}
	if len(got) != len(want) {
		t.Fatalf("rates %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for name, in := range map[string]string{
		"NoDateColumn":   "Day,USD\n2026-01-05,1.09\n",
		"BadCurrency":    "Date,US Dollar\n2026-01-05,1.09\n",
		"BadDate":        "Date,USD\n05/01/2026,1.09\n",
		"NegativeRate":   "Date,USD\n2026-01-05,-1.09\n",
		"ZeroRate":       "Date,USD\n2026-01-05,0\n",
		"Exponent":       "Date,USD\n2026-01-05,1e3\n",
		"NothingInIt":    "Date,USD\n",
		"Empty":          "",
		"LineNamedOnBad": "Date,USD\n2026-01-05,1.09\n2026-01-06,abc\n",
	} {
		_, err := ParseECBRates(strings.NewReader(in))
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
		if name == "LineNamedOnBad" && (err == nil || !strings.Contains(err.Error(), "line 3")) {
			t.Errorf("the error names no line: %v", err)
		}
	}
}

func fxDay(s string) time.Time { return *tp(s + "T00:00:00Z") }

func TestRateTableCarriesForward(t *testing.T) {
	t.Parallel()
	rt := NewRateTable([]FXRate{{Day: fxDay("2026-04-02"), Currency: "usd", PerEUR: "1.10"}}) // Thursday before Easter
	for _, tc := range []struct {
		day string
		ok  bool
	}{{"2026-04-01", false}, {"2026-04-02", true}, {"2026-04-06", true}, {"2026-04-07", false}} {
		if _, ok := rt.Rate("usd", fxDay(tc.day)); ok != tc.ok {
			t.Errorf("rate on %s found %v, want %v", tc.day, ok, tc.ok)
		}
	}
	if r, ok := rt.Rate("eur", fxDay("1999-01-01")); !ok || r.Cmp(ratOne) != 0 {
		t.Error("EUR is always 1")
	}
}

func TestToReporting(t *testing.T) {
	t.Parallel()
	// usd: 20.00 MRR from before; +10.00 on Jan 2. jpy: 5000 yen MRR.
	// Reporting in EUR at 1 EUR = 1.25 USD, then 1.00 USD from Jan 3;
	// 1 EUR = 100 JPY throughout.
	d := func(cur, s string, mrrStart, mrrEnd int64, m MovementSums) PeriodTotals {
		return PeriodTotals{Start: fxDay(s), End: fxDay(s).AddDate(0, 0, 1), Currency: cur, MRRStart: mrrStart, MRREnd: mrrEnd,
			PayingStart: 1, PayingEnd: 1, Movements: m}
	}
	daily := []PeriodTotals{
		d("jpy", "2025-12-31", 5000, 5000, MovementSums{}),
		d("jpy", "2026-01-01", 5000, 5000, MovementSums{}),
		d("jpy", "2026-01-02", 5000, 5000, MovementSums{}),
		d("jpy", "2026-01-03", 5000, 5000, MovementSums{}),
		d("usd", "2025-12-31", 2000, 2000, MovementSums{}),
		d("usd", "2026-01-01", 2000, 2000, MovementSums{}),
		d("usd", "2026-01-02", 2000, 3000, MovementSums{Expansion: 1000}),
		d("usd", "2026-01-03", 3000, 3000, MovementSums{}),
	}
	rates := []FXRate{{Day: fxDay("2025-12-31"), Currency: "usd", PerEUR: "1.25"}, {Day: fxDay("2026-01-03"), Currency: "usd", PerEUR: "1.00"},
		{Day: fxDay("2025-12-31"), Currency: "jpy", PerEUR: "100"}}
	out, err := ToReporting(daily, "eur", NewRateTable(rates), BucketDay, fxDay("2026-01-01"), fxDay("2026-01-04"), fxDay("2026-01-10"))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		start, end, exp, fx int64
	}{
		// Jan 1: 20 USD = 16.00 EUR, 5000 JPY = 50.00 EUR.
		{6600, 6600, 0, 0},
		// Jan 2: +10.00 USD = 8.00 EUR of expansion.
		{6600, 7400, 800, 0},
		// Jan 3: the dollar gains: 30 USD = 30.00 EUR; the 6.00 EUR is FX.
		{7400, 8000, 0, 600},
	}
	if len(out) != len(want) {
		t.Fatalf("%d buckets", len(out))
	}
	for i, w := range want {
		p := out[i]
		if p.Currency != "eur" || p.MRRStart != w.start || p.MRREnd != w.end || p.Movements.Expansion != w.exp || p.FXEffect != w.fx ||
			p.PayingEnd != 2 {
			t.Errorf("day %d: %+v, want %+v", i, p, w)
		}
		if p.MRRStart+p.Movements.NetNew()+p.FXEffect != p.MRREnd {
			t.Errorf("day %d does not reconcile", i)
		}
	}
	t.Run("JPYReportingHasNoDecimals", func(t *testing.T) {
		out, err := ToReporting(daily, "jpy", NewRateTable(rates), BucketMonth, fxDay("2026-01-01"), fxDay("2026-02-01"), fxDay("2026-01-03"))
		if err != nil {
			t.Fatal(err)
		}
		// 30 USD at 1 USD = 100 JPY → 3000 yen, plus 5000 yen.
		if out[0].MRREnd != 8000 {
			t.Errorf("MRR in yen %d, want 8000", out[0].MRREnd)
		}
	})
	t.Run("MissingDayNamed", func(t *testing.T) {
		short := []FXRate{{Day: fxDay("2025-12-20"), Currency: "usd", PerEUR: "1.25"}, {Day: fxDay("2026-01-02"), Currency: "usd", PerEUR: "1.25"},
			{Day: fxDay("2025-12-31"), Currency: "jpy", PerEUR: "100"}}
		_, err := ToReporting(daily, "eur", NewRateTable(short), BucketDay, fxDay("2026-01-01"), fxDay("2026-01-04"), fxDay("2026-01-10"))
		var m *MissingRatesError
		if !errors.As(err, &m) {
			t.Fatalf("err %v, want MissingRatesError", err)
		}
		if len(m.Currencies) != 1 || m.Currencies[0] != "usd" || len(m.Days) != 2 ||
			!strings.Contains(err.Error(), "2025-12-31, 2026-01-01") {
			t.Fatalf("missing %+v: %v", m, err)
		}
	})
}
