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
