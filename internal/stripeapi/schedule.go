package stripeapi

import (
	"context"
	"errors"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/prometheus/client_golang/prometheus"
)

// ReconcileMetrics are the scheduled reconcile's Prometheus metrics. Labels are
// bounded: a run's result and the four drift kinds.
type ReconcileMetrics struct {
	runs    *prometheus.CounterVec
	drift   *prometheus.CounterVec
	fixed   prometheus.Counter
	lastRun prometheus.Gauge
}

// NewReconcileMetrics registers the metrics on reg (nil: a private registry).
func NewReconcileMetrics(reg prometheus.Registerer) *ReconcileMetrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &ReconcileMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "billingd_reconcile_runs_total",
			Help: "Scheduled reconcile runs by result: ok, error, or skipped (another replica held the lock)."}, []string{"result"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "billingd_reconcile_drift_total",
			Help: "Differences between stored and Stripe state found by scheduled reconcile runs, by kind."}, []string{"kind"}),
		fixed: prometheus.NewCounter(prometheus.CounterOpts{Name: "billingd_reconcile_fixed_total",
			Help: "Differences repaired by scheduled reconcile runs."}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: "billingd_reconcile_last_success_timestamp_seconds",
			Help: "When a scheduled reconcile run last completed (Unix time)."}),
	}
	reg.MustRegister(m.runs, m.drift, m.fixed, m.lastRun)
	for _, r := range []string{"ok", "error", "skipped"} {
		m.runs.WithLabelValues(r)
	}
	for _, k := range []billing.DriftKind{billing.DriftMissing, billing.DriftChanged, billing.DriftExtra, billing.DriftCustomerDeleted} {
		m.drift.WithLabelValues(string(k))
	}
	return m
}

// Schedule runs Reconcile with Fix every interval until ctx ends
// (RECONCILE_INTERVAL). Replicas all schedule it; the Stripe sync lock
// lets one run at a time and the others skip that tick. Results are
// logged as counts (no IDs) and counted in m.
func (s *Syncer) Schedule(ctx context.Context, every time.Duration, m *ReconcileMetrics) {
	if m == nil {
		m = NewReconcileMetrics(nil)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := s.Reconcile(ctx, ReconcileOptions{Fix: true})
		switch {
		case errors.Is(err, ErrBusy):
			m.runs.WithLabelValues("skipped").Inc()
			s.log().Debug("scheduled reconcile skipped: another run holds the lock")
			continue
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			m.runs.WithLabelValues("error").Inc()
			s.log().Error("scheduled reconcile failed", "err", err)
			continue
		}
		m.runs.WithLabelValues("ok").Inc()
		m.lastRun.SetToCurrentTime()
		for k, n := range rep.ByKind() {
			m.drift.WithLabelValues(string(k)).Add(float64(n))
		}
		m.fixed.Add(float64(rep.Fixed()))
		if len(rep.Drift) > 0 {
			by := rep.ByKind()
			s.log().Warn("scheduled reconcile found drift", "missing", by[billing.DriftMissing], "changed", by[billing.DriftChanged],
				"extra", by[billing.DriftExtra], "customers_deleted", by[billing.DriftCustomerDeleted],
				"fixed", rep.Fixed(), "unfixed", len(rep.Unfixed()))
		}
	}
}
