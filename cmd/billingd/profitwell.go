package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/profitwell"
	"github.com/prometheus/client_golang/prometheus"
)

// profitwellEnv: the ProfitWell commands' variables.
var profitwellEnv = append(slices.Clone(dbEnv), "PROFITWELL_API_TOKEN", "PROFITWELL_ALIAS_KEY", "PROFITWELL_API_BASE", "PROFITWELL_MAX_ATTEMPTS")

func profitwellWorkerCommand() *command {
	return &command{
		name:    "profitwell worker",
		summary: "deliver the ProfitWell outbox until stopped (serve runs one too when a token is set)",
		env:     profitwellEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if err := e.needProfitWellToken("profitwell worker"); err != nil {
					return err
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error {
					if err := e.checkAliasKey(ctx, st); err != nil {
						return err
					}
					return e.profitWellWorker(st, nil).Run(ctx)
				})
			}
		},
	}
}

func profitwellStatusCommand() *command {
	return &command{
		name:    "profitwell status",
		summary: "the ProfitWell queue: pending rows, oldest pending age, every dead row with its error",
		env:     dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error { return profitWellStatus(ctx, st, e.stdout) })
			}
		},
	}
}

func profitwellRetryCommand() *command {
	return &command{
		name:    "profitwell retry",
		args:    "[ID]",
		summary: "re-queue dead-lettered ProfitWell rows: all, or one by outbox ID",
		env:     dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			all := fs.Bool("all", false, "re-queue every dead row")
			return func(ctx context.Context, e *env, args []string) error {
				id, err := retryTarget(*all, args)
				if err != nil {
					return err
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error {
					n, err := st.OutboxRetryDead(ctx, billing.OutboxProfitWell, id)
					if errors.Is(err, billing.ErrNotFound) {
						return fmt.Errorf("profitwell retry: no dead ProfitWell row with ID %d", id)
					}
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "re-queued %d dead ProfitWell row(s)\n", n)
					return nil
				})
			}
		},
	}
}

// retryTarget reads the target of a retry command: --all (0) or one
// outbox row ID.
func retryTarget(all bool, args []string) (int64, error) {
	switch {
	case all && len(args) == 0:
		return 0, nil
	case !all && len(args) == 1:
		n, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || n < 1 {
			return 0, usageError{fmt.Sprintf("%q is not an outbox row ID", args[0])}
		}
		return n, nil
	}
	return 0, usageError{"needs --all or one outbox row ID"}
}

func profitwellBackfillCommand() *command {
	return &command{
		name:    "profitwell backfill",
		summary: "queue and send every live subscription's current state (idempotent), with progress and a summary",
		env:     profitwellEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			dry := fs.Bool("dry-run", false, "count what would be sent; change nothing")
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if !*dry {
					if err := e.needProfitWellToken("profitwell backfill"); err != nil {
						return err
					}
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error {
					if !*dry {
						if err := e.checkAliasKey(ctx, st); err != nil {
							return err
						}
					}
					return e.profitWellBackfill(ctx, st, *dry)
				})
			}
		},
	}
}

// checkAliasKey refuses to send with another alias key than the one
// ProfitWell's aliases were made with: the receiver would see every
// customer as new (README "Secrets and key rotation").
func (e *env) checkAliasKey(ctx context.Context, st *postgres.Store) error {
	return st.CheckProfitWellAliasKey(ctx, []byte(e.cfg.ProfitWellAliasKey))
}

func (e *env) needProfitWellToken(cmd string) error {
	if e.cfg.ProfitWellToken == "" {
		return fmt.Errorf("%s: PROFITWELL_API_TOKEN is not set", cmd)
	}
	return nil
}

// profitWellWorker builds the outbox worker from the configuration.
func (e *env) profitWellWorker(st *postgres.Store, m *profitwell.Metrics) *profitwell.Worker {
	return &profitwell.Worker{
		Queue: st,
		Client: profitwell.NewClient(profitwell.ClientOptions{Base: e.cfg.ProfitWellBase, Token: e.cfg.ProfitWellToken,
			// ProfitWell's limit is per account: share it with every replica.
			Limiter: profitwell.NewSharedLimiter(profitwell.DefaultLimit, profitwell.DefaultWindow, st)}),
		AliasKey:    []byte(e.cfg.ProfitWellAliasKey),
		MaxAttempts: e.cfg.ProfitWellMaxAttempts,
		Log:         e.log,
		Metrics:     m,
	}
}

