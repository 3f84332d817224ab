package stripeapi

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SweepMetrics are the missed-event sweeper's Prometheus metrics.
type SweepMetrics struct {
	runs      *prometheus.CounterVec
	recovered prometheus.Counter

	mu      sync.Mutex
	last    time.Time // the last complete sweep of the key's mode, any replica's
	started time.Time // stands in for last before the first complete sweep
	now     func() time.Time
}

// NewSweepMetrics registers the metrics on reg (nil: a private registry).
func NewSweepMetrics(reg prometheus.Registerer) *SweepMetrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &SweepMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "billingd_sweep_runs_total",
			Help: "Scheduled missed-event sweeps by result: ok, error, or skipped (another replica or run held the Stripe sync lock)."}, []string{"result"}),
		recovered: prometheus.NewCounter(prometheus.CounterOpts{Name: "billingd_sweep_recovered_total",
			Help: "Events the sweeper found in Stripe's Events API that no webhook had delivered, applied now."}),
		started: time.Now(), now: time.Now,
	}
	age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "billingd_sweep_last_complete_age_seconds",
		Help: "Seconds since a sweep of Stripe's events last completed on any replica (since this process started, before the first). Stripe keeps events 30 days: alert well before."},
		m.age)
	reg.MustRegister(m.runs, m.recovered, age)
	for _, r := range []string{"ok", "error", "skipped"} {
		m.runs.WithLabelValues(r)
	}
	return m
}

func (m *SweepMetrics) recover() {
	if m != nil {
		m.recovered.Inc()
	}
}

// completed records a complete sweep's time (this replica's, or another's
// read from the database).
func (m *SweepMetrics) completed(at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if at.After(m.last) {
		m.last = at
	}
}

func (m *SweepMetrics) age() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	since := m.last
	if since.IsZero() {
		since = m.started
	}
	return m.now().Sub(since).Seconds()
}

// SweepSchedule sweeps every interval until ctx ends (SWEEP_INTERVAL).
// Replicas all schedule it; the Stripe sync lock lets one sweep at a time
// and the others skip that tick, reading when the last sweep completed so
// every replica's age metric tells the truth.
func (s *Syncer) SweepSchedule(ctx context.Context, every time.Duration, m *SweepMetrics) {
	if m == nil {
		m = NewSweepMetrics(nil)
	}
	live := s.Client.Livemode()
	refresh := func() {
		if at, ok, err := s.Store.LastSweep(ctx, live); err == nil && ok {
			m.completed(at)
		}
	}
	refresh()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sum, err := s.Sweep(ctx, SweepOptions{Metrics: m})
		switch {
		case errors.Is(err, ErrBusy):
			m.runs.WithLabelValues("skipped").Inc()
			refresh()
			s.log().Debug("scheduled sweep skipped: another run holds the lock")
			continue
		case err != nil && len(sum.Failed) == 0:
			if ctx.Err() != nil {
				return
			}
			m.runs.WithLabelValues("error").Inc()
			s.log().Error("scheduled sweep failed", "err", err)
			continue
		}
		// Complete, though some events may never be applicable (logged
		// one by one): the sweep reached the newest event.
		m.runs.WithLabelValues("ok").Inc()
		refresh()
	}
}
