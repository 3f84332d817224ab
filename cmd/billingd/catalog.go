package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/postgres"
)

// maxCatalogFile bounds a catalog file, as PUT /v1/catalog bounds its body.
const maxCatalogFile = 4 << 20

func catalogApplyCommand() *command {
	return &command{
		name:    "catalog apply",
		args:    "FILE",
		summary: "replace the features catalog with a JSON file (- reads stdin); every replica's answers change within 1 s",
		about: "The file is the document PUT /v1/catalog takes: features, products and prices (see README, \"Entitlement features\").\n" +
			"An invalid file is refused with the JSON path of its first error and changes nothing.",
		env: dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) != 1 {
					return usageError{"needs the catalog file (or - for stdin)"}
				}
				raw, err := readCatalogFile(args[0])
				if err != nil {
					return err
				}
				c, err := billing.ParseCatalog(raw)
				if err != nil {
					return fmt.Errorf("catalog apply: %s: %w", args[0], err)
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error {
					if err := st.CatalogPut(ctx, c, "cli"); err != nil {
						return fmt.Errorf("catalog apply: %w", err)
					}
					fmt.Fprintf(e.stdout, "catalog applied: %d features, %d products, %d prices\n", len(c.Features), len(c.Products), len(c.Prices))
					return nil
				})
			}
		},
	}
}

func catalogShowCommand() *command {
	return &command{
		name:    "catalog show",
		summary: "print the features catalog as JSON (what catalog apply takes)",
		env:     dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) != 0 {
					return usageError{"takes no arguments"}
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error {
					rec, err := st.Catalog(ctx)
					if err != nil {
						return fmt.Errorf("catalog show: %w", err)
					}
					_, err = fmt.Fprintf(e.stdout, "%s\n", rec.Catalog.Document())
					return err
				})
			}
		},
	}
}

// readCatalogFile reads a catalog file, or stdin for "-", bounded.
func readCatalogFile(name string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("catalog apply: %w", err)
		}
		defer f.Close()
		r = f
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxCatalogFile+1))
	if err != nil {
		return nil, fmt.Errorf("catalog apply: read %s: %w", name, err)
	}
	if len(raw) > maxCatalogFile {
		return nil, errors.New("catalog apply: the file is larger than 4 MiB")
	}
	return raw, nil
}
