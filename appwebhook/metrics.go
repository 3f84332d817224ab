package appwebhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the worker's counters and its delivery lag. The queue's depth
// (pending, dead) and oldest pending age are billingd_outbox_depth and
// billingd_outbox_oldest_pending_age_seconds with kind="app_webhook".
// Labels are bounded: reason has three values.
type Metrics struct {
	sentC   prometheus.Counter
	failedC *prometheus.CounterVec
	deadC   prometheus.Counter
	lag     prometheus.Histogram
}

// NewMetrics registers the app webhook metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sentC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "billingd_app_webhook_sent_total", Help: "App webhooks delivered (the app answered 2xx).",
		}),
		failedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_app_webhook_failed_total", Help: "App webhook attempts that failed and will be retried, by reason (server, client, network).",
		}, []string{"reason"}),
		deadC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "billingd_app_webhook_dead_total", Help: "App webhooks dead-lettered after retrying for APP_WEBHOOK_MAX_AGE.",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "billingd_app_webhook_lag_seconds", Help: "From the feed entry's commit to the app's 2xx, per delivered webhook.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400},
		}),
	}
	reg.MustRegister(m.sentC, m.failedC, m.deadC, m.lag)
	return m
}

func (m *Metrics) sent(lag time.Duration) {
	if m == nil {
		return
	}
	m.sentC.Inc()
	m.lag.Observe(max(lag, 0).Seconds())
}

func (m *Metrics) failed(status int) {
	if m == nil {
		return
	}
	reason := "network"
	switch {
	case status >= 500:
		reason = "server"
	case status > 0:
		reason = "client"
	}
	m.failedC.WithLabelValues(reason).Inc()
}

func (m *Metrics) dead() {
	if m == nil {
		return
	}
	m.deadC.Inc()
}
