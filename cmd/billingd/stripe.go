package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/internal/reconcile"
	"github.com/prometheus/client_golang/prometheus"
)

// stripeCmd runs `billingd stripe backfill` and `billingd stripe reconcile
// [--since DURATION] [--fix]`: rebuild or repair state from the Stripe API
// (STRIPE_API_KEY, STRIPE_API_BASE). Both are safe while servers run: they
// write through the webhook path, one transaction per object, and hold the
// Stripe sync lock so only one runs at a time.
func (e *env) stripeCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"stripe needs backfill or reconcile"}
	}
	var opt reconcile.Options
	switch args[0] {
	case "backfill":
		if len(args) > 1 {
			return usageError{fmt.Sprintf("stripe backfill takes no arguments, got %q", args[1])}
		}
	case "reconcile":
		fs := flag.NewFlagSet("stripe reconcile", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.DurationVar(&opt.Since, "since", 0, "only subscriptions Stripe created in this last duration")
		fs.BoolVar(&opt.Fix, "fix", false, "apply Stripe's truth")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{"stripe reconcile: " + err.Error()}
		}
		if fs.NArg() > 0 {
			return usageError{fmt.Sprintf("stripe reconcile: unexpected argument %q", fs.Arg(0))}
		}
		if opt.Since < 0 {
			return usageError{"stripe reconcile: --since must be positive"}
		}
	default:
		return usageError{fmt.Sprintf("unknown stripe command %q", args[0])}
	}
	client, err := e.stripeClient()
	if err != nil {
		return err
	}
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
		return fmt.Errorf("stripe %s: schema version %d, need %d: run billingd migrate up first", args[0], v, postgres.RequiredSchemaVersion())
	}
	// Objects go through the event path: its tombstone checks need the
	// erasure keys that made them.
	if err := db.store.PrepareKeys(ctx); err != nil {
		return err
	}
	s := &reconcile.Syncer{Client: client, Store: db.store, Log: e.log, Progress: e.stderr}
	if args[0] == "backfill" {
		return e.backfill(ctx, s)
	}
	rep, err := s.Reconcile(ctx, opt)
	if err != nil {
		return err
	}
	if err := rep.WriteTable(e.stdout); err != nil {
		return err
	}
	if opt.Fix && len(rep.Unfixed()) > 0 {
		return fmt.Errorf("stripe reconcile: %d of %d differences not fixed (see FIX column); the rest were applied", len(rep.Unfixed()), len(rep.Drift))
	}
	return nil
}

// stripeClient builds the Stripe API client from the configuration.
func (e *env) stripeClient() (*reconcile.Client, error) {
	if e.cfg.StripeAPIKey == "" {
		return nil, errors.New("STRIPE_API_KEY is not set: a secret or restricted key with read access to customers and subscriptions")
	}
	return reconcile.NewClient(reconcile.ClientConfig{Key: e.cfg.StripeAPIKey, Base: e.cfg.StripeAPIBase})
}

func (e *env) backfill(ctx context.Context, s *reconcile.Syncer) error {
	sum, err := s.Backfill(ctx)
	for _, f := range sum.Failures {
		fmt.Fprintf(e.stdout, "FAILED %s %s: %s\n", f.Object, f.ID, f.Err)
	}
	resumed := ""
	if sum.Resumed {
		resumed = " (resumed)"
	}
	fmt.Fprintf(e.stdout, "backfill%s: customers %d listed, %d applied, %d unchanged, %d skipped; subscriptions %d listed, %d applied, %d unchanged, %d skipped; %d failed in %s\n",
		resumed, sum.Customers.Listed, sum.Customers.Applied, sum.Customers.Unchanged, sum.Customers.Skipped,
		sum.Subscriptions.Listed, sum.Subscriptions.Applied, sum.Subscriptions.Unchanged, sum.Subscriptions.Skipped,
		len(sum.Failures), sum.Elapsed.Round(time.Millisecond))
	return err
}

// startReconcile runs the scheduled reconcile (RECONCILE_INTERVAL) until
// the returned stop is called; a no-op when the interval is 0.
func (e *env) startReconcile(ctx context.Context, st *postgres.Store, reg prometheus.Registerer) (func(), error) {
	if e.cfg.ReconcileInterval <= 0 {
		return func() {}, nil
	}
	client, err := e.stripeClient()
	if err != nil {
		return nil, err
	}
	s := &reconcile.Syncer{Client: client, Store: st, Log: e.log}
	m := reconcile.NewMetrics(reg)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Schedule(ctx, e.cfg.ReconcileInterval, m)
	}()
	e.log.Info("scheduled reconcile with Stripe", "interval", e.cfg.ReconcileInterval.String())
	return func() { cancel(); <-done }, nil
}
