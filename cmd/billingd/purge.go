package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/prometheus/client_golang/prometheus"
)

// purgeInterval is how often serve enforces retention. Purges are cheap
// when there is nothing to delete, and one replica purges at a time.
const purgeInterval = time.Hour

// retentionPolicy is the configured retention.
func (e *env) retentionPolicy() postgres.RetentionPolicy {
	return postgres.RetentionPolicy{
		EventRetention:   time.Duration(e.cfg.WebhookEventRetentionDays) * 24 * time.Hour,
		MetricsRetention: time.Duration(e.cfg.MetricsRetentionDays) * 24 * time.Hour,
	}
}

func purgeCommand() *command {
	return &command{
		name:    "purge",
		summary: "enforce retention once, now (serve does it hourly)",
		env:     append(slices.Clone(dbEnv), "WEBHOOK_EVENT_RETENTION_DAYS", "METRICS_RETENTION_DAYS"),
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				return e.purge(ctx)
			}
		},
	}
}

// purge is `billingd purge`: enforce retention once, now.
func (e *env) purge(ctx context.Context) error {
	db, err := e.openDatabase(ctx)
	if err != nil {
		return err
	}
	defer db.close(ctx)
	res, err := db.store.Purge(ctx, e.retentionPolicy())
	if err != nil {
		return err
	}
	if res.Skipped {
		fmt.Fprintln(e.stdout, "purge skipped: another billingd is purging right now")
		return nil
	}
	fmt.Fprintf(e.stdout, "purged %d stripe events; revenue history of %d closed customers (%d subscription versions, %d movements, %d activity rows); %d expired dashboard sessions\n",
		res.Events, res.Customers, res.Versions, res.Movements, res.Activity, res.Sessions)
	return nil
}

// startErasure runs serve's erasure and retention work: the periodic purge
// and, with STRIPE_API_KEY set, the Stripe job worker. The returned stop
// waits for both to finish, so call it before the database closes.
func (e *env) startErasure(ctx context.Context, st *postgres.Store, reg prometheus.Registerer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	purges := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "billingd_retention_purged_rows_total",
		Help: "Rows deleted by the retention purge, by table.",
	}, []string{"table"})
	reg.MustRegister(purges)
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A random first delay spreads replicas that start together.
		wait := time.Minute + rand.N(time.Minute)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = purgeInterval
			res, err := st.Purge(ctx, e.retentionPolicy())
			if err != nil {
				if ctx.Err() == nil {
					e.log.Warn("retention purge failed; next try in an hour", "err", err)
				}
				continue
			}
			for table, n := range map[string]int64{"stripe_events": res.Events, "subscription_versions": res.Versions,
				"mrr_movements": res.Movements, "subscription_activity": res.Activity, "dashboard_sessions": res.Sessions} {
				purges.WithLabelValues(table).Add(float64(n))
			}
			if !res.Skipped && res.Events+res.Versions+res.Movements+res.Activity > 0 {
				e.log.Info("retention purge", "stripe_events", res.Events, "history_customers", res.Customers,
					"subscription_versions", res.Versions, "mrr_movements", res.Movements)
			}
		}
	}()

	reg.MustRegister(stripeapi.NewQueueCollector(st))

	// The outbox retries the jobs durably, so the client itself does not.
	stripe, err := stripeapi.New(stripeapi.Config{Key: e.cfg.StripeAPIKey, Base: e.cfg.StripeAPIBase, ReadRate: float64(e.cfg.StripeReadRate),
		NetworkRetries: stripeapi.NoNetworkRetries, HTTPClient: &http.Client{Timeout: 30 * time.Second}})
	if err != nil { // no STRIPE_API_KEY: the only reason New fails
		e.log.Warn("stripe jobs wait: STRIPE_API_KEY is not set; erasures asking to cancel subscriptions or delete customers in Stripe stay queued until it is")
	} else {
		w := &stripeapi.JobWorker{Store: st, Stripe: stripe, Log: e.log, Events: st}
		w.Register(reg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.Run(ctx)
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
