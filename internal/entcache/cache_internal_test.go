package entcache

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
)

func TestEvict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		size, max int
		want      int
	}{
		{"RoomLeft", 2, 3, 2},
		{"FullDropsOne", 3, 3, 2},
		{"OverfullShrinks", 5, 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[int]bool{}
			for i := range tt.size {
				m[i] = true
			}
			evict(m, tt.max)
			if len(m) != tt.want {
				t.Errorf("len after evict = %d, want %d", len(m), tt.want)
			}
		})
	}
}

func TestRender(t *testing.T) {
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
			a := render(tt.e)
			if string(a.Body) != tt.want+"\n" {
				t.Errorf("body %s, want %s", a.Body, tt.want)
			}
			if !json.Valid(a.Body) || len(a.ETag) < 3 || a.ETag[0] != '"' || a.ETagHeader[0] != a.ETag {
				t.Errorf("etag %q / %q", a.ETag, a.ETagHeader)
			}
			if again := render(tt.e); again.ETag != a.ETag {
				t.Error("same answer, different ETag")
			}
			if tags[a.ETag] {
				t.Error("different answers share an ETag")
			}
			tags[a.ETag] = true
		})
	}
}
