package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/billingd/billingd/billing"
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeJSON writes v as the JSON response body with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes {"error":{"code":...,"message":...}}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// WriteError is writeError for the other HTTP packages (webhooks/), so every
// endpoint answers errors in one shape.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	writeError(w, status, code, msg)
}

// WriteJSON is writeJSON for the other HTTP packages.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// Error maps a domain error onto a status and logs 5xx once, here at the edge.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, billing.ErrInvalid):
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
	case errors.Is(err, billing.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "not found")
	case errors.Is(err, billing.ErrConflict):
		writeError(w, http.StatusConflict, "conflict", "conflict")
	case errors.Is(err, billing.ErrUnauthorized):
		writeError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid token")
	case errors.Is(err, billing.ErrForbidden):
		writeError(w, http.StatusForbidden, "forbidden", "token lacks the scope for this endpoint")
	case errors.Is(err, billing.ErrUnavailable):
		s.Log.Error("unavailable", "request_id", RequestID(r.Context()), "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "temporarily unavailable, retry")
	default:
		s.Log.Error("internal error", "request_id", RequestID(r.Context()), "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
	}
}
