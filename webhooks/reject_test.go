package webhooks_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// Requests that must be refused get the right 4xx with a JSON error and
// leave nothing stored; a rotated secret keeps working.
func TestRejectsAndRotation(t *testing.T) {
	t.Parallel()
	const oldSecret, newSecret = "whsec_old_rotating_secret", "whsec_new_rotating_secret"
	b := setupWith(t, pgtest.Open(t), webhooks.Config{Secrets: []string{newSecret, oldSecret}, MaxBodyBytes: 64 << 10})
	payload := webhookstest.FixtureNamed(t, "v2023_03_customer.subscription.created").Payload
	now := time.Now()
	tests := []struct {
		name        string
		method      string
		contentType string
		sig         string
		body        []byte
		status      int
		code        string
	}{
		{"BadSignature", "POST", "application/json", webhookstest.Sign("whsec_not_ours", payload), payload, 400, "signature_invalid"},
		{"TamperedBody", "POST", "application/json", webhookstest.Sign(newSecret, payload), bytes.Replace(payload, []byte("trialing"), []byte("active\u0020\u0020"), 1), 400, "signature_invalid"},
		{"Expired", "POST", "application/json", webhookstest.SignAt(newSecret, payload, now.Add(-6*time.Minute)), payload, 400, "signature_expired"},
		{"FromTheFuture", "POST", "application/json", webhookstest.SignAt(newSecret, payload, now.Add(6*time.Minute)), payload, 400, "signature_expired"},
		{"MissingSignature", "POST", "application/json", "", payload, 400, "signature_missing"},
		{"MalformedSignatureHeader", "POST", "application/json", "t=abc,v1=zz", payload, 400, "signature_malformed"},
		{"RetiredSecret", "POST", "application/json", webhookstest.Sign("whsec_retired_secret", payload), payload, 400, "signature_invalid"},
		{"Oversized", "POST", "application/json", "", append(append([]byte(`{"x":"`), bytes.Repeat([]byte("a"), 70<<10)...), '"', '}'), 413, "body_too_large"},
		{"MalformedJSON", "POST", "application/json", webhookstest.Sign(newSecret, []byte(`{"id": "evt_1", "type": `)), []byte(`{"id": "evt_1", "type": `), 400, "invalid_payload"},
		{"NotAnEvent", "POST", "application/json", webhookstest.Sign(newSecret, []byte(`[1,2,3]`)), []byte(`[1,2,3]`), 400, "invalid_payload"},
		{"BadEventID", "POST", "application/json", webhookstest.Sign(newSecret, bytes.Replace(payload, []byte("evt_1PiiSubCreated"), []byte("evt_1Pii Sub"), 1)), bytes.Replace(payload, []byte("evt_1PiiSubCreated"), []byte("evt_1Pii Sub"), 1), 400, "invalid_payload"},
		{"Empty", "POST", "application/json", webhookstest.Sign(newSecret, nil), nil, 400, "empty_body"},
		{"WrongMethod", "GET", "application/json", "", nil, 405, "method_not_allowed"},
		{"NotJSON", "POST", "text/plain", webhookstest.Sign(newSecret, payload), payload, 415, "unsupported_media_type"},
		{"NoContentType", "POST", "", webhookstest.Sign(newSecret, payload), payload, 415, "unsupported_media_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/webhooks/stripe", bytes.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.sig != "" {
				req.Header.Set("Stripe-Signature", tt.sig)
			}
			rec := httptest.NewRecorder()
			b.handler.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), `"code":"`+tt.code+`"`) || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("body %s, want code %s", rec.Body, tt.code)
			}
		})
	}
	t.Run("NothingStored", func(t *testing.T) {
		for _, table := range []string{"stripe_events", "customers", "subscriptions", "subscription_versions"} {
			if n := b.count(t, table); n != 0 {
				t.Errorf("%s has %d rows", table, n)
			}
		}
	})
	t.Run("SignatureFailuresCounted", func(t *testing.T) {
		for reason, want := range map[string]float64{"invalid": 3, "expired": 2, "missing": 1, "malformed": 1} {
			if got := b.counter(t, "billingd_webhook_signature_failures_total", "reason", reason); got != want {
				t.Errorf("signature failures %s = %v, want %v", reason, got, want)
			}
		}
	})
	// Both secrets of a rotation are accepted.
	for _, s := range []string{oldSecret, newSecret} {
		t.Run("RotatedSecret/"+s[len("whsec_"):len("whsec_")+3], func(t *testing.T) {
			p := webhookstest.Rewrite(payload, "evt_1PiiSubCreated", "evt_1PiiSubCreated"+s[6:9])
			r := webhookstest.Post(t, b.handler, s, p)
			if r.Status != http.StatusOK {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
		})
	}
}
