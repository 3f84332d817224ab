package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/entcache"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/webhooks"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readiness: the database answers and its schema is what this binary knows,
// or newer and compatible with it (a rolling deploy or a rollback keeps old
// replicas ready).
type readiness struct{ store *postgres.Store }

func (r readiness) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := r.store.Ping(ctx); err != nil {
		return errors.New("database unreachable")
	}
	// A ping answers on a read-only database or standby and through a
	// pooler that cannot run parameterised statements: probe a write.
	if err := r.store.CheckWrites(ctx); err != nil {
		return errors.New("database not writable")
	}
	// At the schema this binary knows, or a newer one its migrations say
	// this binary may still use: checked on every probe, so an old replica
	// stops taking traffic once an incompatible migration lands.
	err := r.store.CheckSchema(ctx)
	if err != nil && !errors.Is(err, postgres.ErrSchemaIncompatible) && !errors.Is(err, postgres.ErrSchemaBehind) {
		return errors.New("schema version unreadable")
	}
	return err
}

func serveCommand() *command {
	return &command{
		name:    "serve",
		summary: "run the HTTP server (the default); applies migrations first",
		about: `Serves the webhook endpoint, the app and finance APIs, the dashboard and
/metrics; runs the ProfitWell worker, the Stripe jobs, the hourly retention
purge, the scheduled reconcile and the missed-event sweeper as configured. Several replicas may serve
one database.`,
		env: configEnv(),
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				return e.serve(ctx)
			}
		},
	}
}