// startProfitWell registers the ProfitWell and outbox metrics on reg and,
// when a token is configured, runs the worker until the returned stop is
// called (stop waits for the batch in hand to be recorded). Without a
// token the worker is off and rows wait in the outbox.
func (e *env) startProfitWell(ctx context.Context, st *postgres.Store, reg prometheus.Registerer) (stop func()) {
	m := profitwell.NewMetrics(reg, st)
	if e.cfg.ProfitWellToken == "" {
		e.log.Info("profitwell sync off: PROFITWELL_API_TOKEN is not set; outbox rows wait")
		return func() {}
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.profitWellWorker(st, m).Run(wctx)
	}()
	return func() { cancel(); <-done }
}

// profitWellBackfill queues every live subscription's current state, then
// (unless dry) delivers the queue, printing progress and a summary.
func (e *env) profitWellBackfill(ctx context.Context, st *postgres.Store, dry bool) error {
	last := time.Now()
	sum, err := st.ProfitWellBackfill(ctx, time.Now(), dry, func(done, total int) {
		if done == total || time.Since(last) > 2*time.Second {
			last = time.Now()
			fmt.Fprintf(e.stdout, "queued customers: %d/%d\n", done, total)
		}
	})
	if err != nil {
		return fmt.Errorf("profitwell backfill: %w", err)
	}
	verb := "queued"
	if dry {
		verb = "would queue"
	}
	fmt.Fprintf(e.stdout, "%s %s for %d subscriptions of %d customers (%d need nothing)\n",
		verb, rowCounts(sum.Rows), sum.Subscriptions, sum.Customers, sum.Skipped)
	if dry {
		return nil
	}
	w := e.profitWellWorker(st, nil)
	for {
		n, err := w.RunOnce(ctx)
		if err != nil {
			return fmt.Errorf("profitwell backfill: %w", err)
		}
		stats, err := st.OutboxStats(ctx, billing.OutboxProfitWell)
		if err != nil {
			return fmt.Errorf("profitwell backfill: %w", err)
		}
		if stats.Pending == 0 {
			fmt.Fprintf(e.stdout, "done: nothing pending, %d dead (see billingd profitwell retry)\n", stats.Dead)
			if stats.Dead > 0 {
				return fmt.Errorf("profitwell backfill: %d row(s) dead-lettered", stats.Dead)
			}
			return nil
		}
		if time.Since(last) > 2*time.Second {
			last = time.Now()
			fmt.Fprintf(e.stdout, "sending: %d pending, %d dead\n", stats.Pending, stats.Dead)
		}
		if n == 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("profitwell backfill: interrupted with %d row(s) pending (they stay queued)", stats.Pending)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// profitWellStatus prints the queue and every dead row (IDs, action,
// attempts, last HTTP status and error summary; never the payload).
func profitWellStatus(ctx context.Context, st *postgres.Store, out io.Writer) error {
	stats, err := st.OutboxStats(ctx, billing.OutboxProfitWell)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "pending: %d (oldest %s)\ndead: %d\n", stats.Pending, stats.OldestPending.Round(time.Second), stats.Dead)
	if stats.Dead == 0 {
		return nil
	}
	dead, err := st.OutboxRows(ctx, billing.OutboxProfitWell, "dead")
	if err != nil {
		return err
	}
	if err := writeOutboxRows(out, dead); err != nil {
		return err
	}
	fmt.Fprintln(out, "re-queue with: billingd profitwell retry --all (or one ID)")
	return nil
}

func rowCounts(m map[string]int) string {
	if len(m) == 0 {
		return "0 rows"
	}
	keys := make([]string, 0, len(m))
	total := 0
	for k, n := range m {
		keys = append(keys, k)
		total += n
	}
	sort.Strings(keys)
	s := fmt.Sprintf("%d rows (", total)
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", k, m[k])
	}
	return s + ")"
}
