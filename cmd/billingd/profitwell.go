package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/profitwell"
	"github.com/prometheus/client_golang/prometheus"
)

// profitwellCmd: billingd profitwell worker | status | retry --all|ID | backfill [--dry-run].
func (e *env) profitwellCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"profitwell needs worker, status, retry or backfill"}
	}
	var run func(st *postgres.Store) error
	switch args[0] {
	case "worker":
		if len(args) != 1 {
			return usageError{"profitwell worker takes no arguments"}
		}
		if err := e.needProfitWellToken("profitwell worker"); err != nil {
			return err
		}
		run = func(st *postgres.Store) error { return e.profitWellWorker(st, nil).Run(ctx) }
	case "status":
		if len(args) != 1 {
			return usageError{"profitwell status takes no arguments"}
		}
		run = func(st *postgres.Store) error { return profitWellStatus(ctx, st, e.stdout) }
	case "retry":
		fs := flag.NewFlagSet("profitwell retry", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		all := fs.Bool("all", false, "re-queue every dead row")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{"profitwell retry: " + err.Error()}
		}
		var id int64
		switch {
		case *all && fs.NArg() == 0:
		case !*all && fs.NArg() == 1:
			n, err := strconv.ParseInt(fs.Arg(0), 10, 64)
			if err != nil || n < 1 {
				return usageError{fmt.Sprintf("profitwell retry: %q is not an outbox row ID", fs.Arg(0))}
			}
			id = n
		default:
			return usageError{"profitwell retry needs --all or one outbox row ID"}
		}
		run = func(st *postgres.Store) error {
			n, err := st.OutboxRetryDead(ctx, billing.OutboxProfitWell, id)
			if err != nil {
				if errors.Is(err, billing.ErrNotFound) {
					return fmt.Errorf("profitwell retry: no dead ProfitWell row with ID %d", id)
				}
				return err
			}
			fmt.Fprintf(e.stdout, "re-queued %d dead ProfitWell row(s)\n", n)
			return nil
		}
	case "backfill":
		fs := flag.NewFlagSet("profitwell backfill", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		dry := fs.Bool("dry-run", false, "count what would be sent; change nothing")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{"profitwell backfill: " + err.Error()}
		}
		if fs.NArg() > 0 {
			return usageError{fmt.Sprintf("profitwell backfill: unexpected argument %q", fs.Arg(0))}
		}
		if !*dry {
			if err := e.needProfitWellToken("profitwell backfill"); err != nil {
				return err
			}
		}
		run = func(st *postgres.Store) error { return e.profitWellBackfill(ctx, st, *dry) }
	default:
		return usageError{fmt.Sprintf("unknown profitwell command %q", args[0])}
	}
	db, err := e.openDatabase(ctx)
	if err != nil {
		return err
	}
	defer db.close(ctx)
	// Like serve: a first command on a fresh database must work.
	if err := db.store.MigrateUp(); err != nil {
		return err
	}
	if (args[0] == "worker" || args[0] == "backfill") && e.cfg.ProfitWellToken != "" {
		// About to send aliases: they must be the ones ProfitWell knows.
		if err := db.store.CheckProfitWellAliasKey(ctx, []byte(e.cfg.ProfitWellAliasKey)); err != nil {
			return err
		}
	}
	return run(db.store)
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
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tACTION\tATTEMPTS\tSTATUS\tCREATED\tERROR")
	for _, r := range dead {
		status, msg := "-", "-"
		if r.LastStatus != nil {
			status = strconv.Itoa(*r.LastStatus)
		}
		if r.LastError != nil {
			msg = *r.LastError
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", r.ID, r.Action, r.Attempts, status, r.CreatedAt.UTC().Format(time.RFC3339), msg)
	}
	if err := tw.Flush(); err != nil {
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
