package httpjson_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/httpjson"
)

// TestClassify is the one error table of every endpoint: each class of
// error, bare and wrapped as stores and handlers wrap them, gets its
// status, code, fixed message and (transient ones only) Retry-After.
func TestClassify(t *testing.T) {
	t.Parallel()
	secret := "pq: duplicate key value violates unique constraint \"customers_pkey\" DETAIL: Key (stripe_customer_id)=(cus_Secret)"
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{"Unavailable", billing.ErrUnavailable, 503, "unavailable", true},
		{"UnavailableWrapped", fmt.Errorf("apply event: %w: %s", billing.ErrUnavailable, secret), 503, "unavailable", true},
		{"Deadline", context.DeadlineExceeded, 503, "unavailable", true},
		{"DeadlineWrapped", fmt.Errorf("read account: %w", context.DeadlineExceeded), 503, "unavailable", true},
		{"Canceled", fmt.Errorf("x: %w", context.Canceled), 503, "unavailable", true},
		{"UnavailableBeatsInvalid", errors.Join(billing.ErrInvalid, billing.ErrUnavailable), 503, "unavailable", true},
		{"Invalid", fmt.Errorf("%w: %s", billing.ErrInvalid, secret), 400, "invalid_request", false},
		{"NotFound", fmt.Errorf("get token: %w", billing.ErrNotFound), 404, "not_found", false},
		{"Conflict", fmt.Errorf("%w: %s", billing.ErrConflict, secret), 409, "conflict", false},
		{"LinkedElsewhere", billing.ErrLinkedElsewhere, 409, "conflict", false},
		{"Unauthorized", billing.ErrUnauthorized, 401, "unauthorized", false},
		{"Forbidden", billing.ErrForbidden, 403, "forbidden", false},
		{"Internal", fmt.Errorf("%w: %s", billing.ErrInternal, secret), 500, "internal", false},
		{"Unknown", errors.New(secret), 500, "internal", false},
		{"TextSaysUnavailable", errors.New("unavailable: EOF"), 500, "internal", false},
		{"Nil", nil, 500, "internal", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := httpjson.Classify(tt.err)
			if p.Status != tt.status || p.Code != tt.code {
				t.Fatalf("Classify = %d %s, want %d %s", p.Status, p.Code, tt.status, tt.code)
			}
			rec := httptest.NewRecorder()
			httpjson.Write(rec, p)
			if rec.Code != tt.status || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("wrote %d %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			if got := rec.Header().Get("Retry-After") != ""; got != tt.retryAfter {
				t.Fatalf("Retry-After %q, want present=%v", rec.Header().Get("Retry-After"), tt.retryAfter)
			}
			var body struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if body.Error.Code != tt.code || body.Error.Message == "" {
				t.Fatalf("body %s", rec.Body)
			}
			if strings.Contains(rec.Body.String(), "cus_Secret") || strings.Contains(rec.Body.String(), "pq:") {
				t.Fatalf("driver detail reached the client: %s", rec.Body)
			}
		})
	}
}
