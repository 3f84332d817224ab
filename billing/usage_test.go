package billing

import (
	"strings"
	"testing"
	"time"
)

func TestUsageFigures(t *testing.T) {
	t.Parallel()
	d := func(s string) time.Time { v, _ := time.Parse(time.DateOnly, s); return v }
	days := []UsageDay{
		{Currency: "usd", Day: d("2026-03-31"), Amount: 900}, // before the report, in the trailing window
		{Currency: "usd", Day: d("2026-04-14"), Amount: 2500},
		{Currency: "usd", Day: d("2026-05-14"), Amount: 3500},
		{Currency: "eur", Day: d("2026-05-01"), Amount: 300},
		{Currency: "usd", Day: d("2026-06-01"), Amount: 100}, // after the report
	}
	q := RevenueQuery{Bucket: BucketMonth, From: d("2026-04-01"), To: d("2026-06-01")}
	got := UsageFigures(days, q)
	want := []UsageTotals{
		{Currency: "eur", Start: d("2026-04-01"), End: d("2026-05-01"), UsageRevenue: 0, UsageMRR: 0},
		{Currency: "eur", Start: d("2026-05-01"), End: d("2026-06-01"), UsageRevenue: 300, UsageMRR: 100},
		{Currency: "usd", Start: d("2026-04-01"), End: d("2026-05-01"), UsageRevenue: 2500, UsageMRR: 1133}, // (900+2500)/3
		{Currency: "usd", Start: d("2026-05-01"), End: d("2026-06-01"), UsageRevenue: 3500, UsageMRR: 2300}, // (900+2500+3500)/3
	}
	if len(got) != len(want) {
		t.Fatalf("%d buckets, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("bucket %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestCatalogName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", MaxCatalogName+10)
	tests := []struct{ in, want string }{
		{"Pro", "Pro"},
		{"  Team\tseats\u0000 Pro\n", "Team seats Pro"},
		{"Zero\u200bwidth", "Zerowidth"},
		{long, strings.Repeat("é", MaxCatalogName)},
		{"bad\xffutf8", "badutf8"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := CatalogName(tt.in); got != tt.want {
			t.Errorf("CatalogName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
