package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/prometheus/client_golang/prometheus"
)

// stripeEnv: the stripe commands' variables.
var stripeEnv = append(slices.Clone(dbEnv), "STRIPE_API_KEY", "STRIPE_API_BASE", "STRIPE_READ_RATE")

func stripeBackfillCommand() *command {
	return &command{
		name:    "stripe backfill",
		summary: "apply every Stripe customer and subscription (all statuses) through the webhook path; parallel, resumable",
		about: `Safe while servers run: it writes through the webhook path and holds the
Stripe sync lock so one backfill or reconcile runs at a time. Each list is
split by creation time into parts walked at once, at most STRIPE_READ_RATE
requests per second (Retry-After honoured); progress (objects, rate, time
left) goes to stderr. Killed, it resumes every part where it stopped. Needs a
key with read access to customers and subscriptions.`,
		env: stripeEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				return e.withStripeSync(ctx, "backfill", func(s *stripeapi.Syncer) error { return e.backfill(ctx, s) })
			}
		},
	}
}

func stripeReconcileCommand() *command {
	return &command{
		name:    "stripe reconcile",
		summary: "report drift between stored state and Stripe as a table; --fix applies Stripe's truth",
		about: `Exit status, as diff's: 0 when nothing differs, 1 when something does
(without --fix) or could not be fixed (with --fix), 2 for a usage mistake.`,
		env: stripeEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			var opt stripeapi.ReconcileOptions
			fs.DurationVar(&opt.Since, "since", 0, "only subscriptions Stripe created in this last `duration` (e.g. 72h)")
			fs.BoolVar(&opt.Fix, "fix", false, "apply Stripe's truth for every difference that can be fixed")
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if opt.Since < 0 {
					return usageError{"--since must be positive"}
				}
				return e.withStripeSync(ctx, "reconcile", func(s *stripeapi.Syncer) error { return e.reconcile(ctx, s, opt) })
			}
		},
	}
}

// withStripeSync checks the key, opens the database (whose schema must be
// current) and runs fn with a syncer over both.
func (e *env) withStripeSync(ctx context.Context, what string, fn func(s *stripeapi.Syncer) error) error {
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
		return fmt.Errorf("stripe %s: schema version %d, need %d: run billingd migrate up first", what, v, postgres.RequiredSchemaVersion())
	}
	// Objects go through the event path: its tombstone checks need the
	// erasure keys that made them.
	if err := db.store.PrepareKeys(ctx); err != nil {
		return err
	}
	e.warnStripeKeyMode(ctx, db.store)
	// Swept checkout events link customers only as webhooks would.
	links, err := db.store.LinkVerifier(ctx, !e.cfg.LinkRequireSignature)
	if err != nil {
		return err
	}
	return fn(&stripeapi.Syncer{Client: client, Store: db.store, Log: e.log, Progress: e.stderr, Links: links})
}

// reconcile runs one reconcile, prints its table and fails (exit 1) when
// it found differences it did not fix: every one without --fix.
func (e *env) reconcile(ctx context.Context, s *stripeapi.Syncer, opt stripeapi.ReconcileOptions) error {
	rep, err := s.Reconcile(ctx, opt)
	if err != nil {
		return err
	}
	if err := rep.WriteTable(e.stdout); err != nil {
		return err
	}
	switch {
	case opt.Fix && len(rep.Unfixed())+len(rep.Failures) > 0:
		return fmt.Errorf("stripe reconcile: %d of %d differences not fixed (see FIX column); the rest were applied",
			len(rep.Unfixed())+len(rep.Failures), rep.Differences())
	case !opt.Fix && rep.Differences() > 0:
		return fmt.Errorf("stripe reconcile: %d differences from Stripe (run with --fix to apply Stripe's truth)", rep.Differences())
	}
	return nil
}

// stripeClient builds the Stripe API client from the configuration.
func (e *env) stripeClient() (*stripeapi.Client, error) {
	if e.cfg.StripeAPIKey == "" {
		return nil, errors.New("STRIPE_API_KEY is not set: a secret or restricted key with read access to customers and subscriptions")
	}
	return stripeapi.New(stripeapi.Config{Key: e.cfg.StripeAPIKey, Base: e.cfg.StripeAPIBase, ReadRate: float64(e.cfg.StripeReadRate)})
}

// backfillParallel is how many parts a backfill walks at once: enough to
// keep rate requests a second going at Stripe's 100-300 ms a page while
// the pages are applied.
func backfillParallel(rate float64) int {
	return min(max(int(rate/2), 2), 64)
}

