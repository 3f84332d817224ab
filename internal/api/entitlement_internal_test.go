package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
)

// TestRenderEntitlement: the entitlement endpoint's body, and a strong
// ETag that is the same for the same answer and differs between answers.
func TestRenderEntitlement(t *testing.T) {
	t.Parallel()
	until := time.Date(2026, 4, 1, 10, 0, 0, 0, time.FixedZone("x", 3600))
	tests := []struct {
		name string
		e    billing.Entitlement
		want string
	}{
		{"Entitled", billing.Entitlement{Entitled: true, Status: billing.StatusActive, Plan: "price_1", ValidUntil: &until, Livemode: true},
			`{"entitled":true,"status":"active","plan":"price_1","valid_until":"2026-04-01T09:00:00Z","livemode":true}`},
		{"None", billing.Entitlement{Status: billing.StatusNone, Livemode: false},
			`{"entitled":false,"status":"none","plan":null,"valid_until":null,"livemode":false}`},
	}
	tags := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := RenderEntitlement(tt.e)
			if string(a.Body) != tt.want+"\n" {
				t.Errorf("body %s, want %s", a.Body, tt.want)
			}
			if !json.Valid(a.Body) || len(a.ETag) < 3 || a.ETag[0] != '"' || a.etagHeader[0] != a.ETag || a.ETag != etag(a.Body) {
				t.Errorf("etag %q / %q", a.ETag, a.etagHeader)
			}
			if again := RenderEntitlement(tt.e); again.ETag != a.ETag {
				t.Error("same answer, different ETag")
			}
			if tags[a.ETag] {
				t.Error("different answers share an ETag")
			}
			tags[a.ETag] = true
		})
	}
}
