// Package httpjson writes billingd's JSON responses and maps errors onto
// them. Every endpoint (the app API, the finance endpoints, the Stripe
// webhook) answers errors in one shape, {"error":{"code":...,"message":...}},
// and an error from below the edge (a billing sentinel, a context, a store
// error) becomes a status, a code and a message through one table,
// Classify, so the same failure is never a 503 on one endpoint and a 500 on
// another.
//
// Messages are fixed strings chosen here, never an error's text: errors
// carry driver detail, SQL and IDs that belong in logs, not in responses.
package httpjson

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/billingd/billingd/billing"
)

// errorBody is {"error":{"code":...,"message":...}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteJSON writes v as the JSON response body with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes {"error":{"code":code,"message":msg}} with status.
// msg must be a fixed text: never an error's Error().
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	WriteJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// Problem is what a client is told about an error.
type Problem struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, in seconds, is sent as Retry-After when positive: the
	// failure is transient and a retry can succeed.
	RetryAfter int
}

// retryAfterSeconds is the Retry-After of transient failures: long enough
// for a failover or a lock to clear, short against Stripe's own backoff.
const retryAfterSeconds = 5

// The answers of Classify, one per class of error.
var (
	Unavailable  = Problem{http.StatusServiceUnavailable, "unavailable", "temporarily unavailable, retry", retryAfterSeconds}
	Invalid      = Problem{http.StatusBadRequest, "invalid_request", "the request holds values billingd cannot accept", 0}
	NotFound     = Problem{http.StatusNotFound, "not_found", "not found", 0}
	Conflict     = Problem{http.StatusConflict, "conflict", "conflict", 0}
	Unauthorized = Problem{http.StatusUnauthorized, "unauthorized", "missing or invalid token", 0}
	Forbidden    = Problem{http.StatusForbidden, "forbidden", "token lacks the scope for this endpoint", 0}
	Internal     = Problem{http.StatusInternalServerError, "internal", "internal error", 0}
)

// Classify maps err onto the answer a client gets. Transient failures come
// first: an error that is both transient and something else (a retryable
// database error met while checking a request) must be retried, and 503 is
// the only answer after which Stripe and well-behaved clients do so
// without losing anything. Context ends count as transient whoever
// canceled: the request's deadline, the client hanging up or the server
// shutting down all leave the work undone and repeatable.
//
// Anything not recognised is Internal (500): a fault of this service that
// neither the client nor a retry is known to fix.
func Classify(err error) Problem {
	switch {
	case err == nil:
		return Internal // a caller bug: never answer success for an error path
	case errors.Is(err, billing.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Unavailable
	case errors.Is(err, billing.ErrInvalid):
		return Invalid
	case errors.Is(err, billing.ErrNotFound):
		return NotFound
	case errors.Is(err, billing.ErrConflict):
		return Conflict
	case errors.Is(err, billing.ErrUnauthorized):
		return Unauthorized
	case errors.Is(err, billing.ErrForbidden):
		return Forbidden
	}
	return Internal
}

// Write sends p: its Retry-After when set, then the error body.
func Write(w http.ResponseWriter, p Problem) {
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	WriteError(w, p.Status, p.Code, p.Message)
}
