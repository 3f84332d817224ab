package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/billingd/billingd/internal/postgres"
)

func metricsRebuildCommand() *command {
	return &command{
		name:    "metrics rebuild",
		summary: "re-derive the revenue ledger and daily rollup from the state history (safe while serving)",
		env:     dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				return e.metricsRebuild(ctx)
			}
		},
	}
}

// metricsRebuild runs `billingd metrics rebuild`: re-derive the whole revenue
// ledger (mrr_movements, subscription_activity, revenue_daily) from the state history,
// e.g. after a change of the MRR formulas. It is safe while servers run:
// each customer is rebuilt in its own short transaction under the
// customer's row lock, the one the event path takes, so an event for that
// customer waits for the rebuild (or the rebuild for it) and neither loses
// the other's versions.
func (e *env) metricsRebuild(ctx context.Context) error {
	db, err := e.openDatabase(ctx)
	if err != nil {
		return err
	}
	defer db.close(ctx)
	v, dirty, err := db.store.SchemaVersion()
	if err != nil {
		return err
	}
	if dirty || v < postgres.RequiredSchemaVersion() {
		return fmt.Errorf("metrics rebuild: schema version %d, need %d: run billingd migrate up first", v, postgres.RequiredSchemaVersion())
	}
	n, err := rebuildLedger(ctx, db.store, func(done int) {
		e.log.Info("metrics rebuild progress", "customers_done", done)
	})
	if err != nil {
		return fmt.Errorf("metrics rebuild after %d customers: %w", n, err)
	}
	// The per-customer rebuilds kept the daily rollup in step; recomputing
	// it whole also drops what no longer has a ledger behind it.
	if err := db.store.RebuildRevenueRollup(ctx); err != nil {
		return fmt.Errorf("metrics rebuild: %w", err)
	}
	if _, err := db.store.CompactRevenueRollup(ctx); err != nil {
		return fmt.Errorf("metrics rebuild: %w", err)
	}
	fmt.Fprintf(e.stdout, "rebuilt the revenue ledger of %d customers\n", n)
	return nil
}

// rebuildLedger walks every customer with history in pages and rebuilds
// each; progress is called every 1,000 customers.
func rebuildLedger(ctx context.Context, st *postgres.Store, progress func(done int)) (int, error) {
	const page = 500
	done, after := 0, ""
	for {
		refs, err := st.LedgerCustomers(ctx, after, page)
		if err != nil {
			return done, err
		}
		for _, ref := range refs {
			if err := ctx.Err(); err != nil {
				return done, err
			}
			if err := st.RebuildCustomerLedger(ctx, ref); err != nil {
				return done, err
			}
			done++
			if done%1000 == 0 && progress != nil {
				progress(done)
			}
		}
		if len(refs) < page {
			return done, nil
		}
		after = refs[len(refs)-1]
	}
}