// backfillGC collects garbage a quarter as often as Go's default unless
// GOGC says otherwise, and at the latest at 384 MiB unless GOMEMLIMIT
// says otherwise. A backfill's live heap is small (the pages in hand: one
// or two per walker, most of the time 10-20 MiB) and every page leaves a
// megabyte or so of garbage, so at GOGC=100 the collector ran all the
// time beside the decoding (billingd's CPU in the bench's first run: 25.4 s
// at 100, 20.7 s at 400). The limit keeps the moments when all fifty
// walkers hold pages at once from growing the heap target with them.
func backfillGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(384 << 20)
	}
}

func (e *env) backfill(ctx context.Context, s *stripeapi.Syncer) error {
	// A backfill is the longest-running command: PPROF_ADDR profiles it
	// as it does a replica.
	stopPprof, err := e.servePprof()
	if err != nil {
		return err
	}
	defer stopPprof()
	s.Parallel = backfillParallel(s.Client.ReadStats().Rate)
	backfillGC()
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
	rs := s.Client.ReadStats()
	rate := 0.0
	if sum.Elapsed > 0 {
		rate = float64(rs.Requests) / sum.Elapsed.Seconds()
	}
	fmt.Fprintf(e.stdout, "stripe requests: %d (%.1f/s of STRIPE_READ_RATE %.0f), %d answered 429\n", rs.Requests, rate, rs.Rate, rs.RateLimited)
	if err != nil {
		return err
	}
	cat, err := s.BackfillCatalog(ctx)
	fmt.Fprintf(e.stdout, "catalog: products %d listed, %d applied; prices %d listed, %d applied; %d failed\n",
		cat.Products.Listed, cat.Products.Applied, cat.Prices.Listed, cat.Prices.Applied, cat.Products.Failed+cat.Prices.Failed)
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
	s := &stripeapi.Syncer{Client: client, Store: st, Log: e.log}
	m := stripeapi.NewReconcileMetrics(reg)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Schedule(ctx, e.cfg.ReconcileInterval, m)
	}()
	e.log.Info("scheduled reconcile with Stripe", "interval", e.cfg.ReconcileInterval.String())
	return func() { cancel(); <-done }, nil
}

func stripeSweepCommand() *command {
	return &command{
		name:    "stripe sweep",
		summary: "apply the events webhooks missed, from Stripe's Events API (30 days), oldest first from the last sweep",
		about: `Lists the event types billingd handles after the newest event the last
sweep applied (without one: the last 72h) and applies each through the
webhook path, where event IDs deduplicate: events a webhook delivered change
nothing. --since re-reads that window whatever the cursor says (at most the
30 days Stripe keeps). Safe while servers run; holds the Stripe sync lock.
Needs a key with read access to events (a restricted key: Events read).
Prints what it found; exit status 1 when some event could not be applied.`,
		env: stripeEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			var opt stripeapi.SweepOptions
			fs.DurationVar(&opt.Since, "since", 0, "list the events of this last `duration` (e.g. 240h; at most 720h)")
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if opt.Since < 0 {
					return usageError{"--since must be positive"}
				}
				if opt.Since > billing.EventRetention {
					return usageError{"--since: Stripe keeps events 30 days (720h)"}
				}
				return e.withStripeSync(ctx, "sweep", func(s *stripeapi.Syncer) error { return e.sweep(ctx, s, opt) })
			}
		},
	}
}

func (e *env) sweep(ctx context.Context, s *stripeapi.Syncer, opt stripeapi.SweepOptions) error {
	sum, err := s.Sweep(ctx, opt)
	for _, f := range sum.Failed {
		fmt.Fprintf(e.stdout, "FAILED %s %s: %s\n", f.Object, f.ID, f.Err)
	}
	gap := ""
	if sum.Gap {
		gap = "; WARNING: the last sweep is older than Stripe keeps events, some may be lost (run stripe reconcile --fix)"
	}
	fmt.Fprintf(e.stdout, "sweep: %d events listed, %d recovered (no webhook had delivered them), %d already delivered, %d of an unknown API shape not applied, %d failed in %s%s\n",
		sum.Listed, sum.Recovered, sum.Delivered, sum.Incomplete, len(sum.Failed), sum.Elapsed.Round(time.Millisecond), gap)
	return err
}

// startSweep runs the missed-event sweeper (SWEEP_INTERVAL) until the
// returned stop is called; a no-op when the interval is 0.
func (e *env) startSweep(ctx context.Context, st *postgres.Store, links *billing.LinkVerifier, reg prometheus.Registerer) (func(), error) {
	if e.cfg.SweepInterval <= 0 {
		return func() {}, nil
	}
	client, err := e.stripeClient()
	if err != nil {
		return nil, err
	}
	s := &stripeapi.Syncer{Client: client, Store: st, Log: e.log, Links: links}
	m := stripeapi.NewSweepMetrics(reg)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.SweepSchedule(ctx, e.cfg.SweepInterval, m)
	}()
	e.log.Info("missed-event sweeper", "interval", e.cfg.SweepInterval.String())
	return func() { cancel(); <-done }, nil
}
