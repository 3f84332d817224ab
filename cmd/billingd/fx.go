package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/billingd/billingd/billing"
)

func fxImportCommand() *command {
	return &command{
		name:    "fx import",
		args:    "FILE",
		summary: "import daily exchange rates from an ECB reference-rate CSV file (eurofxref.csv or eurofxref-hist.csv; no network)",
		about: "FILE is the European Central Bank's reference-rate CSV: a header \"Date,USD,JPY,...\" and one row per day\n" +
			"of units per 1 EUR (\"N/A\" for none). A rate already stored for a day is replaced. All or nothing:\n" +
			"a malformed file changes nothing and names its line. \"-\" reads standard input. The rates convert\n" +
			"revenue into REPORTING_CURRENCY (GET /v1/metrics/revenue?currency=reporting).",
		env: dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) != 1 {
					return fxImportCommand().usageErr("want one FILE")
				}
				return e.fxImport(ctx, args[0])
			}
		},
	}
}

// fxImport runs `billingd fx import FILE`.
func (e *env) fxImport(ctx context.Context, path string) error {
	f := os.Stdin
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return fmt.Errorf("fx import: %w", err)
		}
		defer f.Close()
	}
	rates, err := billing.ParseECBRates(f)
	if err != nil {
		return fmt.Errorf("fx import %s: %w", path, err)
	}
	db, err := e.openDatabase(ctx)
	if err != nil {
		return err
	}
	defer db.close(ctx)
	n, err := db.store.PutFXRates(ctx, rates, "import")
	if err != nil {
		return fmt.Errorf("fx import %s: %w", path, err)
	}
	first, last := rates[0].Day, rates[0].Day
	curs := map[string]bool{}
	for _, r := range rates {
		if r.Day.Before(first) {
			first = r.Day
		}
		if r.Day.After(last) {
			last = r.Day
		}
		curs[r.Currency] = true
	}
	fmt.Fprintf(e.stdout, "imported %d rates of %d currencies from %s to %s\n", n, len(curs),
		first.Format(time.DateOnly), last.Format(time.DateOnly))
	return nil
}
