package api

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// financeMetrics counts what the HTTP metrics cannot tell apart: dashboard
// sign-in outcomes (a burst of rejected ones is someone guessing tokens)
// and which reports finance asks for. Labels are fixed enums.
type financeMetrics struct {
	logins  *prometheus.CounterVec
	reports *prometheus.CounterVec
}

// newFinanceMetrics registers the metrics on reg; a nil reg gives nil,
// whose methods do nothing. Registering twice (a second Handler call on
// one registry) reuses the collectors already there.
func newFinanceMetrics(reg prometheus.Registerer) *financeMetrics {
	if reg == nil {
		return nil
	}
	m := &financeMetrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_dashboard_logins_total",
			Help: "Finance dashboard sign-ins by outcome (ok, rejected, error).",
		}, []string{"outcome"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_revenue_reports_total",
			Help: "Revenue reports served, by interval and format.",
		}, []string{"interval", "format"}),
	}
	m.logins = registerOrReuse(reg, m.logins)
	m.reports = registerOrReuse(reg, m.reports)
	return m
}

func registerOrReuse(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return old
			}
		}
	}
	return c
}

func (m *financeMetrics) login(outcome string) {
	if m != nil {
		m.logins.WithLabelValues(outcome).Inc()
	}
}

func (m *financeMetrics) report(interval string, csv bool) {
	if m == nil {
		return
	}
	format := "json"
	if csv {
		format = "csv"
	}
	m.reports.WithLabelValues(interval, format).Inc()
}