func (e *env) serve(ctx context.Context) error {
	if err := e.cfg.validateServe(); err != nil {
		return err
	}
	// Bind first: a taken or bad address fails before any database work.
	ln, err := net.Listen("tcp", e.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", e.cfg.ListenAddr, err)
	}
	defer ln.Close()

	db, err := e.openDatabase(ctx)
	if err != nil {
		return err
	}
	defer db.close(ctx)
	// serve owns the embedded server, even one a killed run left behind;
	// it is stopped when the last process using it ends (pgserver.Use).
	db.stopEmbedded = db.embedded != nil
	if err := db.store.MigrateUp(); err != nil {
		return err
	}
	e.warnStripeKeyMode(ctx, db.store)
	// Before any webhook: the event path then never loads a key itself,
	// and a changed erasure or link key stops serve here.
	links, err := e.prepareKeys(ctx, db.store)
	if err != nil {
		return err
	}
	if e.cfg.ProfitWellToken != "" {
		if err := db.store.CheckProfitWellAliasKey(ctx, []byte(e.cfg.ProfitWellAliasKey)); err != nil {
			return err
		}
	}
	if db.embedded != nil && len(e.cfg.WebhookSecrets) == 0 {
		secret, err := e.devWebhookSecret()
		if err != nil {
			return err
		}
		e.cfg.WebhookSecrets = []string{secret}
		// Logged on purpose: a local, development-only secret, so a new user
		// can sign test events at once. Configured secrets are never logged.
		e.log.Info("embedded mode: development webhook secret", "stripe_webhook_secret", secret)
	}

	// One registry per process: each component registers its own metrics.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(db.store.DB().DB, "billingd"))
	registerBuildInfo(reg)
	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	// ProfitWell outbox worker (off without PROFITWELL_API_TOKEN); stopped
	// before the database closes.
	stopProfitWell := e.startProfitWell(ctx, db.store, reg)
	defer stopProfitWell()

	srv := &api.Server{Log: e.log, Ready: readiness{db.store}, MetricsToken: e.cfg.MetricsToken, Registerer: reg}
	// App API: tokens and entitlements answered from memory, kept fresh by
	// polling the cache-invalidation feed (entcache).
	cache := entcache.New(db.store, api.RenderEntitlement, entcache.Options{Grace: e.cfg.EntitlementGrace, Log: e.log, Registerer: reg})
	// Read your writes: every commit of this process that changes an
	// account (webhook, link, erasure, scheduled reconcile) drops its
	// cached answers before the write is acknowledged. Set before anything
	// below can write.
	db.store.OnAccountsChanged(cache.InvalidateAccounts)
	// A catalog change reaches every answer: this replica drops them all
	// before PUT /v1/catalog is answered, others through the feed.
	db.store.OnCatalogChanged(cache.FlushEntitlements)
	go cache.Run(ctx)
	// Features catalog and per-account overrides (issue 18).
	srv.Catalogs, srv.Overrides = db.store, db.store
	srv.Tokens, srv.Entitlements, srv.Accounts, srv.LinkReferences = cache, cache, db.store, db.store
	// Erasure (DELETE /v1/accounts/{id}), its Stripe jobs and the hourly
	// retention purge; stopped before the database closes.
	srv.Eraser = db.store
	stopErasure := e.startErasure(ctx, db.store, reg)
	defer stopErasure()
	// Scheduled reconcile with Stripe (RECONCILE_INTERVAL; off by default).
	stopReconcile, err := e.startReconcile(ctx, db.store, reg)
	if err != nil {
		return err
	}
	defer stopReconcile()
	// Missed-event sweeper (SWEEP_INTERVAL; off by default).
	stopSweep, err := e.startSweep(ctx, db.store, links, reg)
	if err != nil {
		return err
	}
	defer stopSweep()
	// Finance metrics and the dashboard; its sessions are rows every
	// replica reads (dashboard_sessions).
	srv.Revenue, srv.Sessions, srv.PublicURL = db.store, db.store, e.cfg.PublicURL
	// Their segment, cohort and trial facts are derived after each event's
	// commit, by every replica; stopped before the database closes.
	stopFacts := e.startFactDeriver(ctx, db.store, reg)
	defer stopFacts()
	srv.FX, srv.ReportingCurrency = db.store, e.cfg.ReportingCurrency
	srv.SessionPolicy = billing.SessionPolicy{Lifetime: e.cfg.DashboardSessionTTL, Idle: e.cfg.DashboardSessionIdle}
	// Subject access export (GET /v1/accounts/{id}/export).
	srv.Exporter = db.store
	// The change feed (GET /v1/changes) and outbound app webhooks, when
	// CHANGE_FEED (or APP_WEBHOOK_URL) turns them on; otherwise the dirty
	// marks the write paths leave are cleared (changes.go).
	if e.cfg.ChangeFeed {
		srv.Changes = db.store
	}
	stopChangeFeed := e.startChangeFeed(ctx, db.store, reg)
	defer stopChangeFeed()
	// Checkout and portal sessions (APP_URL_ALLOWLIST with STRIPE_API_KEY).
	if err := e.startCheckout(srv, db.store); err != nil {
		return err
	}
	if e.cfg.MetricsAddr == "" {
		srv.Metrics = metricsHandler
	} else {
		stopMetrics, err := e.serveMetrics(metricsHandler)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	stopPprof, err := e.servePprof()
	if err != nil {
		return err
	}
	defer stopPprof()
	if len(e.cfg.WebhookSecrets) == 0 {
		e.log.Warn("webhooks off: STRIPE_WEBHOOK_SECRETS is not set; POST /webhooks/stripe answers 503")
	} else {
		observeEventBatches(db.store, reg)
		wh, err := webhooks.NewHandler(webhooks.Config{
			Secrets: e.cfg.WebhookSecrets, Tolerance: e.cfg.WebhookTolerance,
			MaxBodyBytes: e.cfg.WebhookMaxBodyBytes, Links: links,
			ApplyTimeout: e.cfg.WebhookApplyTimeout, BodyTimeout: e.cfg.WebhookBodyTimeout, MaxBodyReads: e.cfg.WebhookMaxBodyReads,
			Store: db.store, Log: e.log, Registerer: reg,
		})
		if err != nil {
			return err
		}
		srv.Webhooks = wh
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	limited := newLimitListener(ln, e.cfg.HTTPMaxConns, reg)
	go func() { errc <- hs.Serve(limited) }()
	go newMemoryReturner().run(ctx, 10*time.Second)
	b := buildInfo()
	e.log.Info("billingd serving", "listen_addr", ln.Addr().String(), "version", b.Version, "revision", b.Revision, "schema_version", b.Schema, "config", e.cfg)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	e.log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	e.log.Info("stopped")
	return nil
}

// prepareKeys resolves the erasure and link key rings (generating their
// keys on a first start), refuses keys that changed (ErrKeyChanged, one
// line), logs the fingerprints in use and returns the checkout reference
// verifier.
func (e *env) prepareKeys(ctx context.Context, st *postgres.Store) (*billing.LinkVerifier, error) {
	if err := st.PrepareKeys(ctx); err != nil {
		return nil, err
	}
	erasure, link, err := st.KeyRingFingerprints(ctx)
	if err != nil {
		return nil, err
	}
	e.log.Info("key rings", "erasure_key_fingerprints", erasure, "link_key_fingerprints", link)
	if !e.cfg.LinkRequireSignature {
		e.log.Warn("LINK_REQUIRE_SIGNATURE=false: a plain account ID in a checkout's client_reference_id links the customer; anyone who can edit a Payment Link URL can link their payment to any account")
	}
	return st.LinkVerifier(ctx, !e.cfg.LinkRequireSignature)
}

// serveMetrics runs /metrics on its own listener (METRICS_ADDR), e.g. a
// private interface the scraper reaches but the internet does not.
func (e *env) serveMetrics(h http.Handler) (func(), error) {
	ln, err := net.Listen("tcp", e.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on METRICS_ADDR %s: %w", e.cfg.MetricsAddr, err)
	}
	ms := &api.Server{Log: e.log, Metrics: h, MetricsToken: e.cfg.MetricsToken}
	hs := &http.Server{Handler: ms.MetricsOnlyHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	e.log.Info("metrics serving", "metrics_addr", ln.Addr().String())
	return func() { _ = hs.Close() }, nil
}

// observeEventBatches exports the group commit's batches: their size says
// how much concurrent load the webhook path sees, their duration how long a
// delivery waits for its commit, failures how often a batch fell back to
// one transaction per event, the queue's length how close admission
// control is to refusing events.
func observeEventBatches(st *postgres.Store, reg prometheus.Registerer) {
	size := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "billingd_event_batch_size", Help: "Webhook events applied per transaction (group commit).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
	})
	took := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "billingd_event_batch_duration_seconds", Help: "Time to apply and commit one batch of webhook events.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	failed := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "billingd_event_batch_failures_total", Help: "Batches whose transaction failed; their events were retried one per transaction.",
	})
	queued := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "billingd_event_queue_length", Help: "Webhook events waiting for a batch (group commit); at most EVENT_QUEUE_MAX.",
	})
	reg.MustRegister(size, took, failed, queued)
	st.ObserveEventQueue(func(n int) { queued.Set(float64(n)) })
	st.ObserveEventBatches(func(events int, d time.Duration, err error) {
		size.Observe(float64(events))
		took.Observe(d.Seconds())
		if err != nil {
			failed.Inc()
		}
	})
}
