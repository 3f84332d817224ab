package webhooks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// failingStore answers every call with one error: it stands in for the
// store only to inject the error whose mapping is under test.
type failingStore struct{ err error }

func (f failingStore) ApplyEvent(context.Context, billing.Event) (billing.Outcome, error) {
	return "", f.err
}
func (f failingStore) AccountLink(context.Context, string, string, billing.LinkOptions) (billing.LinkResult, error) {
	return 0, f.err
}
func (f failingStore) AccountBilling(context.Context, string) (billing.AccountBilling, error) {
	return billing.AccountBilling{}, f.err
}

// appToken accepts any bearer token as an app token.
type appToken struct{}

func (appToken) TokenByHash(_ context.Context, h billing.TokenHash) (billing.Token, error) {
	return billing.Token{ID: 1, Name: "t", Scope: billing.ScopeApp, Hash: h}, nil
}

type answer struct {
	status     int
	code       string
	retryAfter string
	body       string
}

func answerOf(rec *httptest.ResponseRecorder) answer {
	b := rec.Body.String()
	code := ""
	if i := strings.Index(b, `"code":"`); i >= 0 {
		code = b[i+8:]
		code = code[:strings.IndexByte(code, '"')]
	}
	return answer{rec.Code, code, rec.Header().Get("Retry-After"), b}
}

// TestErrorMappingSameOnBothSurfaces: the webhook handler and the app API
// answer the same store errors the same way (one table, httpjson.Classify):
// a passed deadline is 503 with Retry-After on both (the API used to
// answer 500), driver detail never reaches either client, and an error
// that only mentions "EOF" is not mistaken for a lost connection.
func TestErrorMappingSameOnBothSurfaces(t *testing.T) {
	t.Parallel()
	driverText := `pq: value too long for type character varying(3) at cus_SecretDetail`
	tests := []struct {
		name       string
		err        error
		status     int
		retryAfter bool
	}{
		{"Deadline", fmt.Errorf("apply event: %w", context.DeadlineExceeded), 503, true},
		{"Canceled", fmt.Errorf("apply event: %w", context.Canceled), 503, true},
		{"Unavailable", fmt.Errorf("apply event: %w: %s", billing.ErrUnavailable, driverText), 503, true},
		{"Invalid", fmt.Errorf("apply event: %w: %s", billing.ErrInvalid, driverText), 400, false},
		{"Internal", fmt.Errorf("apply event: %w: %s", billing.ErrInternal, driverText), 500, false},
		{"MentionsEOF", errors.New("decode items: unexpected EOF " + driverText), 500, false},
	}
	payload := webhookstest.FixtureNamed(t, "v2023_01_customer.created").Payload
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := failingStore{tt.err}
			wh, err := webhooks.NewHandler(webhooks.Config{Secrets: []string{webhookstest.Secret}, Store: st,
				Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(payload))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Stripe-Signature", webhookstest.Sign(webhookstest.Secret, payload))
			rec := httptest.NewRecorder()
			wh.ServeHTTP(rec, req)
			hook := answerOf(rec)

			srv := (&api.Server{Log: slog.New(slog.DiscardHandler), Tokens: appToken{}, Accounts: st}).Handler()
			req = httptest.NewRequest(http.MethodGet, "/v1/accounts/acct_1/billing", nil)
			req.Header.Set("Authorization", "Bearer bd_app_x")
			rec = httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			apiAns := answerOf(rec)

			for surface, a := range map[string]answer{"webhook": hook, "api": apiAns} {
				if a.status != tt.status {
					t.Errorf("%s: status %d, want %d: %s", surface, a.status, tt.status, a.body)
				}
				if (a.retryAfter != "") != tt.retryAfter {
					t.Errorf("%s: Retry-After %q, want present=%v", surface, a.retryAfter, tt.retryAfter)
				}
				if strings.Contains(a.body, "SecretDetail") || strings.Contains(a.body, "pq:") {
					t.Errorf("%s: driver detail in the answer: %s", surface, a.body)
				}
			}
			if hook.status != apiAns.status || hook.code != apiAns.code || hook.retryAfter != apiAns.retryAfter {
				t.Errorf("surfaces differ: webhook %d %s %q, api %d %s %q", hook.status, hook.code, hook.retryAfter,
					apiAns.status, apiAns.code, apiAns.retryAfter)
			}
		})
	}
}
