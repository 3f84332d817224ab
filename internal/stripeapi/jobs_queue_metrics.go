package stripeapi

import (
	"context"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/prometheus/client_golang/prometheus"
)

// StatsReader reads the state of one outbox kind (internal/postgres).
type StatsReader interface {
	OutboxStats(ctx context.Context, kind string) (billing.OutboxStats, error)
}

// QueueCollector reports the Stripe job queue when Prometheus scrapes, so
// the figures are never stale. It is registered whether or not a worker
// runs: erasures whose Stripe calls wait (no STRIPE_API_KEY, Stripe down)
// are what an operator must see.
type QueueCollector struct {
	stats   StatsReader
	jobs    *prometheus.Desc
	oldest  *prometheus.Desc
	timeout time.Duration
}

// NewQueueCollector returns a collector over stats.
func NewQueueCollector(stats StatsReader) *QueueCollector {
	return &QueueCollector{
		stats:   stats,
		jobs:    prometheus.NewDesc("billingd_stripe_jobs", "Stripe jobs of erasures by state (pending, dead).", []string{"state"}, nil),
		oldest:  prometheus.NewDesc("billingd_stripe_jobs_oldest_pending_seconds", "Age of the oldest pending Stripe job (0 when none).", nil, nil),
		timeout: 2 * time.Second,
	}
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.jobs
	ch <- c.oldest
}

// Collect implements prometheus.Collector. A failed read reports nothing
// (the scrape still succeeds; the database metrics show why).
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	s, err := c.stats.OutboxStats(ctx, billing.OutboxStripe)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(s.Pending), "pending")
	ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(s.Dead), "dead")
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, s.OldestPending.Seconds())
}
