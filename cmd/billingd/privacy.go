package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/billingd/billingd/internal/privacy"
)

// inventoryDoc is the JSON shape of `billingd privacy inventory --format json`.
type inventoryDoc struct {
	Tables     []privacy.Table     `json:"tables"`
	Processors []privacy.Processor `json:"processors"`
}

func privacyInventoryCommand() *command {
	return &command{
		name:    "privacy inventory",
		summary: "every table and column billingd stores and what Stripe and ProfitWell receive (no database needed)",
		setup: func(fs *flag.FlagSet) runFunc {
			format := fs.String("format", "table", "output `table|json`")
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				return e.privacyInventory(*format)
			}
		},
	}
}

// privacyInventory prints the inventory compiled into the binary: it needs
// no database, so an auditor can run it anywhere.
func (e *env) privacyInventory(format string) error {
	doc := inventoryDoc{Tables: privacy.Tables(), Processors: privacy.Processors()}
	switch format {
	case "json":
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return fmt.Errorf("write inventory: %w", err)
		}
		return nil
	case "table":
		if err := writeInventoryTable(e.stdout, doc); err != nil {
			return fmt.Errorf("write inventory: %w", err)
		}
		return nil
	}
	return usageError{fmt.Sprintf("--format %q: want table or json", format)}
}

// writeInventoryTable prints one block per table (its purpose, retention and
// erasure rule, then its columns) and then what each processor receives.
func writeInventoryTable(out io.Writer, doc inventoryDoc) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "WHAT BILLINGD STORES (categories: identifier, billing_fact, operational, merchant_catalog; no personal data)")
	for _, t := range doc.Tables {
		fmt.Fprintf(w, "\n%s: %s\n", t.Name, t.Purpose)
		fmt.Fprintf(w, "  retention: %s\n", t.Retention)
		fmt.Fprintf(w, "  on erasure: %s\n", t.OnErasure)
		if t.Export == "-" {
			fmt.Fprintf(w, "  subject access export: not exported: %s\n", t.NotExported)
		} else {
			fmt.Fprintf(w, "  subject access export: section %q\n", t.Export)
		}
		fmt.Fprintln(w, "  COLUMN\tCATEGORY\tPURPOSE")
		for _, c := range t.Columns {
			fmt.Fprintf(w, "  %s\t%s\t%s\n", c.Name, c.Category, c.Purpose)
		}
	}
	fmt.Fprintln(w, "\nWHAT PROCESSORS RECEIVE")
	for _, p := range doc.Processors {
		fmt.Fprintf(w, "\n%s: %s\n", p.Name, p.Role)
		if len(p.Receives) == 0 {
			fmt.Fprintln(w, "  receives: nothing")
		} else {
			fmt.Fprintln(w, "  FIELD\tCONTENT")
			for _, f := range p.Receives {
				fmt.Fprintf(w, "  %s\t%s\n", f.Name, f.Content)
			}
		}
		fmt.Fprintf(w, "  calls: %s\n", strings.Join(p.Calls, "; "))
		fmt.Fprintf(w, "  never: %s\n", p.Never)
	}
	return w.Flush()
}
