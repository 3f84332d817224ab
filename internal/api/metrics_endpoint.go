package api

import (
	"crypto/subtle"
	"net/http"
	"strings"
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
