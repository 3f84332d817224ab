// Prometheus: the /metrics endpoint (behind METRICS_TOKEN when set, or on
// its own listener) and the metrics the API itself exports: HTTP requests
// by route, dashboard sign-ins and revenue reports served. The revenue
// endpoints themselves are in revenue.go.

package api

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metricsHandler serves Prometheus metrics, behind a bearer token when one
// is configured (METRICS_TOKEN).
func (s *Server) metricsHandler() http.Handler {
	if s.Metrics == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "not_found", "metrics are served on METRICS_ADDR")
		})
	}
	if s.MetricsToken == "" {
		return s.Metrics
	}
	want := []byte("Bearer " + s.MetricsToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(strings.TrimSpace(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid metrics token")
			return
		}
		s.Metrics.ServeHTTP(w, r)
	})
}

// MetricsOnlyHandler serves /metrics and nothing else: the handler of the
// separate METRICS_ADDR listener, which must not answer health or API
// routes it cannot vouch for.
func (s *Server) MetricsOnlyHandler() http.Handler {
	h := s.metricsHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			writeError(w, http.StatusNotFound, "not_found", "this listener serves /metrics only")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this endpoint")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// httpMetrics counts requests by route template (bounded: never the raw
// path, which carries account IDs), method and status.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_http_requests_total",
			Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "billingd_http_request_duration_seconds",
			Help:    "HTTP request latency by route template.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "billingd_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.inflight)
	}
	return m
}

func (m *httpMetrics) observe(route, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	switch method { // bound the label: anything odd is "other"
	case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS":
	default:
		method = "other"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

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
			Help: "Revenue reports served, by interval (day, week, month; cohorts and movements for those reports) and format.",
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
