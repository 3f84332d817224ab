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
	limit, five := int64(200), int64(5)
	const noDetail = `"features":{},"features_incomplete":false,"quantity":0,"trial":false,"in_grace":false,` +
		`"cancel_at_period_end":false,"scheduled_change":null}`
	tests := []struct {
		name string
		e    billing.Entitlement
		want string
	}{
		{"Entitled", billing.Entitlement{Entitled: true, Status: billing.StatusActive, Plan: "price_1", ValidUntil: &until, Livemode: true},
			`{"entitled":true,"status":"active","plan":"price_1","valid_until":"2026-04-01T09:00:00Z","livemode":true,` + noDetail},
		{"None", billing.Entitlement{Status: billing.StatusNone, Livemode: false},
			`{"entitled":false,"status":"none","plan":null,"valid_until":null,"livemode":false,` + noDetail},
		{"Features", billing.Entitlement{Entitled: true, Status: billing.StatusTrialing, Plan: "price_Pro", Livemode: true,
			Features: map[string]billing.FeatureGrant{"sso": {}, "projects": {Limit: &limit}}, Quantity: 10, Trial: true,
			CancelAtPeriodEnd: true, ScheduledChange: &billing.ScheduledChange{At: &until, Plan: "price_Basic", Quantity: &five}},
			`{"entitled":true,"status":"trialing","plan":"price_Pro","valid_until":null,"livemode":true,` +
				`"features":{"projects":{"limit":200},"sso":{"limit":null}},"features_incomplete":false,"quantity":10,"trial":true,` +
				`"in_grace":false,"cancel_at_period_end":true,` +
				`"scheduled_change":{"at":"2026-04-01T09:00:00Z","plan":"price_Basic","quantity":5,"cancel":false}}`},
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

// TestRenderFeature: the single-feature answers of a rendered entitlement
// (granted with and without limit, not granted), shared between equal
// answers, and marked while Stripe's list is being fetched.
func TestRenderFeature(t *testing.T) {
	t.Parallel()
	limit := int64(50)
	a := RenderEntitlement(billing.Entitlement{Entitled: true, Status: billing.StatusActive,
		Features: map[string]billing.FeatureGrant{"sso": {}, "projects": {Limit: &limit}}})
	for key, want := range map[string]string{
		"sso":      `{"enabled":true,"limit":null}`,
		"projects": `{"enabled":true,"limit":50}`,
		"missing":  `{"enabled":false,"limit":null}`,
	} {
		f := a.Feature(key)
		if string(f.Body) != want+"\n" || f.ETag != etag(f.Body) || f.etagHeader[0] != f.ETag {
			t.Errorf("%s: %s %s, want %s", key, f.Body, f.ETag, want)
		}
	}
	b := RenderEntitlement(billing.Entitlement{Features: map[string]billing.FeatureGrant{"other": {Limit: &limit}}})
	if b.Feature("other") != a.Feature("projects") {
		t.Error("equal feature answers are not shared")
	}
	inc := RenderEntitlement(billing.Entitlement{FeaturesIncomplete: true})
	if got := string(inc.Feature("sso").Body); got != `{"enabled":false,"limit":null,"features_incomplete":true}`+"\n" {
		t.Errorf("incomplete: %s", got)
	}
}
