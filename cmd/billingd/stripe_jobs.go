package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/postgres"
)

// The Stripe jobs of erasures (outbox kind "stripe": cancel subscriptions,
// delete customers) are worked by serve when STRIPE_API_KEY is set. These
// commands show the queue and re-queue jobs Stripe refused, e.g. once the
// cause is fixed in Stripe.

func stripeJobsStatusCommand() *command {
	return &command{
		name:    "stripe-jobs status",
		summary: "the Stripe job queue of erasures: pending jobs, oldest pending age, failing and dead jobs with their errors",
		env:     dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error { return stripeJobsStatus(ctx, st, e.stdout) })
			}
		},
	}
}

func stripeJobsRetryCommand() *command {
	return &command{
		name:    "stripe-jobs retry",
		args:    "[ID]",
		summary: "re-queue dead Stripe jobs (all, or one by outbox ID); serve's worker sends them",
		env:     dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			all := fs.Bool("all", false, "re-queue every dead job")
			return func(ctx context.Context, e *env, args []string) error {
				id, err := retryTarget(*all, args)
				if err != nil {
					return err
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error {
					n, err := st.OutboxRetryDead(ctx, billing.OutboxStripe, id)
					if errors.Is(err, billing.ErrNotFound) {
						return fmt.Errorf("stripe-jobs retry: no dead Stripe job with ID %d (see billingd stripe-jobs status)", id)
					}
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "re-queued %d dead Stripe job(s)\n", n)
					if e.cfg.StripeAPIKey == "" {
						fmt.Fprintln(e.stdout, "note: STRIPE_API_KEY is not set here; serve sends them once it is set there")
					}
					return nil
				})
			}
		},
	}
}

// stripeJobsStatus prints the queue, then the pending jobs that failed at
// least once and every dead job: outbox ID, action, attempts, last HTTP
// status and error summary (never the payload, which holds the Stripe ID).
func stripeJobsStatus(ctx context.Context, st *postgres.Store, out io.Writer) error {
	return outboxStatus(ctx, st, out, billing.OutboxStripe, outboxStatusText{
		failing: "pending jobs that failed (retried with backoff up to an hour; a 401 or 403 means the key):",
		dead:    "dead jobs (Stripe refused them; fix the cause, then retry):",
		retry:   "billingd stripe-jobs retry --all (or one ID)",
	})
}

// outboxStatusText is what an outbox status command says of its kind.
type outboxStatusText struct{ failing, dead, retry string }

// outboxStatus prints one outbox kind's queue, then its pending rows that
// failed at least once and every dead row: outbox ID, action, attempts,
// last HTTP status and error summary (never the payload).
func outboxStatus(ctx context.Context, st *postgres.Store, out io.Writer, kind string, text outboxStatusText) error {
	stats, err := st.OutboxStats(ctx, kind)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "pending: %d (oldest %s)\ndead: %d\n", stats.Pending, stats.OldestPending.Round(time.Second), stats.Dead)
	pending, err := st.OutboxRows(ctx, kind, "pending")
	if err != nil {
		return err
	}
	var failing []postgres.OutboxRow
	for _, r := range pending {
		if r.LastError != nil {
			failing = append(failing, r)
		}
	}
	if len(failing) > 0 {
		fmt.Fprintln(out, "\n"+text.failing)
		if err := writeOutboxRows(out, failing); err != nil {
			return err
		}
	}
	if stats.Dead == 0 {
		return nil
	}
	dead, err := st.OutboxRows(ctx, kind, "dead")
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\n"+text.dead)
	if err := writeOutboxRows(out, dead); err != nil {
		return err
	}
	fmt.Fprintln(out, "re-queue with: "+text.retry)
	return nil
}

func writeOutboxRows(out io.Writer, rows []postgres.OutboxRow) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tACTION\tATTEMPTS\tSTATUS\tCREATED\tERROR")
	for _, r := range rows {
		status, msg := "-", "-"
		if r.LastStatus != nil {
			status = strconv.Itoa(*r.LastStatus)
		}
		if r.LastError != nil {
			msg = *r.LastError
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", r.ID, r.Action, r.Attempts, status, r.CreatedAt.UTC().Format(time.RFC3339), msg)
	}
	return tw.Flush()
}
