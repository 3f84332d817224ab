package profitwell

import (
	"context"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/prometheus/client_golang/prometheus"
)

// StatsSource reports the outbox state of one kind (internal/postgres.Store)
// at a cost bounded by limit: pending rows are counted up to limit.
type StatsSource interface {
	OutboxGauges(ctx context.Context, kind string, limit int) (billing.OutboxStats, error)
}

// gaugeLimit caps the pending rows a scrape counts: a queue no worker
// drains (ProfitWell off: rows wait) grows by a row per live event, and a
// scrape must not grow slower with it. A depth of gaugeLimit means at
// least that many.
const gaugeLimit = 10_000

// Metrics are the worker's counters plus the outbox gauges. Labels are
// bounded: action (five values), reason (four), kind (two).
type Metrics struct {
	sent   *prometheus.CounterVec
	failed *prometheus.CounterVec
	dead   *prometheus.CounterVec
}

// NewMetrics registers the ProfitWell counters on reg and, when stats is
// not nil, gauges of the outbox (depth by state, oldest pending age) for
// every kind, read from the database at scrape time. They are registered
// even when the worker is off, so rows piling up stay visible.
func NewMetrics(reg prometheus.Registerer, stats StatsSource) *Metrics {
	m := &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_profitwell_sent_total", Help: "ProfitWell outbox rows delivered, by action.",
		}, []string{"action"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_profitwell_failed_total", Help: "ProfitWell send attempts that failed and will be retried, by action and reason (throttled, server, network, client).",
		}, []string{"action", "reason"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_profitwell_dead_total", Help: "ProfitWell outbox rows moved to dead-letter, by action.",
		}, []string{"action"}),
	}
	reg.MustRegister(m.sent, m.failed, m.dead)
	if stats != nil {
		reg.MustRegister(&outboxCollector{stats: stats})
	}
	return m
}

func (m *Metrics) observe(action string, oc outcome, status int) {
	if m == nil {
		return
	}
	if !billing.SyncKind(action).Valid() {
		action = "unknown"
	}
	switch oc {
	case sent:
		m.sent.WithLabelValues(action).Inc()
	case dead:
		m.dead.WithLabelValues(action).Inc()
	case throttled:
		m.failed.WithLabelValues(action, "throttled").Inc()
	case retry:
		reason := "network"
		switch {
		case status >= 500:
			reason = "server"
		case status > 0:
			reason = "client"
		}
		m.failed.WithLabelValues(action, reason).Inc()
	}
}

var (
	depthDesc = prometheus.NewDesc("billingd_outbox_depth", "Outbox rows not delivered, by kind and state (pending, dead); pending is counted up to 10000.",
		[]string{"kind", "state"}, nil)
	oldestDesc = prometheus.NewDesc("billingd_outbox_oldest_pending_age_seconds", "Age of the oldest pending outbox row, by kind (0 when none).",
		[]string{"kind"}, nil)
)

// outboxCollector reads the outbox state when scraped, so every replica
// reports the shared queue whether or not its worker runs.
type outboxCollector struct{ stats StatsSource }

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- depthDesc
	ch <- oldestDesc
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, kind := range []string{billing.OutboxProfitWell, billing.OutboxStripe, billing.OutboxAppWebhook} {
		s, err := c.stats.OutboxGauges(ctx, kind, gaugeLimit)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(depthDesc, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(s.Pending), kind, "pending")
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(s.Dead), kind, "dead")
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, s.OldestPending.Seconds(), kind)
	}
}
