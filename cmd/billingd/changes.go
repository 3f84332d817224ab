package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/billingd/billingd/appwebhook"
	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/prometheus/client_golang/prometheus"
)

// The change feed's producer runs in every serve; the feed lock lets one
// pass at a time write (internal/postgres/changes.go). With APP_WEBHOOK_URL
// set, each entry is also queued as an outbound webhook and this process's
// worker delivers the queue with the other replicas' (appwebhook).

// feedPoll is how often an idle producer looks for dirty accounts: the
// feed's latency floor. A pass that finds nothing costs three statements.
const feedPoll = 100 * time.Millisecond

// changeMarksClearEvery is how often a replica without the feed clears
// the marks that were already there at its previous clearing.
const changeMarksClearEvery = 10 * time.Minute

// renderAnswer is the feed's renderer: the entitlement endpoint's body.
func renderAnswer(e billing.Entitlement) []byte { return api.RenderEntitlement(e).Body }

// feedMetrics are the producer's counters.
type feedMetrics struct {
	entries  prometheus.Counter
	failures prometheus.Counter
	purged   prometheus.Counter
}

func newFeedMetrics(reg prometheus.Registerer) *feedMetrics {
	m := &feedMetrics{
		entries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "billingd_changes_entries_total", Help: "Change feed entries this replica's producer appended (one per change of an account's entitlement answer).",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "billingd_changes_producer_failures_total", Help: "Change feed producer passes that failed (retried).",
		}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "billingd_changes_purged_total", Help: "Change feed entries deleted after CHANGES_RETENTION.",
		}),
	}
	reg.MustRegister(m.entries, m.failures, m.purged)
	return m
}

// startChangeFeed runs the producer (and the app webhook worker when
// configured) until the returned stop is called.
func (e *env) startChangeFeed(ctx context.Context, st *postgres.Store, reg prometheus.Registerer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	m := newFeedMetrics(reg)
	if !e.cfg.ChangeFeed {
		// The write paths still mark accounts (an insert beside their cache
		// invalidation, measured at no cost); with no producer here the
		// marks are cleared once they are a clearing interval old, which
		// leaves those of a replica that runs the feed to its producer.
		e.log.Info("change feed off: CHANGE_FEED and APP_WEBHOOK_URL are not set; GET /v1/changes answers 503")
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seen int64
			for {
				cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
				next, err := st.ClearChangeMarks(cctx, seen)
				ccancel()
				if err == nil {
					seen = next
				} else if ctx.Err() == nil {
					e.log.Warn("clearing change feed marks failed", "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(changeMarksClearEvery):
				}
			}
		}()
		return func() { cancel(); wg.Wait() }
	}
	// Marks are not kept while the feed is off: the first pass after a
	// start recomputes every account, so a change made meanwhile still
	// gets its entry (answers equal to the last entry give none).
	mctx, mcancel := context.WithTimeout(ctx, 30*time.Second)
	defer mcancel()
	if err := st.MarkAllAccounts(mctx); err != nil {
		e.log.Warn("change feed: marking every account at start failed", "err", err)
	}
	outbound := e.cfg.AppWebhookURL != ""
	wake := make(chan struct{}, 1)
	p := postgres.ChangeProducer{Render: renderAnswer, Grace: e.cfg.EntitlementGrace, Outbound: outbound}
	wg.Add(1)
	go func() {
		defer wg.Done()
		runProducer(ctx, st, p, e.cfg.ChangesRetention, m, wake, e.log)
	}()
	if outbound {
		w := &appwebhook.Worker{Queue: st, URL: e.cfg.AppWebhookURL, Secret: []byte(e.cfg.AppWebhookSecret),
			Wake: wake, Log: e.log, Metrics: appwebhook.NewMetrics(reg)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = w.Run(ctx)
		}()
	} else {
		e.log.Info("app webhooks off: APP_WEBHOOK_URL is not set; the change feed (GET /v1/changes) still runs")
	}
	return func() { cancel(); wg.Wait() }
}

// runProducer runs producer passes until ctx ends: at once again while a
// pass took a full batch, else every feedPoll; purges entries older than
// retention every minute.
func runProducer(ctx context.Context, st *postgres.Store, p postgres.ChangeProducer, retention time.Duration,
	m *feedMetrics, wake chan<- struct{}, log *slog.Logger) {
	var lastPurge time.Time
	failures := 0
	for {
		if time.Since(lastPurge) > time.Minute {
			lastPurge = time.Now()
			if n, err := st.PurgeChanges(ctx, retention); err != nil && ctx.Err() == nil {
				log.Warn("change feed purge failed", "err", err)
			} else if n > 0 {
				m.purged.Add(float64(n))
			}
		}
		res, err := st.ProduceChanges(ctx, p)
		if ctx.Err() != nil {
			return
		}
		wait := feedPoll
		switch {
		case err != nil:
			failures++
			m.failures.Inc()
			wait = min(feedPoll<<min(failures, 8), 30*time.Second)
			log.Warn("change feed producer failed", "err", err, "retry_in", wait.String())
		default:
			failures = 0
			if res.Entries > 0 {
				m.entries.Add(float64(res.Entries))
				if p.Outbound {
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			}
			if res.More {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func appWebhooksStatusCommand() *command {
	return &command{
		name:    "app-webhooks status",
		summary: "the outbound app webhook queue and change feed: pending, oldest pending age, failing and dead webhooks with their errors",
		env:     dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error { return appWebhooksStatus(ctx, st, e.stdout) })
			}
		},
	}
}

func appWebhooksRetryCommand() *command {
	return &command{
		name:    "app-webhooks retry",
		args:    "[ID]",
		summary: "re-queue dead-lettered app webhooks (all, or one by outbox ID); serve's worker sends them",
		env:     dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			all := fs.Bool("all", false, "re-queue every dead app webhook")
			return func(ctx context.Context, e *env, args []string) error {
				id, err := retryTarget(*all, args)
				if err != nil {
					return err
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error {
					n, err := st.AppWebhookRetryDead(ctx, id)
					if errors.Is(err, billing.ErrNotFound) {
						return fmt.Errorf("app-webhooks retry: no dead app webhook with ID %d (see billingd app-webhooks status)", id)
					}
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "re-queued %d dead app webhook(s)\n", n)
					if e.cfg.AppWebhookURL == "" {
						fmt.Fprintln(e.stdout, "note: APP_WEBHOOK_URL is not set here; serve sends them once it is set there")
					}
					return nil
				})
			}
		},
	}
}

// appWebhooksStatus prints the feed's extent, the queue, the pending
// webhooks that failed at least once and every dead one (outbox ID,
// attempts, last HTTP status, error summary; never a payload).
func appWebhooksStatus(ctx context.Context, st *postgres.Store, out io.Writer) error {
	fs, err := st.ChangeFeedStats(ctx)
	if err != nil {
		return err
	}
	oldest := "-"
	if fs.LastSeq > 0 {
		oldest = fs.OldestKept.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(out, "change feed: last cursor %d, oldest entry kept %s, accounts waiting for the producer %d\n", fs.LastSeq, oldest, fs.Dirty)
	return outboxStatus(ctx, st, out, billing.OutboxAppWebhook, outboxStatusText{
		failing: "pending webhooks that failed (retried with backoff for 3 days, then dead):",
		dead:    "dead webhooks (the app did not accept them for 3 days; fix the endpoint, then retry):",
		retry:   "billingd app-webhooks retry --all (or one ID)",
	})
}
