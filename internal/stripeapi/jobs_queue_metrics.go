package stripeapi

import (
	"context"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/prometheus/client_golang/prometheus"
)

// StatsReader reads the state of one outbox kind (internal/postgres) at a
// cost bounded by limit: pending rows are counted up to limit.
type StatsReader interface {
	OutboxGauges(ctx context.Context, kind string, limit int) (billing.OutboxStats, error)
}

// gaugeLimit caps the pending jobs a scrape counts (a figure of gaugeLimit
// means at least that many). The exact count read every row of the outbox
// not yet sent, ProfitWell's included, which grow by one per live event
// while ProfitWell is off: over a 500,000-event soak each scrape went from
// 25 to 417 ms (issue 15).
const gaugeLimit = 10_000

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
		jobs:    prometheus.NewDesc("billingd_stripe_jobs", "Stripe jobs of erasures by state (pending, counted up to 10000; dead).", []string{"state"}, nil),
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
	s, err := c.stats.OutboxGauges(ctx, billing.OutboxStripe, gaugeLimit)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(s.Pending), "pending")
	ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(s.Dead), "dead")
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, s.OldestPending.Seconds())
}
