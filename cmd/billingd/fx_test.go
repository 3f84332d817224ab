package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// TestFXImportCommand: `billingd fx import FILE` stores an ECB file's rates
// (N/A cells skipped, a day's rate replaced by a later import) and refuses
// a malformed file whole, naming its line.
func TestFXImportCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	getenv := func(k string) string { return map[string]string{"DATABASE_URL": dbURL, "LOG_LEVEL": "error"}[k] }
	cli := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, args, getenv, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("eurofxref-hist.csv", "Date,USD,JPY,BGN,\n2026-01-06,1.1000,160.00,N/A,\n2026-01-05,1.0921,158.56,1.9558,\n")
	out, _, err := cli("fx", "import", good)
	if err != nil || !strings.Contains(out, "imported 5 rates of 3 currencies from 2026-01-05 to 2026-01-06") {
		t.Fatalf("import: %q %v", out, err)
	}
	fix := write("fix.csv", "Date,USD\n2026-01-05,1.0930\n")
	if _, _, err := cli("fx", "import", fix); err != nil {
		t.Fatal(err)
	}
	bad := write("bad.csv", "Date,USD\n2026-01-07,1.1\n2026-01-08,one\n")
	if _, _, err := cli("fx", "import", bad); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("bad file: %v, want an error naming line 3", err)
	}
	if _, _, err := cli("fx", "import"); err == nil {
		t.Fatal("no FILE accepted")
	}
	st, err := postgres.Open(ctx, dbURL, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rates, err := st.FXRates(ctx, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rates {
		got[r.Day.Format(time.DateOnly)+r.Currency] = r.PerEUR
	}
	if len(got) != 5 || got["2026-01-05usd"] != "1.0930" || got["2026-01-06jpy"] != "160.00" || got["2026-01-07usd"] != "" {
		t.Fatalf("stored %v", got)
	}
}
