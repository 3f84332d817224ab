package api

import (
	"net/http"

	"github.com/billingd/billingd/internal/httpjson"
)

// errorDetail is a 400's code and message before it is written.
type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeJSON writes v as the JSON response body with status code.
func writeJSON(w http.ResponseWriter, code int, v any) { httpjson.WriteJSON(w, code, v) }

// writeError writes {"error":{"code":...,"message":...}}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	httpjson.WriteError(w, status, code, msg)
}

// Error answers err with the status, code and fixed message of
// httpjson.Classify (the webhook handler uses the same table), and logs
// 5xx once, here at the edge. The error's own text goes to the log only.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	p := httpjson.Classify(err)
	switch {
	case p.Status == http.StatusServiceUnavailable:
		s.Log.Warn("unavailable", "request_id", RequestID(r.Context()), "route", routeOf(r), "err", err)
	case p.Status >= 500:
		s.Log.Error("internal error", "request_id", RequestID(r.Context()), "route", routeOf(r), "err", err)
	}
	httpjson.Write(w, p)
}

// routeOf is the matched route template (a bounded label, never the raw
// path: paths carry account IDs).
func routeOf(r *http.Request) string {
	if ri, ok := r.Context().Value(reqInfoKey).(*reqInfo); ok {
		return ri.route
	}
	return ""
}
